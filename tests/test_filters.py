"""Face filters on real faces: placement follows rotated faces, blending touches only
the sprite, borders and odd inputs don't crash, the CLI lists and applies them."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facekeypoints.errors import FkpError
from facekeypoints.filters import FILTERS, BigEyesFilter, PixelateFilter, SpriteFilter, apply_filter, check_filter_names
from facekeypoints.filters import placement as filter_placement
from facekeypoints.filters.artwork import render
from facekeypoints.schema import LEFT_EYE, RIGHT_EYE

REQUIRED = ("sunglasses", "moustache", "crown", "dog", "clown_nose", "blur")
SPRITE_FILTERS = [n for n, f in FILTERS.items() if isinstance(f, SpriteFilter)]
# A frontal 300-W validation face (photo-disjoint from training).
ROTATION_PHOTO = "4332978153_1.jpg"


def _rotate(image: np.ndarray, kp: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a photo about its centre by deg (counter-clockwise on screen); keypoints follow."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), deg, 1.0)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, np.asarray(kp, np.float64) @ m[:, :2].T + m[:, 2]


def _nearest_face(faces, point: np.ndarray):
    return min(faces, key=lambda f: float(np.linalg.norm((f.keypoints[LEFT_EYE] + f.keypoints[RIGHT_EYE]) / 2 - point)))


def _eye_line(kp: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Angle (radians, image y down) of the right-eye -> left-eye line, eye midpoint, eye distance."""
    d = kp[LEFT_EYE] - kp[RIGHT_EYE]
    return math.atan2(float(d[1]), float(d[0])), (kp[LEFT_EYE] + kp[RIGHT_EYE]) / 2, float(np.linalg.norm(d))


def _sunglasses_pose(face) -> tuple[float, np.ndarray]:
    """Where the detector put the sunglasses: rotation and the image point between the lens anchors."""
    m = filter_placement("sunglasses", face)
    a = FILTERS["sunglasses"].parts[0].anchors
    centre = (a["left_eye_center"] + a["right_eye_center"]) / 2
    return math.atan2(m[1, 0], m[0, 0]), m[:, :2] @ centre + m[:, 2]


def _angle_diff_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.remainder(a - b, 2 * math.pi)))


@pytest.fixture(scope="module")
def photo(data_dir):
    """A real multi-face photo, its detected faces."""
    import facekeypoints as fk

    path = data_dir / "photos" / "2008_002506.jpg"
    image = cv2.imread(str(path))
    faces = fk.KeypointDetector().detect(image)
    assert len(faces) >= 2
    return path, image, faces


# --- registry and names ---

def test_registry_has_the_filters_with_one_line_descriptions():
    assert set(REQUIRED) <= set(FILTERS)
    assert len(FILTERS) >= 6
    for name, f in FILTERS.items():
        assert f.name == name
        assert f.description and "\n" not in f.description and len(f.description) < 80


def test_filter_names_are_checked():
    assert check_filter_names("sunglasses, moustache") == ["sunglasses", "moustache"]
    assert check_filter_names(["dog"]) == ["dog"]
    with pytest.raises(FkpError, match=r"unknown filter 'sunglases'; choose from sunglasses, moustache"):
        check_filter_names("sunglases")
    with pytest.raises(FkpError, match="no filter given"):
        check_filter_names(" , ")
    with pytest.raises(FkpError, match="unknown filter 'x'"):
        apply_filter(np.zeros((8, 8, 3), np.uint8), [], ["sunglasses", "x"])


def test_sprites_are_cached_with_soft_premultiplied_alpha():
    for name in SPRITE_FILTERS:
        for part in FILTERS[name].parts:
            sprite = render(part.art)
            assert render(part.art) is sprite  # rendered once
            lv = sprite.levels[0]
            a = lv[..., 3]
            assert lv.dtype == np.uint8 and lv.shape[2] == 4
            assert (a == 255).sum() > 200, part.art.name  # a solid body ...
            soft = ((a > 0) & (a < 255)).sum()
            assert soft > 0.1 * (a == 255).sum() ** 0.5, part.art.name  # ... with an anti-aliased rim
            assert (lv[..., :3].max(axis=2).astype(int) <= a.astype(int) + 1).all()  # premultiplied
            assert a[0].max() == a[-1].max() == a[:, 0].max() == a[:, -1].max() == 0, part.art.name  # fits its box


def test_sunglasses_anchors_map_lenses_to_the_right_eyes():
    """The lens on the sprite's right goes to the subject's LEFT eye (image right)."""
    a = FILTERS["sunglasses"].parts[0].anchors
    assert a["left_eye_center"][0] > a["right_eye_center"][0]
    w = render(FILTERS["sunglasses"].parts[0].art).levels[0].shape[1]
    assert a["left_eye_center"][0] > w / 2 > a["right_eye_center"][0]


# --- placement on real, rotated faces ---

def _retried(detector, image: np.ndarray, gt_mid: np.ndarray) -> list:
    """The Haar detections from rotated retries that contain the face."""
    dets = detector.detector(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    return [d for d in dets if d.angle != 0 and d.box[0] < gt_mid[0] < d.box[2] and d.box[1] < gt_mid[1] < d.box[3]]


def _check_retry_roll(detector, image, gt_angle: float, gt_mid: np.ndarray) -> None:
    """A rotated retry's box carries the face's roll (a wrong sign would turn the crop the wrong way)."""
    assert all(_angle_diff_deg(d.angle, gt_angle) <= 45 for d in _retried(detector, image, gt_mid))


def test_haar_rotated_retry_carries_the_face_roll(val_300w, haar):
    detector = haar
    sample = next(s for s in val_300w if s.image.name == ROTATION_PHOTO)
    checked = 0
    for deg in (30.0, -30.0):
        image, gt = _rotate(cv2.imread(str(sample.image)), sample.keypoints, deg)
        gt_angle, gt_mid, _ = _eye_line(gt)
        for d in _retried(detector, image, gt_mid):
            checked += 1
            assert _angle_diff_deg(d.angle, gt_angle) < 15
    if not checked:
        pytest.skip("the rotated face was found without a rotated retry")


@pytest.mark.parametrize("deg", [30.0, -30.0, 0.0])
def test_sunglasses_follow_a_rotated_face(val_300w, detector, deg):
    sample = next(s for s in val_300w if s.image.name == ROTATION_PHOTO)
    image, gt = _rotate(cv2.imread(str(sample.image)), sample.keypoints, deg)
    gt_angle, gt_mid, gt_iod = _eye_line(gt)
    assert _angle_diff_deg(gt_angle, math.radians(-deg)) < 15  # the face really is rolled
    _check_retry_roll(detector, image, gt_angle, gt_mid)
    faces = detector.detect(image)
    assert faces, f"no face found at {deg} degrees"
    face = _nearest_face(faces, gt_mid)
    angle, centre = _sunglasses_pose(face)
    # against the ground truth eyes
    assert _angle_diff_deg(angle, gt_angle) < 3.0
    assert np.linalg.norm(centre - gt_mid) < 0.05 * gt_iod
    # against the detected eyes the transform is (nearly) exact
    det_angle, det_mid, det_iod = _eye_line(face.keypoints)
    assert _angle_diff_deg(angle, det_angle) < 3.0
    assert np.linalg.norm(centre - det_mid) < 0.05 * det_iod


def test_fit_is_exact_for_two_points_and_pins_land_exactly():
    """Two anchors map exactly; a pinned point lands exactly; many points follow a known rotation."""
    from facekeypoints.filters.placement import TEMPLATE, fit_similarity

    rng = np.random.default_rng(0)
    base = np.array(list(TEMPLATE.values()))
    for _ in range(5):
        ang, s, t = rng.uniform(-np.pi, np.pi), rng.uniform(20, 200), rng.uniform(-50, 500, 2)
        r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        src, dst = rng.uniform(0, 100, (2, 2)), rng.uniform(0, 100, (2, 2))
        m2 = fit_similarity(src, dst)
        np.testing.assert_allclose(src @ m2[:, :2].T + m2[:, 2], dst, atol=1e-9)
        kp = base @ r.T * s + t + rng.normal(0, 0.02 * s, base.shape)
        part = FILTERS["clown_nose"].parts[0]
        m = part.placement(kp)
        np.testing.assert_allclose(m[:, :2] @ part.anchors["nose_tip"] + m[:, 2], kp[10], atol=1e-6)
        glasses = filter_placement("sunglasses", kp)
        assert _angle_diff_deg(math.atan2(glasses[1, 0], glasses[0, 0]), ang) < 3
        # sprite pixels per IOD on screen = s / unit
        art = FILTERS["sunglasses"].parts[0].art
        assert abs(math.hypot(glasses[0, 0], glasses[1, 0]) * art.unit / s - 1) < 0.1


# --- blending ---

def _sprite_coverage(name: str, faces, shape) -> np.ndarray:
    """Full-frame warp of every part's alpha (independent of the ROI code), grown by 2 px."""
    cover = np.zeros(shape[:2], np.uint8)
    for f in faces:
        for part in FILTERS[name].parts:
            alpha = render(part.art).levels[0][..., 3]
            m = part.placement(np.asarray(f.keypoints, np.float64))
            warped = cv2.warpAffine(alpha, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR)
            np.maximum(cover, warped, out=cover)
    return cover, cv2.dilate((cover > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


@pytest.mark.parametrize("name", SPRITE_FILTERS)
def test_blending_changes_only_pixels_under_the_sprite(photo, name):
    _, image, faces = photo
    before = image.copy()
    out = apply_filter(image, faces, name)
    assert np.array_equal(image, before)  # the input is not modified
    assert out.shape == image.shape and out.dtype == np.uint8 and out is not image
    cover, touched = _sprite_coverage(name, faces, image.shape)
    assert np.array_equal(out[~touched], image[~touched])  # bit-identical outside the sprite
    solid = cover > 250
    assert solid.sum() > 50
    diff = np.abs(out.astype(int) - image.astype(int)).max(axis=2)
    assert (diff[solid] > 0).mean() > 0.9  # and it really drew there


@pytest.mark.parametrize("name", [n for n, f in FILTERS.items() if isinstance(f, (PixelateFilter, BigEyesFilter))])
def test_pixel_effects_stay_on_the_face(photo, name):
    _, image, faces = photo
    out = apply_filter(image, faces, name)
    changed = np.abs(out.astype(int) - image.astype(int)).max(axis=2) > 0
    near = np.zeros(image.shape[:2], bool)
    for f in faces:
        angle, mid, iod = _eye_line(f.keypoints)
        yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
        near |= np.hypot(xx - mid[0], yy - (mid[1] + 0.4 * iod)) < 2.6 * iod
        if name == "blur":  # most of each face is pixelated
            x0, y0, x1, y1 = (int(v) for v in f.box)
            assert changed[y0:y1, x0:x1].mean() > 0.5
        else:  # around each eye
            for p in (f.keypoints[LEFT_EYE], f.keypoints[RIGHT_EYE]):
                x, y = int(p[0]), int(p[1])
                r = max(2, int(0.3 * iod))
                assert changed[y - r:y + r, x - r:x + r].mean() > 0.3
    assert not changed[~near].any()


def test_filters_combine_in_order(photo):
    _, image, faces = photo
    both = apply_filter(image, faces, "sunglasses,moustache")
    assert np.array_equal(both, apply_filter(image, faces, ["sunglasses", "moustache"]))
    assert np.array_equal(both, apply_filter(apply_filter(image, faces, "sunglasses"), faces, "moustache"))
    assert not np.array_equal(both, apply_filter(image, faces, "sunglasses"))
    # order matters where sprites overlap: blur after sunglasses pixelates the glasses too
    a = apply_filter(image, faces, "sunglasses,blur")
    b = apply_filter(image, faces, "blur,sunglasses")
    assert not np.array_equal(a, b)


def test_no_faces_gives_an_equal_copy(photo):
    _, image, _ = photo
    out = apply_filter(image, [], "dog")
    assert np.array_equal(out, image) and out is not image


# --- borders and odd inputs ---

def test_face_half_outside_the_frame(photo):
    """Crop through the middle of a face: every filter runs, output keeps the input's shape."""
    _, image, faces = photo
    _, mid, _ = _eye_line(faces[0].keypoints)
    x, y = int(mid[0]), int(mid[1])
    for crop, offset in ((image[:, x:], np.array([x, 0.0])), (image[y:], np.array([0.0, y])),
                         (image[:y, :x], np.zeros(2))):
        crop = np.ascontiguousarray(crop)
        moved = [np.asarray(f.keypoints, np.float64) - offset for f in faces]
        for name in FILTERS:
            out = apply_filter(crop, moved, name)
            assert out.shape == crop.shape and out.dtype == np.uint8
        assert not np.array_equal(apply_filter(crop, moved, "sunglasses"), crop)  # the visible part is drawn
    # the detector on a half face, end to end
    import facekeypoints as fk

    half = np.ascontiguousarray(image[:, x:])
    out = apply_filter(half, fk.KeypointDetector().detect(half), list(FILTERS))
    assert out.shape == half.shape


def test_faces_off_frame_tiny_or_huge_do_not_crash(photo):
    _, image, faces = photo
    kp = np.asarray(faces[0].keypoints, np.float64)
    c = kp.mean(axis=0)
    cases = [kp + [5000, 5000], kp - [5000, 0], (kp - c) * 0.01 + c, (kp - c) * 80 + c, np.full((15, 2), np.nan)]
    for k in cases:
        for name in FILTERS:
            out = apply_filter(image, [k], name)
            assert out.shape == image.shape
    for k in cases[:3] + cases[4:]:
        assert np.array_equal(apply_filter(image, [k], "sunglasses,blur"), image)
    assert np.array_equal(apply_filter(image[:1, :1], faces, "dog"), image[:1, :1])
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert apply_filter(grey, faces, "crown").shape == image.shape
    with pytest.raises(FkpError):
        apply_filter(image, [np.zeros((5, 2))], "crown")


# --- CLI ---

def test_cli_filters_lists_every_filter(capsys):
    from facekeypoints.cli import main

    assert main(["filters"]) == 0
    out = capsys.readouterr().out
    for name, f in FILTERS.items():
        assert name in out and f.description in out


def test_cli_detect_with_filters_writes_images(photo, tmp_path, capsys):
    from facekeypoints.cli import main

    path, image, faces = photo
    assert main(["detect", str(path), "--filter", "sunglasses", "-o", str(tmp_path / "a")]) == 0
    written = cv2.imread(str(tmp_path / "a" / path.name))
    assert written is not None and written.shape == image.shape
    expected = apply_filter(image, faces, "sunglasses")
    # same filter as the API (JPEG re-encoding aside), and different from the plain photo
    assert np.abs(written.astype(int) - expected.astype(int)).mean() < 3
    assert np.abs(written.astype(int) - image.astype(int)).mean() > 1
    assert main(["detect", str(path), "--filter", "dog,nope", "-o", str(tmp_path / "b")]) == 2  # a usage error
    assert "unknown filter 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
