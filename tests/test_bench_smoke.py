"""Cheap checks of the photo benchmark's own logic (bench/bench_photos.py, bench/peers/).

The benchmark itself is run by hand (it needs dlib, MediaPipe and CenterFace in their own
venvs); these tests keep its matching, splits, scoring, letterboxing, FaceMesh mapping and
our own peer runner honest without them.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekeypoints.schema import FLIP_PAIRS, KEYPOINT_NAMES

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def sets_mod(bp):
    return importlib.import_module("sets")


@pytest.fixture(scope="module")
def suite_mod(bp):
    return importlib.import_module("suite")


@pytest.fixture(scope="module")
def bp():
    """Import the benchmark without letting its one-thread settings leak into the test session."""
    threads, env, path = cv2.getNumThreads(), dict(os.environ), list(sys.path)
    sys.path.insert(0, str(BENCH))  # bench_photos adds bench/peers/ itself
    try:
        yield importlib.import_module("bench_photos")
    finally:
        sys.path[:] = path
        cv2.setNumThreads(threads)
        os.environ.clear()
        os.environ.update(env)


def test_letterbox_maps_pixels_and_points_both_ways(bp):
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (512, 384), interpolation=cv2.INTER_NEAREST)
    lb = bp.Letterbox.fit(512, 384)
    assert lb.scale == pytest.approx(1.25) and (lb.ox, lb.oy) == (0, 0)
    out = lb.apply(img)
    assert out.shape == (480, 640, 3)
    pts = np.array([[48.0, 48.0], [304.0, 208.0], [464.0, 336.0]])  # centres of constant 32x32 blocks
    fwd = lb.forward(pts)
    for (x, y), (u, v) in zip(pts, fwd):
        assert np.abs(out[round(v), round(u)].astype(int) - img[int(y), int(x)].astype(int)).max() <= 1
    np.testing.assert_allclose(lb.back(fwd), pts, atol=1e-9)
    tall = bp.Letterbox.fit(300, 512)
    assert tall.oy == 0 and tall.ox == (640 - round(300 * 480 / 512)) // 2


def test_match_takes_the_labelled_face_not_a_neighbour(bp):
    gt = np.zeros((len(KEYPOINT_NAMES), 2))
    gt[:, 0] = np.linspace(100, 160, len(KEYPOINT_NAMES))
    gt[:, 1] = 100.0
    iod = float(np.linalg.norm(gt[KEYPOINT_NAMES.index("left_eye_outer_corner")]
                               - gt[KEYPOINT_NAMES.index("right_eye_outer_corner")]))
    near, neighbour = gt + 0.3 * iod, gt + (3 * iod, 0)
    assert bp.match([neighbour, near], gt) is near
    assert bp.match([neighbour], gt) is None
    assert bp.match([gt + 1.2 * iod], gt) is None


def test_facemesh_map_is_symmetric_and_in_range():
    sys.path.insert(0, str(BENCH / "peers"))
    try:
        mm = importlib.import_module("mediapipe_map")
    finally:
        sys.path.remove(str(BENCH / "peers"))
    m = mm.FACEMESH_TO_15
    assert set(m) == set(KEYPOINT_NAMES)
    for li, ri in FLIP_PAIRS:
        assert m[KEYPOINT_NAMES[li]] == tuple(mm.MIRROR[i] for i in m[KEYPOINT_NAMES[ri]])
    assert all(0 <= i < 478 for v in m.values() for i in v)
    # subject's right eye outer corner (33) lies on the image's left of the left one (263) in a frontal mesh
    pts = np.zeros((478, 2))
    pts[:, 0] = np.arange(478)
    pts[33, 0], pts[263, 0], pts[7, 0], pts[249, 0] = 10.0, 90.0, 10.0, 90.0
    kp = mm.from_facemesh(pts)
    assert kp[KEYPOINT_NAMES.index("right_eye_outer_corner"), 0] < kp[KEYPOINT_NAMES.index("left_eye_outer_corner"), 0]
    with pytest.raises(ValueError):
        mm.from_facemesh(pts[:468])


def test_real_photo_end_to_end_scoring(bp, val_300w):
    """The facekeypoints runner + matcher on one real validation photo gives a sane NME."""
    import facekeypoints as fk
    from facekeypoints.metrics import nme_per_face

    s = next(x for x in val_300w if x.image.name == "1204062305_1.jpg")
    kps, ms = bp.fk_runner(fk.KeypointDetector(threads=1))(s.image)
    m = bp.match(kps, s.keypoints)
    assert m is not None and ms > 0
    assert float(nme_per_face(m[None], s.keypoints[None])[0]) < 0.25


def _face(sets_mod, x: float, y: float, iod: float = 40.0):
    kp = np.zeros((len(KEYPOINT_NAMES), 2))
    kp[:, 0], kp[:, 1] = x, y
    for name, dx in (("left_eye_center", 0.35), ("right_eye_center", -0.35), ("left_eye_outer_corner", 0.5),
                     ("right_eye_outer_corner", -0.5)):
        kp[KEYPOINT_NAMES.index(name), 0] = x + dx * iod
    return sets_mod.Label(kp)


def test_assign_is_one_to_one_and_counts_false_alarms(sets_mod):
    a, b = _face(sets_mod, 100, 100), _face(sets_mod, 170, 100)
    mids = [np.array([168.0, 101.0]), np.array([103.0, 99.0]), np.array([400.0, 50.0]), np.array([104.0, 100.0])]
    idx, unmatched = sets_mod.assign(mids, [a, b])
    assert idx == [1, 0] and unmatched == 2  # the second detection near `a` and the far one are false alarms
    assert sets_mod.assign([np.array([100.0, 141.0])], [a]) == ([None], 1)  # just past one outer-eye-corner distance
    assert sets_mod.assign([], [a]) == ([None], 0)


def test_mtfl_radius_uses_eye_centres(sets_mod):
    lab = _face(sets_mod, 40, 40, iod=30)
    lab.kp15[KEYPOINT_NAMES.index("left_eye_outer_corner")] = np.nan  # MTFL: no corners
    assert lab.radius == pytest.approx(sets_mod.OUTER_PER_CENTRE * 0.7 * 30)


def test_split_rules_by_file_and_by_person(sets_mod):
    g = sets_mod.fallback_group
    assert g("lfpw", "lfpw/trainset/image_0042.jpg") == "lfpw/image_0042"
    assert g("mtfl", "mtfl/lfw_5590/Aaron_Eckhart_0001.jpg") == g("mtfl", "mtfl/lfw_5590/Aaron_Eckhart_0002.jpg")
    assert g("mtfl", "mtfl/net_7876/0_0_0.jpg") == "mtfl/net/0_0_0"


def test_nme68_regions_and_mtfl_nme(suite_mod):
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (68, 2))
    gt[36], gt[45] = (30.0, 40.0), (70.0, 40.0)
    pred = gt.copy()
    pred[list(suite_mod.REGIONS68["jaw"])] += (4.0, 0.0)  # 4 px = 10% of the 40 px outer-eye-corner distance
    assert suite_mod.nme68(pred, gt, suite_mod.REGIONS68["jaw"]) == pytest.approx(0.10)
    assert suite_mod.nme68(pred, gt, suite_mod.REGIONS68["eyes"]) == 0.0
    assert suite_mod.nme68(pred, gt) == pytest.approx(0.10 * 17 / 68)
    assert sum(len(v) for v in suite_mod.REGIONS68.values()) == 68
    kp = np.full((len(KEYPOINT_NAMES), 2), np.nan)
    kp[KEYPOINT_NAMES.index("left_eye_center")], kp[KEYPOINT_NAMES.index("right_eye_center")] = (50, 30), (30, 30)
    for n in ("nose_tip", "mouth_left_corner", "mouth_right_corner"):
        kp[KEYPOINT_NAMES.index(n)] = (40, 50)
    pred = np.where(np.isnan(kp), 0.0, kp + (2.0, 0.0))  # 2 px off on each labelled point, 20 px between eyes
    assert suite_mod.nme15(pred, kp, mtfl=True) == pytest.approx(0.10)


def test_sets_follow_the_training_splits(sets_mod, data_dir, val_300w):
    s = sets_mod.load_sets(data_dir, None, {"udacity": 5, "mtfl": 5})
    assert [i.image for i in s.items["300w"]] == [x.image for x in val_300w]
    assert all(len(i.labels) == 1 and i.labels[0].kp68.shape == (68, 2) for i in s.items["300w"] + s.items["lfpw"])
    assert 80 <= len(s.items["lfpw"]) <= 160  # about 15% of 805 files
    assert sum(len(i.labels) for i in s.items["multi"]) == 43 and s.items["dogs"][0].labels == []
    mt = s.items["mtfl"][0].labels[0].kp15
    assert np.isfinite(mt).all(1).sum() == 5 and mt[KEYPOINT_NAMES.index("left_eye_center"), 0] > mt[
        KEYPOINT_NAMES.index("right_eye_center"), 0]  # the subject's left eye is on the image's right


def test_fk_runner_peer_on_a_real_photo(bp, val_300w):
    """Our own rows run as peers: one real photo through peers/fk_runner.py, keypoints near the labels."""
    client = importlib.import_module("client")
    from facekeypoints.metrics import nme_per_face

    s = next(x for x in val_300w if x.image.name == "1204062305_1.jpg")
    src = str(Path(__file__).resolve().parents[1] / "src")
    with client.PeerClient("facekeypoints", sys.executable, ("{}",), {"PYTHONPATH": src}) as peer:
        assert peer.versions["src"] == src and "haar" in peer.versions["detectors"]
        reply = peer.run(s.image)
    kps = [np.asarray(f["points"]) for f in reply["faces"]]
    m = bp.match(kps, s.keypoints)
    assert m is not None and 0 < reply["det_ms"] <= reply["ms"]
    assert float(nme_per_face(m[None], s.keypoints[None])[0]) < 0.25


def test_suite_runs_scores_and_renders_with_our_row_only(bp, sets_mod, suite_mod, data_dir):
    """The whole benchmark path (sets, peer run, 640x480 pass, scores, Markdown, README rows) on a few
    real images with facekeypoints alone, two chains (the peers' venvs are not needed)."""
    report = importlib.import_module("report")
    sets = sets_mod.load_sets(data_dir, None, {"300w": 2, "lfpw": 1, "udacity": 1, "mtfl": 2, "multi": 1})
    rep = suite_mod.benchmark(str(Path(__file__).resolve().parents[1] / "src"), None, {"fk"}, sets, jobs=2)
    rep["meta"] = {"command": "test", "machine": bp.machine(), "bench_git": "test"}
    (name,) = [x["name"] for x in rep["systems"]]
    s = rep["summary"]
    assert s["sets"]["300w+lfpw"][name]["labels"] == 3 and s["sets"]["multi"][name]["labels"] == 7
    assert s["sets"]["300w+lfpw"][name]["found"] >= 2 and s["sets"]["dogs"][name]["unmatched"] == 0
    assert 0 < s["sets"]["300w+lfpw"][name]["nme_common"] < 0.1 and 0 < s["sets"]["mtfl"][name]["nme_common"] < 0.2
    assert s["timing"][name]["photos"] == 3 and 0 < s["timing"][name]["det_ms_median"] <= s["timing"][name]["ms_median"]
    md = report.markdown(rep)
    assert "## Detect" in md and "## Landmarks: 15 keypoints" in md and name in md
    assert len(report.readme_rows(rep)) >= 3


def test_update_readme_replaces_only_its_rows(bp):
    report = importlib.import_module("report")
    text = "| what | figure |\n|---|---|\n| keypoint model | 0.85 ms |\n| whole 640×480 photo, old | 84 ms |\n| a filter | 0.1 ms |\n"
    out = report.update_readme(text, ["| whole 640×480 photo, new | 1 |", "| faces found: x | 2 |"])
    assert out == ("| what | figure |\n|---|---|\n| keypoint model | 0.85 ms |\n| whole 640×480 photo, new | 1 |\n"
                   "| faces found: x | 2 |\n| a filter | 0.1 ms |\n")
    assert report.update_readme(out, ["| whole 640×480 photo, newer | 3 |"]).count("640×480") == 1
