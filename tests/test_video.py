"""Video tracking, smoothing and the fkp video command, on clips made from real 300-W faces.

The clips (tests/videos.py) move a labelled face over a 640x480 canvas, so every
frame has exact ground-truth keypoints. They are rendered in memory or written to
tmp_path, never into the repository.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekeypoints.geometry import frame_from_keypoints
from facekeypoints.metrics import nme_per_face
from facekeypoints.video.io import CSV_HEADER, parse_source
from facekeypoints.video.smoothing import EmaFilter, NoSmoothing, OneEuroFilter, make_smoother
from facekeypoints.video.tracker import VideoTracker, match_boxes

sys.path.insert(0, str(Path(__file__).parent))
import videos  # noqa: E402

FKP = [sys.executable, "-m", "facekeypoints.cli"]


def run_tracker(clip, **kw):
    """Faces per frame from a fresh tracker, fed the clip's own timestamps."""
    tr = VideoTracker(**kw)
    return tr, [tr.update(f, i / clip.fps) for i, f in enumerate(clip.frames())]


def jitter(kps: np.ndarray) -> float:
    """Mean frame-to-frame movement of the keypoints (px)."""
    return float(np.linalg.norm(np.diff(kps, axis=0), axis=-1).mean())


@pytest.fixture(scope="module")
def moving(data_dir):
    return videos.moving_clip(data_dir, 120)


@pytest.fixture(scope="module")
def tracked_raw(moving):
    return run_tracker(moving, smooth="none")


# -- the tracker -----------------------------------------------------------------------------------------

def test_tracker_keeps_one_id_and_follows_a_moving_face(moving, tracked_raw):
    tr, per_frame = tracked_raw
    assert all(len(faces) == 1 for faces in per_frame), [len(f) for f in per_frame]
    assert {faces[0].id for faces in per_frame} == {1}
    err = np.array([nme_per_face(faces[0].keypoints, moving.truth(i)[0]) for i, faces in enumerate(per_frame)])
    # the face moves up to ~8 px/frame, scales +-15% and rolls +-12 degrees; a lost track would give NME >> 0.2
    assert err.mean() < 0.10 and err.max() < 0.20, (err.mean(), err.max())
    # the detector ran on a small fraction of frames: that is what makes tracking fast
    assert tr.stats["detections"] <= len(moving) // tr.detect_every + 2
    box = per_frame[60][0].box
    c = moving.truth(60)[0].mean(0)
    assert box[0] < c[0] < box[2] and box[1] < c[1] < box[3]


def test_tracking_is_as_accurate_as_detecting_every_frame(moving, tracked_raw, detector):
    _, per_frame = tracked_raw
    idx = range(2, len(moving), 4)
    tracked = np.mean([nme_per_face(per_frame[i][0].keypoints, moving.truth(i)[0]) for i in idx])
    detected = []
    for i in idx:
        faces = detector.detect(moving.frames()[i])
        assert faces, f"Haar found no face in frame {i}"
        detected.append(nme_per_face(faces[0].keypoints, moving.truth(i)[0]))
    assert tracked <= 1.25 * np.mean(detected) + 0.005, (tracked, np.mean(detected))


def test_smoothing_reduces_jitter_on_a_still_face(data_dir):
    clip = videos.still_clip(data_dir, 60, noise=6.0)
    raw = np.array([f[0].keypoints for f in run_tracker(clip, smooth="none")[1]])
    euro = np.array([f[0].keypoints for f in run_tracker(clip, smooth="oneeuro")[1]])
    ema = np.array([f[0].keypoints for f in run_tracker(clip, smooth="ema")[1]])
    assert jitter(raw) > 0.05  # the noise does move the raw keypoints
    assert jitter(raw) / jitter(euro) >= 3.0, (jitter(raw), jitter(euro))
    assert jitter(raw) / jitter(ema) >= 1.5, (jitter(raw), jitter(ema))
    truth = clip.truth(0)[0]
    assert nme_per_face(euro[-1], truth) < 0.10


def test_one_euro_adds_little_lag_on_a_moving_face(moving, tracked_raw):
    _, raw_frames = tracked_raw
    raw = np.array([f[0].keypoints for f in raw_frames])
    euro = OneEuroFilter()
    smoothed = np.array([euro(k, i / moving.fps, frame_from_keypoints(k).side) for i, k in enumerate(raw)])
    ema = EmaFilter(cutoff=1.0)
    slow = np.array([ema(k, i / moving.fps, 0) for i, k in enumerate(raw)])
    truth = np.array([moving.truth(i)[0] for i in range(len(moving))])
    e_raw, e_euro, e_slow = (nme_per_face(x, truth).mean() for x in (raw, smoothed, slow))
    # the lag's cost is absolute (how far the face moves in a fraction of a frame), so it is
    # bounded as such: measured 0.0033 of the eye distance (raw tracking 0.0200, shipped model)
    assert e_euro - e_raw < 0.004, (e_euro, e_raw)
    assert e_slow > 1.3 * e_raw  # a plain heavy low-pass lags behind: the comparison can fail


def test_two_faces_get_distinct_stable_ids(data_dir):
    clip = videos.two_face_clip(data_dir, 90)
    _, per_frame = run_tracker(clip, smooth="oneeuro")
    assert max(len(f) for f in per_frame) == 2
    start = next(i for i, f in enumerate(per_frame) if len(f) == 2)
    assert start <= 31  # found at the first or the periodic detection
    ids = {tuple(sorted(f.id for f in faces)) for faces in per_frame[start:]}
    assert len(ids) == 1 and len(next(iter(ids))) == 2, ids
    # each id stays on the same person (sprite order = ground-truth order)
    owner: dict[int, int] = {}
    for i, faces in enumerate(per_frame[start:], start):
        truth = clip.truth(i)
        for f in faces:
            j = int(np.argmin([nme_per_face(f.keypoints, g) for g in truth]))
            assert nme_per_face(f.keypoints, truth[j]) < 0.2
            assert owner.setdefault(f.id, j) == j


def test_max_faces_limits_tracks(data_dir):
    clip = videos.two_face_clip(data_dir, 40)
    _, per_frame = run_tracker(clip, smooth="none", max_faces=1)
    assert max(len(f) for f in per_frame) == 1


def test_face_leaving_is_dropped_and_returning_gets_a_new_id(data_dir):
    clip = videos.gap_clip(data_dir, 90, gap=(30, 60))
    tr, per_frame = run_tracker(clip, smooth="oneeuro")
    counts = [len(f) for f in per_frame]
    assert all(c == 1 for c in counts[:30])
    # lost within the verification period once only background is left
    assert all(c == 0 for c in counts[30 + tr.verify_every + 1:60]), counts[30:60]
    # found again within the search period once it is back
    assert all(c == 1 for c in counts[60 + tr.search_every + 1:]), counts[60:]
    assert per_frame[0][0].id != per_frame[-1][0].id


def test_tracker_rejects_bad_settings():
    with pytest.raises(ValueError):
        VideoTracker(smooth="kalman")
    with pytest.raises(ValueError):
        VideoTracker(detect_every=0)


def test_match_boxes_pairs_by_overlap():
    tracks = [(0, 0, 100, 100), (300, 0, 400, 100)]
    dets = [(310, 5, 405, 100), (0, 300, 50, 350), (5, 0, 100, 95)]
    assert sorted(match_boxes(tracks, dets)) == [(0, 2), (1, 0)]


# -- smoothing -------------------------------------------------------------------------------------------

def test_one_euro_is_scale_invariant_and_uses_real_time():
    rng = np.random.default_rng(0)
    t = np.arange(90) / 30
    unit = np.stack([np.sin(t * 3), np.cos(t * 2)], -1)[:, None] + rng.normal(0, 0.01, (90, 1, 2))
    outs = []
    for s in (40.0, 400.0):
        f = OneEuroFilter()
        outs.append(np.array([f(x * s, ti, s) for x, ti in zip(unit, t)]) / s)
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    # the same motion sampled at 15 fps: the filter's state follows time, not frame count
    f30, f15 = OneEuroFilter(), OneEuroFilter()
    ramp = lambda ti: np.array([[100.0 * ti, 0.0]])  # noqa: E731
    a = [f30(ramp(ti), ti, 100.0) for ti in np.arange(60) / 30][-1]
    b = [f15(ramp(ti), ti, 100.0) for ti in np.arange(30) / 15][-1]
    lag30, lag15 = ramp(59 / 30)[0, 0] - a[0, 0], ramp(29 / 15)[0, 0] - b[0, 0]
    assert abs(lag30 - lag15) < 0.35 * lag30, (lag30, lag15)


def test_one_euro_reset_and_repeated_timestamps():
    f = OneEuroFilter()
    x = np.zeros((15, 2))
    f(x, 0.0, 100)
    out = f(x + 10, 0.0, 100)  # same timestamp: no update
    assert np.allclose(out, 0)
    f.reset()
    assert np.allclose(f(x + 10, 1.0, 100), 10)  # first sample after a reset passes through
    assert isinstance(make_smoother("none"), NoSmoothing)
    with pytest.raises(ValueError):
        make_smoother("median")


# -- fkp video / fkp webcam -------------------------------------------------------------------------------

def run_fkp(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FKP, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def clip_file(data_dir, tmp_path_factory) -> Path:
    clip = videos.moving_clip(data_dir, 45)
    return videos.write_video(clip, tmp_path_factory.mktemp("clips") / "moving.mp4")


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_cli_writes_video_csv_and_jsonl(clip_file, tmp_path):
    out, csv_path, js = tmp_path / "out.mp4", tmp_path / "f.csv", tmp_path / "f.jsonl"
    r = run_fkp("video", str(clip_file), "-o", str(out), "--csv", str(csv_path), "--json", str(js), "--quiet")
    assert r.returncode == 0, r.stderr
    assert count_frames(out) == 45
    rows = read_csv(csv_path)
    assert rows[0] == CSV_HEADER and rows[0][:8] == ["frame", "timestamp", "face_id", "box_x0", "box_y0", "box_x1",
                                                      "box_y1", "score"]
    assert rows[0][8:10] == ["left_eye_center_x", "left_eye_center_y"] and len(rows[0]) == 8 + 30 + 6
    assert rows[0][38:] == ["yaw", "pitch", "roll", "left_eye_aspect_ratio", "right_eye_aspect_ratio",
                            "mouth_aspect_ratio"]
    body = rows[1:]
    assert [int(r[0]) for r in body] == list(range(45)) and {r[2] for r in body} == {"1"}
    assert float(body[30][1]) == pytest.approx(1.0, abs=1e-3)  # 30 fps file: frame 30 is at 1 s
    lines = [json.loads(x) for x in js.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(45))
    face = lines[10]["faces"][0]
    assert face["id"] == 1
    assert face["keypoints"]["nose_tip"] == pytest.approx([float(body[10][8 + 20]), float(body[10][8 + 21])], abs=0.02)
    assert not list(tmp_path.glob(".*partial*"))  # temp files renamed


def test_cli_missing_camera_is_one_line_error(tmp_path):
    r = run_fkp("video", "99", "--quiet", "--csv", str(tmp_path / "c.csv"))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fkp: camera 99"), r.stderr


def test_cli_missing_file_and_bad_file(tmp_path):
    r = run_fkp("video", str(tmp_path / "nope.mp4"), "--csv", str(tmp_path / "c.csv"))
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [f"fkp: {tmp_path / 'nope.mp4'}: no such file"]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    r = run_fkp("video", str(bad), "--csv", str(tmp_path / "c.csv"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_cli_truncated_video_writes_frames_so_far(data_dir, tmp_path):
    clip = videos.moving_clip(data_dir, 40)
    full = videos.write_video(clip, tmp_path / "full.avi", fourcc="MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out, csv_path = tmp_path / "o.mp4", tmp_path / "o.csv"
    r = run_fkp("video", str(cut), "-o", str(out), "--csv", str(csv_path), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "truncated" in lines[0], r.stderr
    rows = read_csv(csv_path)[1:]
    n = len(rows)
    assert 10 < n < 40
    assert [int(x[0]) for x in rows] == list(range(n))
    assert count_frames(out) == n


def test_cli_sigint_finalises_outputs(data_dir, tmp_path):
    clip = videos.moving_clip(data_dir, 240)
    src = videos.write_video(clip, tmp_path / "long.mp4")
    out, csv_path = tmp_path / "o.mp4", tmp_path / "o.csv"
    proc = subprocess.Popen([*FKP, "video", str(src), "-o", str(out), "--csv", str(csv_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def partial_csv():  # the unique temporary name: .o.<random>.partial.csv
        return next(iter(tmp_path.glob(".o.*.partial.csv")), None)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        partial = partial_csv()
        if partial is not None and partial.exists() and partial.stat().st_size > 4000:  # header + a few frames
            break
        time.sleep(0.05)
    assert proc.poll() is None, "fkp video ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    n = count_frames(out)
    assert 0 < n < 240
    rows = read_csv(csv_path)
    assert rows[0] == CSV_HEADER
    # every cell filled but the openness columns (15 keypoints hold no eyelids)
    assert all(len(r) == len(CSV_HEADER) and all(v != "" for v in r[:-3]) and r[-3:] == ["", "", ""]
               for r in rows[1:])
    assert [int(r[0]) for r in rows[1:]] == list(range(len(rows) - 1))
    assert len(rows) - 1 == n  # one face per frame: a row for every frame written to the video
    assert partial_csv() is None and not list(tmp_path.glob(".*partial*"))


def test_cli_show_without_display_is_a_clear_error(clip_file):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for args in (["video", str(clip_file), "--show"], ["webcam"]):
        r = run_fkp(*args, env=env)
        assert r.returncode == 1, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and ("window" in lines[0] or "display" in lines[0]), r.stderr


def test_live_window_keys_and_quit(clip_file, tmp_path, monkeypatch):
    """--show logic with OpenCV's window calls faked (CI has no display): keys pick filters, q quits."""
    import facekeypoints.video.display
    from facekeypoints.video.io import LiveView, filter_names, run_video

    keys = [ord("f"), ord("f"), ord("0"), ord("2"), 255, ord("q")]
    shown = []
    monkeypatch.setattr(facekeypoints.video.display, "require_display", lambda: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, img: shown.append(img.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda ms=0: keys.pop(0) if keys else 255)
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: None)
    names = filter_names()
    view = LiveView([])
    states = []
    for _ in range(5):
        assert view.show(np.zeros((48, 64, 3), np.uint8))
        states.append(list(view.filters))
    if len(names) >= 2:
        assert states[:4] == [[names[0]], [names[1]], [], [names[1]]]
    assert not view.show(np.zeros((48, 64, 3), np.uint8))  # q
    keys += [255, 255, 27]  # Esc on the third frame
    res = run_video(str(clip_file), VideoTracker(), csv_path=str(tmp_path / "c.csv"), show=True, progress=False)
    assert res.frames == 3 and not res.interrupted
    assert len(read_csv(tmp_path / "c.csv")) == 1 + 3
    assert shown[-1] == (480, 640, 3)


def test_parse_source():
    assert parse_source("0") == 0 and parse_source(2) == 2
    assert parse_source("clip.mp4") == "clip.mp4"


def test_cli_filters(clip_file, tmp_path):
    try:
        from facekeypoints.filters import FILTERS
    except ImportError:
        pytest.skip("facekeypoints.filters is not there yet (written by another issue)")
    name = next(iter(FILTERS))
    name = name if isinstance(name, str) else name.name
    out = tmp_path / "f.mp4"
    r = run_fkp("video", str(clip_file), "--filter", name, "-o", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert count_frames(out) == 45
    r = run_fkp("video", str(clip_file), "--filter", "no-such-filter", "-o", str(out), "--quiet")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_video_path_never_imports_torch():
    code = ("import sys, numpy as np, facekeypoints as fk; import facekeypoints.video.io, facekeypoints.cli.video;"
            "fk.VideoTracker().update(np.zeros((120, 160, 3), np.uint8), 0.0);"
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


# -- false faces and scene cuts ----------------------------------------------------------------------------

def _dlib_boxes(data_dir, name):
    import xml.etree.ElementTree as ET

    for xf in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        for im in ET.parse(data_dir / "photos" / xf).getroot().iter("image"):
            if im.get("file") == name:
                return [tuple(int(b.get(k)) for k in ("left", "top", "width", "height")) for b in im.iter("box")]
    raise KeyError(name)


def _on_a_labelled_face(face, boxes) -> bool:
    """The face's eye midpoint lies inside one of dlib's labelled face boxes."""
    mid = (face.keypoints[0] + face.keypoints[1]) / 2
    return any(x < mid[0] < x + w and y < mid[1] < y + h for x, y, w, h in boxes)


def test_tracker_keeps_only_the_faces_detect_keeps(data_dir, detector):
    """A still group photo as a video: the tracker gates detections as detect does (verifier, keypoint
    span, one face per keypoint frame). On 2008_002506 the tracker's smaller Haar pass finds a shirt
    pocket (verifier: not a face) that it used to follow for the whole clip."""
    name = "2008_002506.jpg"
    image = cv2.imread(str(data_dir / "photos" / name))
    boxes = _dlib_boxes(data_dir, name)
    detected = detector.detect(image)
    assert len(detected) == len(boxes) and all(_on_a_labelled_face(f, boxes) for f in detected)
    tr = VideoTracker()
    per_frame = [tr.update(image, i / 30) for i in range(12)]
    for i, faces in enumerate(per_frame):
        assert len(faces) == len(boxes), (i, [f.box for f in faces])
        assert all(_on_a_labelled_face(f, boxes) for f in faces), (i, [f.box for f in faces])
        assert all(0 <= f.score <= 1 for f in faces)


def test_hard_scene_cut_drops_the_stale_track_at_once(data_dir):
    """A cut to another scene (another person elsewhere): the old track's crop no longer holds a face,
    so it is dropped in the cut frame itself (it used to be drawn over the new scene), and the new
    face is found in that same frame, as the loss triggers a detection."""
    clip = videos.cut_clip(data_dir, 60, cut=30)
    _, per_frame = run_tracker(clip, smooth="oneeuro")
    assert all(len(f) == 1 for f in per_frame[:30])
    before = per_frame[29][0].id
    for i in range(30, 60):
        truth = clip.truth(i)[0]
        assert len(per_frame[i]) == 1, (i, [(f.id, f.box) for f in per_frame[i]])
        f = per_frame[i][0]
        assert f.id != before and nme_per_face(f.keypoints, truth) < 0.1, (i, f.id, nme_per_face(f.keypoints, truth))
