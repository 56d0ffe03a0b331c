import numpy as np
import pytest

from facekeypoints import schema


def test_kaggle_column_order():
    assert schema.KAGGLE_COLUMNS[:4] == ("left_eye_center_x", "left_eye_center_y", "right_eye_center_x", "right_eye_center_y")
    assert schema.KAGGLE_COLUMNS[-2:] == ("mouth_center_bottom_lip_x", "mouth_center_bottom_lip_y")
    assert len(schema.KAGGLE_COLUMNS) == 30


def test_flip_pairs_swap_names():
    names = schema.KEYPOINT_NAMES
    pairs = {(names[a], names[b]) for a, b in schema.FLIP_PAIRS}
    assert ("left_eye_center", "right_eye_center") in pairs
    assert ("mouth_left_corner", "mouth_right_corner") in pairs
    assert ("left_eyebrow_outer_end", "right_eyebrow_outer_end") in pairs
    assert len(schema.FLIP_PAIRS) == 6
    for i in (schema.INDEX["nose_tip"], schema.INDEX["mouth_center_top_lip"], schema.INDEX["mouth_center_bottom_lip"]):
        assert schema.FLIP_PERMUTATION[i] == i


def test_flip_twice_is_identity_and_swaps_sides():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 96, (4, 15, 2))
    kp[0, 3] = np.nan
    once = schema.flip_keypoints(kp, 96)
    np.testing.assert_allclose(schema.flip_keypoints(once, 96), kp)
    # the point called left eye after flipping is the mirrored right eye
    le, re = schema.INDEX["left_eye_center"], schema.INDEX["right_eye_center"]
    np.testing.assert_allclose(once[1:, le, 0], 95 - kp[1:, re, 0])
    np.testing.assert_allclose(once[1:, le, 1], kp[1:, re, 1])
    mask = np.isfinite(kp).all(-1)
    assert (schema.flip_mask(schema.flip_mask(mask)) == mask).all()


def test_flip_of_a_real_face_keeps_left_on_image_right(val_300w):
    kp = val_300w[0].keypoints
    le, re = schema.INDEX["left_eye_center"], schema.INDEX["right_eye_center"]
    assert kp[le, 0] > kp[re, 0]  # subject's left eye appears on the image's right
    flipped = schema.flip_keypoints(kp, 1000)
    assert flipped[le, 0] > flipped[re, 0]


def test_ibug68_mapping():
    pts = np.arange(136, dtype=np.float32).reshape(68, 2)
    kp = schema.from_ibug68(pts)
    np.testing.assert_allclose(kp[schema.INDEX["left_eye_center"]], pts[42:48].mean(0))
    np.testing.assert_allclose(kp[schema.INDEX["nose_tip"]], pts[30])
    np.testing.assert_allclose(kp[schema.INDEX["mouth_right_corner"]], pts[48])
    with pytest.raises(ValueError):
        schema.from_ibug68(pts[:67])


def test_ibug68_regions_cover_every_point_once():
    idx = sorted(i for r in schema.IBUG68_REGIONS.values() for i in r)
    assert idx == list(range(68))
    assert schema.IBUG68_REGION_OF[36] == "right_eye" and schema.IBUG68_REGION_OF[45] == "left_eye"


def test_ibug68_flip_permutation_is_an_involution_that_keeps_the_midline():
    perm = schema.IBUG68_FLIP_PERMUTATION
    np.testing.assert_array_equal(perm[perm], np.arange(68))
    assert [i for i in range(68) if perm[i] == i] == [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]
    # each region maps onto its mirror region
    for name, idx in schema.IBUG68_REGIONS.items():
        mirror = name.replace("left", "@").replace("right", "left").replace("@", "right")
        assert sorted(perm[list(idx)]) == sorted(schema.IBUG68_REGIONS[mirror]), name


def test_flipping_68_points_agrees_with_flipping_the_15(data_dir):
    from facekeypoints.training.data.landmarks import read_pts

    pts = read_pts(next((data_dir / "300w" / "afw").glob("*.pts")))
    w = 400.0
    flipped68 = schema.flip_keypoints(pts, w)
    np.testing.assert_allclose(schema.from_ibug68(flipped68), schema.flip_keypoints(schema.from_ibug68(pts), w),
                               atol=1e-3)
    # a mirrored face's right eye contour is the original's left one, mirrored
    np.testing.assert_allclose(flipped68[36:42, 0].mean(), w - 1 - pts[42:48, 0].mean(), atol=1e-3)
    assert schema.flip_mask(np.arange(68) < 17).sum() == 17
