"""The shipped learned face detector on real photos, bad input, and the no-torch rule."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints.detection import box_iou, make_detector
from facekeypoints.detection.learned import (
    DEFAULT_SCALES,
    FIVE_INDEX,
    LearnedDetector,
    Scale,
    box_from_points,
    default_detector_path,
    letterbox,
    pyramid,
)
from facekeypoints.metrics import nme_per_face


@pytest.fixture(scope="module")
def learned():
    return LearnedDetector(threads=1)


@pytest.fixture(scope="module")
def val_photos(data_dir):
    """300-W and LFPW validation photos (the keypoint model's split), with their labels."""
    from facekeypoints.training.data.landmarks import in_validation, load_300w

    out = [s for s in load_300w(data_dir / "300w") if in_validation(s.group, 0.15, 0)]
    out += [s for s in load_300w(data_dir / "lfpw") if in_validation("lfpw/" + s.image.stem, 0.15, 0)]
    return out


def test_shipped_model_is_small_and_checked():
    p = default_detector_path()
    assert p.is_file() and p.stat().st_size <= 2 * 1024 * 1024
    meta = json.loads(p.with_suffix(".json").read_text())
    assert meta["format"] == "facekeypoints-detector-onnx/1" and len(meta["sha256"]) == 64


def test_corrupt_model_is_refused(tmp_path):
    bad = tmp_path / "detector.onnx"
    bad.write_bytes(default_detector_path().read_bytes()[:-10] + b"0123456789")
    (tmp_path / "detector.json").write_text(default_detector_path().with_suffix(".json").read_text())
    with pytest.raises(fk.FkpError, match="sha256"):
        LearnedDetector(bad)


def test_registered_by_name_and_the_default():
    from facekeypoints.detection import DEFAULT_DETECTOR, HaarDetector

    assert DEFAULT_DETECTOR == "learned"
    assert isinstance(make_detector("learned"), LearnedDetector)
    assert isinstance(make_detector(), LearnedDetector)
    assert isinstance(make_detector("learned-fast"), LearnedDetector)
    assert isinstance(fk.KeypointDetector(detector="learned").detector, LearnedDetector)
    assert isinstance(fk.KeypointDetector().detector, LearnedDetector)
    assert isinstance(fk.KeypointDetector(detector="haar").detector, HaarDetector)


def test_scales():
    """Two passes by default (224 px for the faces of >= 32 px there, 448 px, never enlarged, for those
    under 100 px there: the bands overlap, as the two passes' size estimates differ by up to ~15%);
    ``max_side``/``score_threshold`` give the single pass the detector had before; the fast preset
    one pass at 256 px."""
    assert DEFAULT_SCALES == (Scale(224, 0.3, 32.0), Scale(448, 0.3, 0.0, 100.0, max_upscale=1.0))
    assert LearnedDetector().scales == DEFAULT_SCALES
    assert LearnedDetector(max_side=320, score_threshold=0.5).scales == (Scale(320, 0.5),)
    assert LearnedDetector.fast().scales == (Scale(256, 0.5),)
    with pytest.raises(ValueError):
        LearnedDetector(scales=())


def test_pyramid_matches_letterbox(val_photos):
    """The pyramid resizes level from level (a 640x480 frame's 224 px level from its 448 px one); the
    input is what letterbox gives from the picture itself, within resampling differences."""
    img = cv2.cvtColor(cv2.resize(fk.read_image(val_photos[0].image), (640, 480)), cv2.COLOR_BGR2GRAY)
    levels = pyramid(img, [letterbox(img, s)[1] for s in (224, 448)])
    for side in (224, 448):
        x, f = letterbox(img, side)
        assert levels[f].shape == x.shape == (1, 1, -(-round(480 * f) // 32) * 32, side)
        assert np.abs(levels[f] - x).mean() < 0.01
    tiny = np.zeros((60, 80), np.uint8)  # enlarged 2x at most: both sides give one level
    assert len(pyramid(tiny, [letterbox(tiny, s)[1] for s in (224, 448)])) == 1


def test_box_convention_covers_the_68_point_face(data_dir):
    """The box from five points approximates the 68-point extent: over 300-W, its side is within
    20% of the extent's (geometric mean of width and height) for 90% of the faces."""
    from facekeypoints.schema import from_ibug68
    from facekeypoints.training.data.landmarks import read_pts

    ratios = []
    for pts in sorted((data_dir / "300w" / "afw").glob("*.pts"))[:200]:
        p68 = read_pts(pts)
        b = box_from_points(from_ibug68(p68)[FIVE_INDEX])
        w, h = p68.max(0) - p68.min(0)
        ratios.append((b[2] - b[0]) / np.sqrt(w * h))
    ratios = np.array(ratios)
    assert 0.9 < np.median(ratios) < 1.1
    assert np.mean(np.abs(np.log(ratios)) < np.log(1.2)) >= 0.9


def test_finds_validation_faces_with_iou(learned, val_photos):
    """Whole photos: each labelled face found by a box of IoU >= 0.5 against the box of its labels,
    with a 0-1 score and five points near the labelled ones."""
    found, nme5 = 0, []
    for s in val_photos:
        dets = learned(fk.read_image(s.image))
        ref = tuple(box_from_points(s.keypoints[FIVE_INDEX]))
        ious = [box_iou(d.box, ref) for d in dets]
        assert all(0.0 <= d.score <= 1.0 for d in dets)
        if ious and max(ious) >= 0.5:
            found += 1
            d = dets[int(np.argmax(ious))]
            p5 = np.array(d.points)
            iod = np.linalg.norm(s.keypoints[FIVE_INDEX][0] - s.keypoints[FIVE_INDEX][1])
            nme5.append(np.linalg.norm(p5 - s.keypoints[FIVE_INDEX], axis=1).mean() / iod)
    # measured with the shipped model and the two default passes: 307 of the 311 faces (98.7%; one
    # pass at 320 px found 94%), five points 0.12 eye distances off (median)
    assert found / len(val_photos) >= 0.97, (found, len(val_photos))
    assert np.median(nme5) < 0.15


def _photo_labels(data_dir):
    """dlib's group photos with their face boxes as (left, top, width, height)."""
    from facekeypoints.training.detector.measure import dlib_photos

    for path, boxes in dlib_photos(data_dir):
        yield path, [(int(x0), int(y0), int(x1 - x0), int(y1 - y0)) for x0, y0, x1, y1 in boxes]


def _group_photo_counts(detect, data_dir) -> tuple[int, int, int]:
    """dlib's group photos (never trained on): (faces, faces found (dlib box centre inside a
    detection box), detections that hold no dlib face)."""
    total = hit = false = 0
    for path, boxes in _photo_labels(data_dir):
        dets = detect(fk.read_image(path))
        inside = [[d.box[0] < x + w / 2 < d.box[2] and d.box[1] < y + h / 2 < d.box[3] for d in dets] for x, y, w, h in boxes]
        hit += sum(any(r) for r in inside)
        false += sum(not any(r[j] for r in inside) for j in range(len(dets)))
        total += len(boxes)
    return total, hit, false


def test_multi_face_photos_and_false_alarms(learned, data_dir):
    """The detector alone (session 7's network), two passes at threshold 0.3: all 43 faces, with 58
    false alarms that the pipeline's gates are there to remove (its 448 px pass sees the 20-30 px
    faces at 28-42 px). Through the pipeline: 43 faces, no false alarm (session 8's verifier; with the
    previous one, 2: a wall socket and a patch beside it in 2008_007676.jpg); without the mirror gate
    43 and 6, without the verifier 43 and 3."""
    total, hit, false = _group_photo_counts(learned, data_dir)
    assert total == 43
    assert hit >= 42, hit
    assert false <= 70, false
    kd = fk.KeypointDetector(detector="learned", threads=1)
    _, hit_p, false_p = _group_photo_counts(kd.detect, data_dir)
    assert hit_p >= 42 and false_p <= 1, (hit_p, false_p)  # issue #15's target
    for gate in ({"max_mirror_gap": None}, {"verifier": None}):  # each gate earns its place
        _, hit_u, false_u = _group_photo_counts(fk.KeypointDetector(detector="learned", threads=1, **gate).detect,
                                                data_dir)
        assert hit_u >= hit_p and false_u >= false_p + 2, (gate, hit_u, false_u)


def test_no_face_on_dogs(learned, data_dir):
    """The detector alone finds 13 "faces" on dogs.jpg; the verifier, the keypoint span and the mirror
    gate remove them all. Fragile: one is a dog's face that scores 0.48 at 224 px and 0.81 at 448 px
    and passes the verifier and the span gate; only the mirror gate drops it, and with the 110-epoch
    keypoint candidate (docs/training/ablation) it passes that too (mirror gap 0.016)."""
    assert len(learned(fk.read_image(data_dir / "photos" / "dogs.jpg"))) <= 20
    assert fk.KeypointDetector(detector="learned", threads=1).detect(data_dir / "photos" / "dogs.jpg") == []
    assert fk.KeypointDetector(threads=1).detect(data_dir / "photos" / "dogs.jpg") == []


@pytest.mark.parametrize("cut", [30, 37, 44, 51])
def test_tracker_refinds_a_face_after_a_scene_cut(data_dir, cut):
    """After a hard cut the tracker (learned detector) reports the new person within 5 frames, at every
    phase of its detection schedule (with the two passes' size bands not overlapping, the new face,
    ~115 px, fell between them and was found 15 frames late)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import videos

    from facekeypoints.video.tracker import VideoTracker

    clip = videos.cut_clip(data_dir, cut + 12, cut=cut)
    tr = VideoTracker(smooth="none")
    for i, f in enumerate(clip.frames()):
        faces = tr.update(f, i / clip.fps)
        if i >= cut and any(nme_per_face(x.keypoints, clip.truth(i)[0]) < 0.1 for x in faces):
            assert i - cut <= 5, i - cut
            return
    pytest.fail("the new face was never found")


def test_mirror_gate_keeps_real_faces(val_photos):
    """The mirror gate drops no real face the pipeline finds without it, on every fourth
    validation photo (the faces the gate costs are rare: 0-2% of the faces in training pictures)."""
    gated = fk.KeypointDetector(detector="learned", threads=1)
    ungated = fk.KeypointDetector(detector="learned", threads=1, max_mirror_gap=None)
    lost = found = 0
    for s in val_photos[::4]:
        ref = tuple(box_from_points(s.keypoints[FIVE_INDEX]))
        a = any(box_iou(f.box, ref) >= 0.5 for f in ungated.detect(s.image))
        b = any(box_iou(f.box, ref) >= 0.5 for f in gated.detect(s.image))
        found += a
        lost += a and not b
    assert found >= 70 and lost <= 1, (found, lost)


def test_scores_of_real_faces(val_photos):
    """Face.score is the detector's 0-1 face probability; real validation faces score 0.84 (median)."""
    kd = fk.KeypointDetector(threads=1)
    scores = [f.score for s in val_photos[::4] for f in kd.detect(s.image)]
    assert all(0.3 <= v <= 1 for v in scores) and np.median(scores) > 0.75, np.median(scores)


def test_bad_input(learned, val_photos):
    img = fk.read_image(val_photos[0].image)
    assert learned(np.zeros((1, 1), np.uint8)) == []
    assert learned(np.zeros((0, 5, 3), np.uint8)) == []
    assert learned(np.zeros((7, 3, 3), np.uint8)) == []
    ref = learned(img)
    assert ref
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    for variant in (grey, rgba, grey[:, :, None], grey.astype(np.uint16) * 257, grey.astype(np.float32) / 255):
        got = learned(variant)
        assert got and box_iou(got[0].box, ref[0].box) > 0.9
    big = np.full((9000, 12000, 3), 128, np.uint8)  # a huge picture: the face small in it, finite output
    h, w = img.shape[:2]
    big[4000:4000 + h, 5000:5000 + w] = img
    for d in learned(big):
        assert np.isfinite(d.box).all() and np.isfinite(d.points).all()


def test_pipeline_with_learned_detector(val_photos):
    """End to end: keypoints from the learned detector's five-point crops stay accurate."""
    kd = fk.KeypointDetector(detector="learned", threads=1)
    errs = []
    for s in val_photos[:80]:
        faces = kd.detect(s.image)
        ref = box_from_points(s.keypoints[FIVE_INDEX])
        near = [f for f in faces if box_iou(f.box, tuple(ref)) >= 0.5]
        if near:
            assert 0.0 <= near[0].score <= 1.0
            errs.append(nme_per_face(near[0].keypoints[None], s.keypoints[None])[0])
    assert len(errs) >= 72, len(errs)
    assert np.mean(errs) < 0.045, np.mean(errs)


def test_learned_detect_does_not_import_torch(val_photos):
    code = ("import sys, facekeypoints as fk; d = fk.KeypointDetector(detector='learned'); "
            "assert d.detect(sys.argv[1]); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(val_photos[0].image)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_cli_detector_option(tmp_path, val_photos):
    out = tmp_path / "faces.json"
    r = subprocess.run([sys.executable, "-m", "facekeypoints.cli", "detect", str(val_photos[0].image), "--detector", "learned",
                        "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())[0]
    assert rec["faces"] and 0 <= rec["faces"][0]["score"] <= 1


def test_tracker_with_learned_detector(data_dir):
    """VideoTracker re-detecting with the learned detector follows a moving, rolling face with one id."""
    sys.path.insert(0, str(Path(__file__).parent))
    import videos

    from facekeypoints.video.tracker import VideoTracker, video_detector

    clip = videos.moving_clip(data_dir, 60)
    tr = VideoTracker(detector=video_detector(detector="learned"), smooth="none")
    per_frame = [tr.update(f, i / clip.fps) for i, f in enumerate(clip.frames())]
    assert all(len(faces) == 1 for faces in per_frame), [len(f) for f in per_frame]
    assert {faces[0].id for faces in per_frame} == {1}
    err = np.array([nme_per_face(faces[0].keypoints, clip.truth(i)[0]) for i, faces in enumerate(per_frame)])
    assert err.mean() < 0.10 and err.max() < 0.20, (err.mean(), err.max())
