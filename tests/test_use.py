"""What people build on keypoints: head pose, aligned crops, eye and mouth openness (issue #18).

Real faces throughout: 300-W photos (mirrored, rotated, turned faces, faces cut by the photo's
edge), Udacity frames with closed and open eyes, a clip made from a 300-W face.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints.alignment import TEMPLATE_POINTS, align, align_matrix, similarity, template
from facekeypoints.imageio import read_image
from facekeypoints.metrics import nme_per_face
from facekeypoints.openness import openness
from facekeypoints.pose import head_pose
from facekeypoints.schema import INDEX, flip_keypoints, from_ibug68

sys.path.insert(0, str(Path(__file__).parent))
import videos  # noqa: E402

FKP = [sys.executable, "-m", "facekeypoints.cli"]
_LO, _RO, _NOSE = INDEX["left_eye_outer_corner"], INDEX["right_eye_outer_corner"], INDEX["nose_tip"]


def yaw_proxy(kp: np.ndarray) -> float:
    """docs/benchmarks.md's yaw proxy: (nose to left outer eye corner - nose to right) / their sum.
    Negative when the nose is nearer the subject's left eye, i.e. the face turned to its own left."""
    dl, dr = (float(np.linalg.norm(kp[_NOSE] - kp[i])) for i in (_LO, _RO))
    return (dl - dr) / (dl + dr)


def _match(faces, kp):
    """The face whose eye midpoint is within half an eye distance of the labelled one (or None)."""
    mid, iod = (kp[0] + kp[1]) / 2, float(np.linalg.norm(kp[_LO] - kp[_RO]))
    d = [(float(np.linalg.norm((f.points15[0] + f.points15[1]) / 2 - mid)), i) for i, f in enumerate(faces)]
    d = [x for x in d if x[0] < 0.5 * iod]
    return faces[min(d)[1]] if d else None


def rotate_ccw(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo rotated counter-clockwise (as displayed) about its centre, same size, and the 2x3 map."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)  # positive = counter-clockwise
    return cv2.warpAffine(image, m, (w, h)), m


# -- head pose ---------------------------------------------------------------------------------------

def test_pose_rules_hold_exactly_on_labels(val_300w):
    """The conventions are properties of the maths: mirrored labels negate yaw and roll and keep
    pitch; labels rotated 20 degrees counter-clockwise lower roll by 20 and keep yaw and pitch."""
    for s in val_300w[::3]:
        h, w = read_image(s.image).shape[:2]
        kp = s.keypoints
        p = head_pose(kp, (w, h))
        m = head_pose(flip_keypoints(kp, w), (w, h))
        # measured: within 3e-5 degrees (the solver's tolerance); the rotation within 1e-12
        assert m.yaw == pytest.approx(-p.yaw, abs=0.01) and m.pitch == pytest.approx(p.pitch, abs=0.01)
        assert m.roll == pytest.approx(-p.roll, abs=1e-3)
        rm = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 20, 1.0)
        r = head_pose(kp @ rm[:, :2].T + rm[:, 2], (w, h))
        assert r.roll == pytest.approx(p.roll - 20, abs=1e-3)
        assert r.yaw == pytest.approx(p.yaw, abs=0.01) and r.pitch == pytest.approx(p.pitch, abs=0.01)


def test_generic_face_is_the_fit_of_the_300w_training_labels(data_dir):
    """FACE_3D is what bench/fit_face_shape.py fits from the labels (the one chosen number is the
    nose depth, 31 mm): symmetric, eyes 63 mm apart, within 0.06 mm of the fit."""
    from facekeypoints.pose import FACE_3D
    from facekeypoints.schema import FLIP_PERMUTATION

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import fit_face_shape
    finally:
        sys.path.pop(0)
    fitted, raw, n = fit_face_shape.fit(data_dir)
    assert n > 900 and raw > 31  # factorisation alone overstates depth
    np.testing.assert_allclose(FACE_3D, fitted, atol=0.06)
    np.testing.assert_allclose(FACE_3D[FLIP_PERMUTATION] * (-1, 1, 1), FACE_3D, atol=1e-9)
    assert FACE_3D[0, 0] - FACE_3D[1, 0] == pytest.approx(63.0) and FACE_3D[_NOSE, 2] == pytest.approx(-31.0)


@pytest.fixture(scope="module")
def transformed_poses(detector, val_300w):
    """(pose, mirrored photo's pose, pose of the photo rotated 20 degrees CCW) of detected faces."""
    out = []
    for s in val_300w[::16]:
        img = read_image(s.image)
        h, w = img.shape[:2]
        rot, rm = rotate_ccw(img, 20)
        f = _match(detector.detect(img), s.keypoints)
        fm = _match(detector.detect(np.ascontiguousarray(img[:, ::-1])), flip_keypoints(s.keypoints, w))
        fr = _match(detector.detect(rot), s.keypoints @ rm[:, :2].T + rm[:, 2])
        if f is not None:
            out.append((f.pose, None if fm is None else fm.pose, None if fr is None else fr.pose))
    return out


def test_mirroring_a_photo_negates_yaw_and_roll_and_keeps_pitch(transformed_poses):
    pairs = [(p, m) for p, m, _ in transformed_poses if m is not None]
    assert len(pairs) >= 8, len(pairs)
    for p, m in pairs:
        # measured (12 faces, every 16th validation photo): at most 2.0 / 1.4 / 0.7 degrees
        assert abs(p.yaw + m.yaw) < 3 and abs(p.pitch - m.pitch) < 3 and abs(p.roll + m.roll) < 1.5, (p, m)
    assert any(abs(p.yaw) > 10 for p, _ in pairs)  # not only frontal faces


def test_rotating_a_photo_lowers_roll(transformed_poses):
    pairs = [(p, r) for p, _, r in transformed_poses if r is not None]
    assert len(pairs) >= 6, len(pairs)
    for p, r in pairs:
        # measured (the same 12 faces): roll within 0.8 degrees of p.roll - 20; yaw and pitch change with
        # the keypoints the model finds in the other crop, up to 5.2 degrees (yaw, one face) and 0.9 (pitch)
        assert abs(r.roll - (p.roll - 20)) < 2, (p, r)
        assert abs(r.yaw - p.yaw) < 7 and abs(r.pitch - p.pitch) < 7, (p, r)


def test_yaw_sign_of_turned_faces(detector, val_300w):
    """Faces the labels call turned (abs(yaw proxy) > 0.2, docs/benchmarks.md): yaw > 0 when the
    nose is nearer the subject's left eye (turned to their own left), from labels and end to end."""
    turned = [s for s in val_300w if abs(yaw_proxy(s.keypoints)) > 0.2]
    assert len(turned) >= 30
    for s in turned:
        h, w = read_image(s.image).shape[:2]
        assert np.sign(head_pose(s.keypoints, (w, h)).yaw) == -np.sign(yaw_proxy(s.keypoints)), s.image.name
    found = 0
    for s in turned[::3]:
        f = _match(detector.detect(s.image), s.keypoints)
        if f is None:
            continue
        found += 1
        yaw = f.pose.yaw
        # measured: all 15 found, the smallest abs(yaw) 6.4 degrees
        assert np.sign(yaw) == -np.sign(yaw_proxy(s.keypoints)) and abs(yaw) > 3, (s.image.name, yaw)
    assert found >= 0.7 * len(turned[::3]), (found, len(turned[::3]))


def test_pose_is_smoothed_in_video(data_dir):
    """A still face under sensor noise: the tracker's pose (from its smoothed keypoints) jitters far
    less than the same tracker's unsmoothed pose."""
    clip = videos.still_clip(data_dir, 45)
    jit = {}
    for smooth in ("oneeuro", "none"):
        tr = fk.VideoTracker(smooth=smooth)
        poses = []
        for i, frame in enumerate(clip.frames()):
            faces = tr.update(frame, i / clip.fps)
            assert len(faces) == 1 and faces[0].image_size == (videos.W, videos.H)
            poses.append(faces[0].pose)
        p = np.array(poses[5:])
        assert np.isfinite(p).all()
        jit[smooth] = np.abs(np.diff(p, axis=0)).mean(axis=0)
    assert (jit["oneeuro"] < 0.5 * jit["none"]).all(), jit


# -- aligned crops -----------------------------------------------------------------------------------

def test_fk_align_is_the_function():
    import facekeypoints.alignment

    assert fk.align is facekeypoints.alignment.align and callable(fk.align)


def test_similarity_is_the_least_squares_fit():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a = 0.7 * np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])
    np.testing.assert_allclose(similarity(src, src @ a.T + (5, -3)), np.hstack([a, [[5], [-3]]]), atol=1e-9)


def test_aligned_crops_put_the_eyes_on_the_template(detector, val_300w):
    """Re-detecting the face in its aligned crop finds the eye centres at the template's."""
    errors = []
    for s in [s for s in val_300w if abs(yaw_proxy(s.keypoints)) < 0.1][::6]:
        img = read_image(s.image)
        f = _match(detector.detect(img), s.keypoints)
        # the alignment is what is measured here, so only faces the pipeline fits (AFW 4538917191_23, a
        # dark face behind glasses, is found by the learned detector but fitted at 19% NME)
        if f is None or nme_per_face(f.points15, s.keypoints) > 0.1:
            continue
        crop = align(img, f)
        assert crop.shape == (112, 112, 3)
        again = detector.detect(crop)
        assert again, s.image.name
        eyes = again[0].points15[[INDEX["right_eye_center"], INDEX["left_eye_center"]]]
        errors.append(float(np.linalg.norm(eyes - template()[:2], axis=1).max()))
    errors = np.array(errors)
    assert len(errors) >= 10
    # measured (16 near-frontal faces, abs(yaw proxy) < 0.1): median 2.1 px, worst 3.2 px. Turned faces
    # do worse: the fit shares the five points' misfit (the face's own shape against a fixed template),
    # and on all 300-W training labels it leaves 79 % of faces' eyes within 4 px (90 % of near-frontal).
    assert np.median(errors) < 3.0 and errors.max() < 4.0, errors


def test_align_pads_a_face_cut_by_the_border(detector, val_300w):
    """A photo cut through the face: the crop comes out full size, black where the photo ends,
    and equal to the uncut photo's crop elsewhere."""
    s = val_300w[0]
    img = read_image(s.image)
    f = detector.detect(img)[0]
    x_cut = int(f.points15[INDEX["right_eye_center"], 0])  # through the eye on the image's left
    cut = np.ascontiguousarray(img[:, x_cut:])
    moved = fk.Face(tuple(v - x_cut * (i % 2 == 0) for i, v in enumerate(f.box)), f.score,
                    f.keypoints - np.float32([x_cut, 0]))
    full, padded = align(img, f, 128), align(cut, moved, 128)
    assert padded.shape == (128, 128, 3)
    # where each crop pixel comes from in the cut photo
    inv = cv2.invertAffineTransform(align_matrix(moved, 128))
    u, v = np.meshgrid(np.arange(128), np.arange(128))
    x = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    outside, inside = x < -1.5, x > 2.5
    assert outside.mean() > 0.2 and inside.mean() > 0.4
    assert (padded[outside] == 0).all()
    assert np.abs(padded[inside].astype(int) - full[inside]).mean() < 2.0
    # the matrix depends on the keypoints only: the same face in either photo, shifted by the cut
    np.testing.assert_allclose(align_matrix(moved)[:, :2], align_matrix(f)[:, :2], atol=1e-9)


def test_align_accepts_68_landmarks_and_rejects_bad_points(val_300w):
    from facekeypoints.training.data.landmarks import read_pts

    s = val_300w[0]
    lm = read_pts(s.image.with_suffix(".pts"))
    np.testing.assert_allclose(align_matrix(lm), align_matrix(from_ibug68(lm)), atol=1e-6)
    bad = from_ibug68(lm).copy()
    bad[INDEX["nose_tip"]] = np.nan
    with pytest.raises(ValueError):
        align_matrix(bad)
    with pytest.raises(ValueError):
        align_matrix(np.zeros((5, 2)))


def test_cli_align_and_draw_pose(tmp_path, data_dir, val_300w, detector):
    photo, group, dogs = val_300w[0].image, data_dir / "photos" / "2008_001322.jpg", data_dir / "photos" / "dogs.jpg"
    out = tmp_path / "crops"
    r = subprocess.run([*FKP, "align", str(photo), str(group), str(dogs), "-o", str(out), "--size", "128"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{dogs}: no face found, nothing written" in r.stderr and "Traceback" not in r.stderr
    meta = json.loads((out / "alignment.json").read_text())
    assert meta["size"] == 128 and len(meta["template"]) == 5
    recs = {Path(x["image"]).name: x for x in meta["images"]}
    assert recs["dogs.jpg"]["faces"] == [] and not list(out.glob("dogs*"))
    assert len(recs["2008_001322.jpg"]["faces"]) >= 3
    written = sorted(p.name for p in out.glob("*.jpg"))
    assert written == sorted(f["crop"] for x in meta["images"] for f in x["faces"])
    assert f"{photo.stem}_0.jpg" in written and "2008_001322_2.jpg" in written
    for name in written:
        assert cv2.imread(str(out / name)).shape == (128, 128, 3)
    # the JSON's matrix is the face's transform onto the template
    f = detector.detect(photo)[0]
    np.testing.assert_allclose(recs[photo.name]["faces"][0]["matrix"], align_matrix(f, 128), atol=1e-3)
    m = np.array(recs[photo.name]["faces"][0]["matrix"])
    mapped = f.points15[list(TEMPLATE_POINTS)] @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - template(128)).max() < 15

    # fkp detect --draw-pose, and the pose in the JSON and the CSV
    plain, posed = tmp_path / "plain", tmp_path / "posed"
    for extra, d in (([], plain), (["--draw-pose"], posed)):
        r = subprocess.run([*FKP, "detect", str(photo), "-o", str(d), "--json", str(d / "r.json"),
                            "--csv", str(d / "r.csv"), *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    a, b = (cv2.imread(str(d / photo.name)) for d in (plain, posed))
    assert a.shape == b.shape and (np.abs(a.astype(int) - b).max(axis=2) > 60).sum() > 50
    face = json.loads((posed / "r.json").read_text())[0]["faces"][0]
    assert face["pose"] == pytest.approx({k: round(v, 2) for k, v in f.pose._asdict().items()}, abs=0.05)
    row = next(csv.DictReader((posed / "r.csv").open()))
    assert float(row["yaw"]) == pytest.approx(face["pose"]["yaw"]) and float(row["roll"]) == face["pose"]["roll"]
    assert row["left_eye_aspect_ratio"] == row["mouth_aspect_ratio"] == ""  # 15 keypoints: no openness


def test_cli_align_bad_input(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    r = subprocess.run([*FKP, "align", str(bad), "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 1 and "broken.jpg" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["alignment.json"]
    r = subprocess.run([*FKP, "align", str(bad), "-o", str(tmp_path / "o"), "--size", "4"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == ["fkp: --size must be at least 8 pixels, got 4"]
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    r = subprocess.run([*FKP, "align", str(bad), "-o", str(blocker / "sub")], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "cannot create the output folder" in r.stderr


# -- openness ----------------------------------------------------------------------------------------

#: Udacity training frames picked by hand, by looking at them, among those whose labels' eyelids are
#: nearest (closed) and farthest apart (open), the same people where possible. Kate_Winslet_12,
#: whose labels close the eyes, is left out: her eyes are open in the picture.
CLOSED = ("Peter_Medgyessy_32", "Edward_Norton_52", "Linda_Sanchez_12", "Charlie_Coles_11")
OPEN = ("Peter_Medgyessy_41", "Charlie_Coles_21", "Linda_Sanchez_21", "Kate_Winslet_02", "Olene_Walker_42")


@pytest.fixture(scope="module")
def udacity_labels(data_dir) -> dict[str, np.ndarray]:
    out = {}
    with (data_dir / "udacity" / "training_frames_keypoints.csv").open() as fh:
        rows = csv.reader(fh)
        next(rows)
        for row in rows:
            out[row[0][:-4]] = np.array(row[1:], np.float64).reshape(68, 2)
    return out


def test_openness_orders_closed_and_open_eyes(udacity_labels):
    from facekeypoints.openness import eye_aspect_ratio, mouth_aspect_ratio

    for lm in list(udacity_labels.values())[:200]:  # the vectorised sums are the per-eye functions'
        o = openness(lm)
        assert o.left_eye == pytest.approx(eye_aspect_ratio(lm[42:48]))
        assert o.right_eye == pytest.approx(eye_aspect_ratio(lm[36:42]))
        assert o.mouth == pytest.approx(mouth_aspect_ratio(lm[60:68]))
    ear = {n: openness(udacity_labels[n]) for n in CLOSED + OPEN}
    closed = [(o.left_eye + o.right_eye) / 2 for n, o in ear.items() if n in CLOSED]
    opened = [(o.left_eye + o.right_eye) / 2 for n, o in ear.items() if n in OPEN]
    assert max(closed) < 0.15 < 0.25 < min(opened), (closed, opened)
    # the 68 -> 15 eye centres sit between the lids of an open eye; a Face carries both
    lm = udacity_labels["Charlie_Coles_21"]
    face = fk.Face((0.0, 0.0, 100.0, 100.0), None, lm.astype(np.float32), image_size=(200, 200))
    assert face.landmarks is not None and face.points15.shape == (15, 2)
    np.testing.assert_allclose(face.points15, from_ibug68(lm), atol=1e-4)
    assert face.openness == pytest.approx(openness(lm), abs=1e-5)
    d = face.to_dict()
    assert list(d["keypoints"]) == list(fk.KEYPOINT_NAMES) and set(d["openness"]) == {"left_eye", "right_eye", "mouth"}
    assert d["pose"]["yaw"] == pytest.approx(head_pose(from_ibug68(lm), (200, 200)).yaw, abs=0.01)


def test_mouth_openness_on_labels(udacity_labels):
    """Closed lips give 0 (the inner-lip points meet); a wide-open mouth far more."""
    mar = {n: openness(lm).mouth for n, lm in udacity_labels.items()}
    assert mar["Patrick_Leahy_22"] == 0.0  # lips closed in the picture
    assert mar["Danny_Glover_10"] > 0.6  # mouth wide open
    assert 0.05 < float(np.median(list(mar.values()))) < 0.2


def test_no_openness_with_15_keypoints(val_300w):
    f = fk.Face((0.0, 0.0, 1.0, 1.0), None, val_300w[0].keypoints)
    assert f.landmarks is None and f.openness is None and "openness" not in f.to_dict()
    assert math.isfinite(f.pose.yaw)  # no image size: a camera centred on the face
    nan = fk.Face((0.0, 0.0, 1.0, 1.0), None, np.full((15, 2), np.nan, np.float32))
    assert all(math.isnan(v) for v in nan.pose) and nan.to_dict()["pose"] == {"yaw": None, "pitch": None, "roll": None}


def test_a_blink_survives_the_video_smoothing(udacity_labels):
    """The tracker's One Euro filter (its defaults) on 68 real landmarks whose lids close and
    reopen over 5 frames at 30 fps (170 ms, an ordinary blink): the eye aspect ratio still dips
    by most of its depth, at most a frame late, so ``fkp video --csv`` shows the blink."""
    from facekeypoints.geometry import frame_from_keypoints
    from facekeypoints.video.smoothing import OneEuroFilter

    open_ = udacity_labels["Charlie_Coles_21"]
    closed = open_.copy()
    for eye in ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47)):
        mid = (open_[eye[0], 1] + open_[eye[3], 1]) / 2
        for i in eye[1:3] + eye[4:6]:
            closed[i, 1] = mid + 0.1 * (open_[i, 1] - mid)  # lids onto the corner line
    seq = [open_ + max(0.0, 1 - abs(i - 22.5) / 2.5) * (closed - open_) for i in range(45)]
    filt, side = OneEuroFilter(), frame_from_keypoints(from_ibug68(open_)).side
    raw = np.array([np.mean(openness(x)[:2]) for x in seq])
    smooth = np.array([np.mean(openness(filt(x, i / 30, side))[:2]) for i, x in enumerate(seq)])
    # measured: 81 % of the depth kept, the minimum one frame late
    assert smooth[0] - smooth.min() > 0.7 * (raw[0] - raw.min()) and raw.min() < 0.1
    assert 0 <= smooth.argmin() - raw.argmin() <= 1
    assert abs(smooth[-1] - raw[-1]) < 0.01  # and it comes back up


@pytest.fixture(scope="module")
def detector68():
    try:
        return fk.KeypointDetector(points=68)
    except TypeError:  # this branch predates the 68-point model
        pytest.skip("needs fk.KeypointDetector(points=68) (the 68-point model)")


def _eye_openness(detector68, udacity_labels, data_dir) -> dict[str, float]:
    ear = {}
    for name in CLOSED + OPEN:
        img = read_image(data_dir / "udacity" / "training" / f"{name}.jpg")
        mid = udacity_labels[name][36:48].mean(axis=0)
        face = _match(detector68.detect(img), from_ibug68(udacity_labels[name]))
        assert face is not None and face.openness is not None, name
        assert np.linalg.norm(face.landmarks[36:48].mean(axis=0) - mid) < 10, name
        ear[name] = (face.openness.left_eye + face.openness.right_eye) / 2
    return ear


def test_eye_openness_end_to_end_with_the_68_point_model(detector68, udacity_labels, data_dir):
    """The hand-picked Udacity frames through the 68-point model: the eyes are found, and the closed-eye
    frames score below the open ones on average (0.217 against 0.289 with the shipped models)."""
    ear = _eye_openness(detector68, udacity_labels, data_dir)
    assert np.mean([ear[n] for n in CLOSED]) < np.mean([ear[n] for n in OPEN]), ear


def test_each_closed_eye_frame_scores_below_the_same_persons_open_one(detector68, udacity_labels, data_dir):
    """Per person, closed below open. The session-9 points68.onnx (36 + 10 epochs) was the first that
    passed (Linda_Sanchez 0.308 against 0.317; its predecessor gave her 0.320 against 0.318). The shipped
    one (72 + 20 epochs): Peter_Medgyessy 0.169 against 0.242, Charlie_Coles 0.167 against 0.302,
    Linda_Sanchez 0.232 against 0.268. Still above the labels' 0.07-0.11 for closed eyes against
    0.30-0.43 open: the model narrows the lids, it does not close them."""
    ear = _eye_openness(detector68, udacity_labels, data_dir)
    for closed, opened in (("Peter_Medgyessy_32", "Peter_Medgyessy_41"), ("Charlie_Coles_11", "Charlie_Coles_21"),
                           ("Linda_Sanchez_12", "Linda_Sanchez_21")):
        assert ear[closed] < ear[opened], (closed, ear[closed], opened, ear[opened])


def test_openness_end_to_end_follows_the_labels(detector68, data_dir):
    """Every 6th Udacity test frame through the 68-point model: its mouth and eye aspect ratios rise
    and fall with those of the frame's labels."""
    names, labels = [], []
    with (data_dir / "udacity" / "test_frames_keypoints.csv").open() as fh:
        rows = csv.reader(fh)
        next(rows)
        for row in list(rows)[::6]:
            names.append(row[0])
            labels.append(np.array(row[1:], np.float64).reshape(68, 2))
    pred, truth = [], []
    for name, lm in zip(names, labels):
        face = _match(detector68.detect(read_image(data_dir / "udacity" / "test" / name)), from_ibug68(lm))
        if face is not None:
            o, t = face.openness, openness(lm)
            pred.append((o.mouth, (o.left_eye + o.right_eye) / 2))
            truth.append((t.mouth, (t.left_eye + t.right_eye) / 2))
    pred, truth = np.array(pred), np.array(truth)
    assert len(pred) >= 0.9 * len(names), (len(pred), len(names))
    r_mouth, r_eyes = (float(np.corrcoef(pred[:, k], truth[:, k])[0, 1]) for k in (0, 1))
    # measured (the shipped points68 model, 103 of 103 frames found): mouth r = 0.70, eyes r = 0.68; the
    # eyes' spread is compressed (5th percentile 0.22 against the labels' 0.19), though each person's
    # closed frame scores below the open one (test above)
    assert r_mouth > 0.55 and r_eyes > 0.4, (r_mouth, r_eyes)
