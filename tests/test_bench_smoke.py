"""Cheap checks of the photo benchmark's own logic (bench/bench_photos.py, bench/peers/).

The benchmark itself is run by hand (it needs dlib and MediaPipe in their own venv);
these tests keep its matching, letterboxing and FaceMesh mapping honest without them.
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
def bp():
    """Import the benchmark without letting its one-thread settings leak into the test session."""
    threads, env = cv2.getNumThreads(), dict(os.environ)
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("bench_photos")
    finally:
        sys.path.remove(str(BENCH))
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
