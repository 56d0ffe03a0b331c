"""Phone photos: a JPEG stored sideways with an EXIF orientation is read upright by every
path-reading entry point (fkp detect, face_keypoints.py, KeypointDetector.detect(path)):
displayed width/height, coordinates in displayed pixels, outputs written upright."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from images import exif_jpeg

from facekeypoints.cli.demo import demo_photo
from facekeypoints.cli.main import main
from facekeypoints.imageio import read_image

ROOT = Path(__file__).resolve().parents[1]




@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    """Grace Hopper's portrait (ships with matplotlib) stored sideways with Orientation=6, as phones
    write portraits; returns (upright BGR as decoded from the same JPEG settings, path)."""
    upright = cv2.imread(demo_photo())
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # orientation 6: view turned 90 deg clockwise
    path = tmp_path_factory.mktemp("exif") / "phone.jpg"
    path.write_bytes(exif_jpeg(stored, 6))
    return upright, path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_image_applies_every_orientation_as_pillow(tmp_path, orientation):
    import PIL.Image
    import PIL.ImageOps

    rng = np.random.default_rng(orientation)
    img = cv2.resize(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (160, 96), interpolation=cv2.INTER_NEAREST)
    p = tmp_path / "o.jpg"
    p.write_bytes(exif_jpeg(img, orientation))
    want = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(p)).convert("RGB"))[:, :, ::-1]
    got = read_image(p)
    assert got.shape == want.shape and np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_api_detect_path_is_upright(portrait, detector):
    upright, path = portrait
    assert read_image(path).shape == upright.shape  # displayed size, not the stored 600x512
    ref = detector.detect(upright)
    got = detector.detect(path)
    assert len(ref) == len(got) == 1
    assert np.abs(got[0].keypoints - ref[0].keypoints).max() < 3.0  # displayed pixels (JPEG re-encoding only)
    # an array is taken as it is: the stored (sideways) pixels give sideways coordinates or no face
    stored = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert stored.shape[:2] == upright.shape[1::-1]


def test_cli_detect_reports_displayed_size_and_writes_upright(portrait, detector, tmp_path, capsys):
    upright, path = portrait
    out = tmp_path / "out"
    assert main(["detect", str(path), "--json", str(tmp_path / "r.json"), "-o", str(out)]) == 0
    rec = json.loads((tmp_path / "r.json").read_text())[0]
    assert (rec["width"], rec["height"]) == (upright.shape[1], upright.shape[0]) == (512, 600)
    assert len(rec["faces"]) == 1
    ref = detector.detect(upright)[0]
    got = np.array(list(rec["faces"][0]["keypoints"].values()))
    assert np.abs(got - ref.keypoints).max() < 3.0
    annotated = cv2.imread(str(out / "phone.jpg"))
    assert annotated.shape == upright.shape
    # upright content: much closer to the upright photo than to the photo turned either way
    diff = np.abs(annotated.astype(int) - upright.astype(int)).mean()
    assert diff < 12, diff


def test_one_liner_on_phone_photo_writes_upright_in_current_folder(portrait, tmp_path):
    upright, path = portrait
    cwd = tmp_path / "work"
    cwd.mkdir()
    r = subprocess.run([sys.executable, str(ROOT / "face_keypoints.py"), str(path), "--no-show"], cwd=cwd,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert "1 face(s) found" in r.stdout
    out = cwd / "phone_keypoints.jpg"  # item 5: the current folder, not beside the input
    assert sorted(p.name for p in cwd.iterdir()) == ["phone_keypoints.jpg"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["phone.jpg"]
    assert cv2.imread(str(out)).shape == upright.shape
