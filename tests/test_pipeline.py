"""The photo pipeline end to end on real faces, and every kind of bad input."""

import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints.errors import InputError
from facekeypoints.imageio import as_image, to_gray
from facekeypoints.metrics import nme_per_face


def _match(faces, kp):
    """The detected face whose eye midpoint is nearest the labelled one (None if outside every box)."""
    mid = (kp[0] + kp[1]) / 2
    inside = [f for f in faces if f.box[0] < mid[0] < f.box[2] and f.box[1] < mid[1] < f.box[3]]
    return min(inside, key=lambda f: np.linalg.norm((f.keypoints[0] + f.keypoints[1]) / 2 - mid), default=None)


def test_keypoints_on_real_300w_faces(detector, val_300w):
    samples = val_300w[::4]  # photo-disjoint from training
    errors, found = [], 0
    for s in samples:
        faces = detector.detect(s.image)
        f = _match(faces, s.keypoints)
        if f is None:
            continue
        found += 1
        kp = f.keypoints
        assert kp.shape == (15, 2) and kp.dtype == np.float32
        x0, y0, x1, y1 = f.box
        pad = 0.4 * (x1 - x0)  # the learned detector's square box can sit below the brows (Haar's: 0.25 was enough)
        assert ((kp[:, 0] > x0 - pad) & (kp[:, 0] < x1 + pad) & (kp[:, 1] > y0 - pad) & (kp[:, 1] < y1 + pad)).all()
        # the subject's left eye is on the image's right
        assert kp[0, 0] > kp[1, 0]
        errors.append(float(nme_per_face(kp[None], s.keypoints[None])[0]))
    # shipped model, measured: 46 of 49 found, median NME 0.032, mean 0.033
    assert found >= 0.9 * len(samples), (found, len(samples))
    assert np.median(errors) < 0.04, np.median(errors)
    assert np.mean(errors) < 0.042, np.mean(errors)


def test_keypoints_for_supplied_boxes(haar, val_300w):
    """Boxes you supply are cropped the Haar way (frame_from_box): with Haar's own boxes, the same
    keypoints as detect (the learned detector's faces are cropped from their five points instead)."""
    detector = haar
    s = val_300w[0]
    faces = detector.detect(s.image)
    kp = detector.keypoints(str(s.image), [f.box for f in faces])
    assert kp.shape == (len(faces), 15, 2)
    np.testing.assert_allclose(kp, np.stack([f.keypoints for f in faces]), atol=1e-3)


def test_mirror_averaging(detector, val_300w):
    """The final pass averaged with its mirror image: exactly mirror-symmetric (left/right
    names swapped back), and closer to the labels than the single pass on real faces."""
    from facekeypoints.geometry import crop, frame_from_box, mirror_average
    from facekeypoints.schema import flip_keypoints

    assert detector.flip
    single = fk.KeypointDetector(detector.model, detector=detector.detector, flip=False)
    crops, better, errors = [], [], {True: [], False: []}
    for s in val_300w[::4]:
        image = as_image(s.image)  # decoded once, for the detector, the crop and the single pass
        f = _match(detector.detect(image), s.keypoints)
        if f is None:
            continue
        crops.append(crop(to_gray(image), frame_from_box(f.box)))
        e = {flip: float(nme_per_face(kp[None], s.keypoints[None])[0])
             for flip, kp in ((True, f.keypoints), (False, single.keypoints(image, [f.box])[0]))}
        for k, v in e.items():
            errors[k].append(v)
        better.append(e[True] < e[False])
    crops = np.stack(crops)
    avg = mirror_average(detector.model.predict, crops)
    np.testing.assert_allclose(mirror_average(detector.model.predict, np.ascontiguousarray(crops[:, :, ::-1])),
                               flip_keypoints(avg, 96), atol=1e-3)
    # shipped model on every second validation photo: better on 74% of faces, mean NME 3.18% vs 3.28%
    assert np.mean(errors[True]) < np.mean(errors[False]), (np.mean(errors[True]), np.mean(errors[False]))
    assert np.mean(better) > 0.55, np.mean(better)


def test_box_on_part_of_a_face_is_dropped(haar, data_dir):
    """A tongue stuck out fools the Haar cascade into a "face" on the mouth; the keypoints then
    span a small face inside the box, and the detection is dropped instead of reported."""
    detector = haar
    from facekeypoints.schema import from_ibug68
    from facekeypoints.training.data.landmarks import read_pts

    photo = data_dir / "300w" / "helen" / "trainset" / "118471529_1.jpg"
    labels = from_ibug68(read_pts(photo.with_suffix(".pts")))
    ungated = fk.KeypointDetector(detector.model, detector=detector.detector, min_keypoint_scale=0).detect(photo)
    assert any(nme_per_face(f.keypoints[None], labels[None])[0] > 0.3 for f in ungated)  # the mouth "face"
    for f in detector.detect(photo):
        assert nme_per_face(f.keypoints[None], labels[None])[0] < 0.1


def _covers(faces, x: float, y: float) -> bool:
    """Whether some face or detection box contains the point (x, y)."""
    return any(f.box[0] < x < f.box[2] and f.box[1] < y < f.box[3] for f in faces)


def _photo_labels(data_dir):
    """dlib's group photos with their face boxes as (left, top, width, height)."""
    from facekeypoints.training.detector.measure import dlib_photos

    for path, boxes in dlib_photos(data_dir):
        yield path, [(int(x0), int(y0), int(x1 - x0), int(y1 - y0)) for x0, y0, x1, y1 in boxes]


@pytest.mark.parametrize("which", ["default", "haar"])
def test_multi_face_photos(which, detector, haar, data_dir):
    """dlib's group photos (43 faces). Measured: the default (learned) detector 40, Haar 41."""
    detector = {"default": detector, "haar": haar}[which]
    total = hit = 0
    for path, boxes in _photo_labels(data_dir):
        faces = detector.detect(path)
        sizes = [f.size for f in faces]
        assert sizes == sorted(sizes, reverse=True)  # largest first
        found = sum(_covers(faces, left + w / 2, t + h / 2) for left, t, w, h in boxes)
        # Haar misses turned faces; dlib's 2007_007763.jpg has a 3/4 profile and a tilted face at 37 px;
        # the learned detector misses two 37 px faces of 2008_002079.jpg
        assert found >= len(boxes) - 2, (path.name, found, len(boxes))
        total += len(boxes)
        hit += found
    assert hit >= (41 if which == "haar" else 40), (hit, total)


def test_dogs_have_no_faces(detector, data_dir):
    assert detector.detect(data_dir / "photos" / "dogs.jpg") == []


def test_draw_returns_annotated_copy(detector, val_300w):
    img = fk.read_image(val_300w[0].image)
    faces = detector.detect(img)
    out = fk.draw(img, faces)
    assert out.shape == img.shape and not np.shares_memory(out, img)
    assert (out != img).any()


def _png16(path, w=64, h=48):
    img = (np.linspace(0, 65535, w * h).reshape(h, w)).astype(np.uint16)
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def face_photo(val_300w):
    return fk.read_image(val_300w[0].image)


def test_image_variants_give_faces(detector, tmp_path, face_photo):
    grey = cv2.cvtColor(face_photo, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(face_photo, cv2.COLOR_BGR2BGRA)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "deep.png"), (cv2.cvtColor(face_photo, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257))
    ref = detector.detect(face_photo)
    assert ref
    for name in ("grey.png", "rgba.png", "deep.png"):
        faces = detector.detect(tmp_path / name)
        assert faces, name
        assert np.abs(faces[0].keypoints - ref[0].keypoints).max() < 3.0, name
    assert detector.detect(grey)  # a 2-D array works too


def test_huge_and_tiny_images(detector, tmp_path, face_photo):
    one = tmp_path / "one.png"
    cv2.imwrite(str(one), np.zeros((1, 1, 3), np.uint8))
    assert detector.detect(one) == []
    big = np.full((12000, 12000, 3), 128, np.uint8)
    h, w = face_photo.shape[:2]
    big[5000:5000 + h, 5000:5000 + w] = face_photo
    faces = detector.detect(big)
    assert isinstance(faces, list)
    for f in faces:
        assert np.isfinite(f.keypoints).all()


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "missing", "directory"])
def test_bad_files_raise_one_line_input_errors(tmp_path, val_300w, kind):
    p = tmp_path / "bad.jpg"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not an image\n")
    elif kind == "truncated":
        p.write_bytes(val_300w[0].image.read_bytes()[:300])
    elif kind == "directory":
        p.mkdir()
    with pytest.raises(InputError) as e:
        fk.read_image(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_decompression_bomb_png_is_refused(tmp_path):
    # a valid PNG header claiming 60000x60000 pixels (3.6 GP) with a tiny body
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    p = tmp_path / "bomb.png"
    p.write_bytes(png)
    with pytest.raises(InputError, match="too large"):
        fk.read_image(p)


def test_detect_does_not_import_torch(tmp_path, val_300w):
    code = ("import sys, facekeypoints as fk; d = fk.KeypointDetector(); d.detect(sys.argv[1]); "
            "import facekeypoints.cli as c; c.build_parser(); "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(val_300w[0].image)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_fast_detector_finds_portrait_faces(val_300w, data_dir):
    from facekeypoints.detection import HaarDetector

    det = fk.KeypointDetector(detector=HaarDetector.fast())
    samples = val_300w[::3]
    found = sum(_match(det.detect(s.image), s.keypoints) is not None for s in samples)
    assert found >= 0.88 * len(samples), (found, len(samples))


def test_big_face_pass_finds_faces_the_main_pass_loses(val_300w):
    """Large faces (here 80-160 px between the eyes in 512 px photos) that the cascade loses at
    its largest scales: the big-face pass must recover several and never lose one (3 of the
    first 100 validation photos since the coarse-to-fine main pass, which finds some itself)."""
    from facekeypoints.detection import HaarDetector
    from facekeypoints.imageio import read_image, to_gray

    with_big, without = HaarDetector(profile=False), HaarDetector(profile=False, big_side=0)
    gained = lost = 0
    for s in val_300w[:100]:
        gray = to_gray(read_image(s.image))
        eye = s.keypoints[:2].mean(axis=0)
        hit = [_covers(det(gray), *eye) for det in (with_big, without)]
        gained += hit[0] and not hit[1]
        lost += hit[1] and not hit[0]
    assert gained >= 3 and lost == 0, (gained, lost)


def test_coarse_to_fine_skips_the_fine_pass_on_portraits_and_loses_no_face(val_300w, data_dir):
    """The quick coarse pass must settle most portrait photos alone (the fine pass is the
    expensive one), find at least as many labelled faces as the fine pass alone, and hand
    dlib's group photos of small faces to the fine pass."""
    from facekeypoints.detection import HaarDetector
    from facekeypoints.imageio import read_image, to_gray

    c2f, fine = HaarDetector(profile=False), HaarDetector(profile=False, coarse=None)
    fine_runs = []
    run = c2f._run
    # the fine pass is the call with neither coarse steps nor the big-face pass's min_size
    c2f._run = lambda *a, **k: fine_runs.append(not k) or run(*a, **k)

    found = {"c2f": 0, "fine": 0}
    photos = 0
    for s in val_300w[:60]:
        gray = to_gray(read_image(s.image))
        eye = s.keypoints[:2].mean(axis=0)
        n = len(fine_runs)
        found["c2f"] += _covers(c2f(gray), *eye)
        photos += any(fine_runs[n:])
        found["fine"] += _covers(fine(gray), *eye)
    assert found["c2f"] >= found["fine"] >= 50, found
    assert photos <= 0.3 * 60, photos  # fine pass on at most 30% of the portraits

    for path, boxes in _photo_labels(data_dir):
        gray = to_gray(read_image(path))
        dets = {name: det(gray) for name, det in (("c2f", c2f), ("fine", fine))}
        hits = {name: sum(_covers(d, left + w / 2, t + h / 2) for left, t, w, h in boxes) for name, d in dets.items()}
        assert hits["c2f"] >= hits["fine"], (path.name, hits)


def test_second_box_on_a_face_is_one_face(haar, data_dir):
    """dlib's 2008_002470.jpg: the cascade also boxes the lower half of a woman's face and her collar;
    its keypoints (sunglasses on her collar) overlap her real face's keypoint frame by 0.71 of it, and
    the better-scored face is kept. Every face left sits on one of dlib's six labelled faces. (The
    verifier retrained in session 8 drops that box already, so the suppression is shown without it.)"""
    from facekeypoints.pipeline import MAX_FRAME_OVERLAP, frame_overlap, one_per_face

    detector = haar
    name = "2008_002470.jpg"
    boxes = next(b for p, b in _photo_labels(data_dir) if p.name == name)
    faces = detector.detect(data_dir / "photos" / name)
    assert len(faces) == len(boxes) == 6
    for f in faces:
        assert _covers_eyes(f, boxes), f.box  # eye midpoint inside a labelled box
        assert 0.5 < f.score <= 1
    # the duplicate is really there before the suppression, and it is the worse-scored of the pair
    import facekeypoints.pipeline as pl
    from facekeypoints.geometry import frame_from_keypoints

    keep = pl.one_per_face
    try:
        pl.one_per_face = lambda fs: fs
        every = fk.KeypointDetector(detector.model, detector=detector.detector, verifier=None).detect(
            data_dir / "photos" / name)
    finally:
        pl.one_per_face = keep
    assert len(every) == 7
    frames = [frame_from_keypoints(f.keypoints) for f in every]
    pairs = [(i, j) for i in range(7) for j in range(i + 1, 7) if frame_overlap(frames[i], frames[j]) > MAX_FRAME_OVERLAP]
    assert len(pairs) == 1, pairs
    worse = min(pairs[0], key=lambda k: every[k].score)
    assert every[worse].score < 0.6 < 0.9 < max(every[k].score for k in pairs[0])  # measured 0.56 and 0.97
    better = every[sum(pairs[0]) - worse]
    assert nme_per_face(every[worse].keypoints[None], better.keypoints[None])[0] > 0.3  # far below the real face
    assert one_per_face(every) == [f for k, f in enumerate(every) if k != worse]


def _covers_eyes(face, boxes) -> bool:
    mid = (face.keypoints[0] + face.keypoints[1]) / 2
    return any(x < mid[0] < x + w and y < mid[1] < y + h for x, y, w, h in boxes)


def test_haar_score_is_a_face_probability(haar, data_dir, val_300w):
    """Face.score is 0-1 (Haar: the calibrated weight); real 300-W faces score high."""
    detector = haar
    from facekeypoints.detection import haar_confidence

    assert 0 < haar_confidence(-3) < haar_confidence(2) < haar_confidence(8) < 1
    scores = [f.score for s in val_300w[::8] for f in detector.detect(s.image)]
    assert all(0 <= v <= 1 for v in scores) and np.median(scores) > 0.85, np.median(scores)
