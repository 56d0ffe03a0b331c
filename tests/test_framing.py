"""A model's crop framing (geometry.Framing): a 68-point model may see a wider, lower crop than the
Kaggle frame, so that the jaw fits. Training crops, evaluation, the ONNX sidecar and the photo
pipeline must all cut the same crop, on real faces."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints.errors import FkpError
from facekeypoints.geometry import KAGGLE_FRAMING, Frame, Framing, crop, frame_from_keypoints
from facekeypoints.imageio import to_gray
from facekeypoints.runtime import OnnxKeypointModel
from facekeypoints.training.data.augment import EVAL, AugmentConfig, make_batch
from facekeypoints.training.data.dataset import from_samples
from facekeypoints.training.data.landmarks import load_300w, load_lfpw
from facekeypoints.training.evaluate import model_framing

MODELS = Path(__file__).resolve().parents[1] / "src" / "facekeypoints" / "models"
WIDE = Framing(1.25, 0.1)


def test_framing_widens_the_crop_down_the_face_and_rolls_with_it():
    f = Frame(200.0, 150.0, 100.0, 0.4)
    assert KAGGLE_FRAMING.apply(f) is f and Framing.from_meta(None) == KAGGLE_FRAMING
    g = WIDE.apply(f)
    assert g.side == pytest.approx(125.0) and g.angle == f.angle
    # the new centre is the Kaggle crop's point 0.1 sides below its centre, in the face's own axes
    np.testing.assert_allclose(f.to_crop(np.array([[g.cx, g.cy]]))[0], [47.5, 47.5 + 9.6], atol=1e-4)
    assert Framing.from_meta(WIDE.to_meta()) == WIDE


def test_the_wider_framing_holds_the_jaw_of_real_faces(data_dir):
    """What the framing is for: on 300-W and LFPW faces (upright crops from their labels, as the
    refinement pass cuts them) the Kaggle crop cuts the chin off most faces; the wide one keeps it."""
    samples = load_300w(data_dir / "300w" / "afw") + load_lfpw(data_dir / "lfpw" / "trainset")[:200]
    inside = {KAGGLE_FRAMING: [], WIDE: []}
    for s in samples:
        f = frame_from_keypoints(s.points68, rotate=True)
        for framing, out in inside.items():
            p = framing.apply(f).to_crop(s.points68)
            out.append(bool(((p >= 0) & (p <= 95)).all()))
    kaggle, wide = np.mean(inside[KAGGLE_FRAMING]), np.mean(inside[WIDE])
    assert kaggle < 0.1 and wide > 0.8, (kaggle, wide)  # measured 0.013 and 0.862 on these 537 faces


def test_training_crops_follow_the_framing(data_dir):
    """make_batch: the same random draws, the crop widened and lowered about each (rolled) frame; the
    labels move with the pixels."""
    fs = from_samples(load_300w(data_dir / "300w" / "afw")[:24])
    cfg = AugmentConfig(flip=0.0, brightness=0, contrast=0, gamma=0, blur=0, noise=0, occlude=0)
    args = (fs.contexts, fs.keypoints, fs.mask, np.random.default_rng(5), cfg, fs.points68, fs.mask68)
    _, k0, m0, p0, n0 = make_batch(*args)
    imgs, k1, m1, p1, n1 = make_batch(*args[:3], np.random.default_rng(5), cfg, fs.points68, fs.mask68, framing=WIDE)
    both = n0 & n1
    want = (p0 - [47.5, 47.5 + 9.6]) / 1.25 + 47.5
    np.testing.assert_allclose(p1[both], want[both], atol=1e-3)
    assert n1.sum() > n0.sum()  # fewer jaw points pushed out of the crop and masked
    # the pixels moved as the labels did: the wide crop's centre is the Kaggle crop's point below it
    e0 = make_batch(fs.contexts, fs.keypoints, fs.mask, np.random.default_rng(1), EVAL)[0]
    e1 = make_batch(fs.contexts, fs.keypoints, fs.mask, np.random.default_rng(1), EVAL, framing=WIDE)[0]
    assert np.abs(e1[:, 46:50, 46:50].astype(int).mean((1, 2)) - e0[:, 55:59, 46:50].astype(int).mean((1, 2))).mean() < 6


def _framed_copy(tmp_path: Path, framing: dict | None) -> Path:
    out = tmp_path / "framed68.onnx"
    shutil.copy(MODELS / "points68.onnx", out)
    meta = json.loads((MODELS / "points68.json").read_text())
    meta.pop("framing", None)
    if framing is not None:
        meta["framing"] = framing
    out.with_suffix(".json").write_text(json.dumps(meta))
    return out


def test_runtime_reads_the_framing_and_refuses_a_bad_one(tmp_path):
    assert OnnxKeypointModel(_framed_copy(tmp_path, None), points=68).framing == KAGGLE_FRAMING
    assert OnnxKeypointModel(_framed_copy(tmp_path, WIDE.to_meta()), points=68).framing == WIDE
    for bad in ({"zoom": 5}, {"zoom": "x"}, [1, 2]):
        with pytest.raises(FkpError) as e:
            OnnxKeypointModel(_framed_copy(tmp_path, bad), points=68)
        assert "framed68.onnx" in str(e.value) and "framing" in str(e.value) and "\n" not in str(e.value)
        if bad != {"zoom": 5}:  # fkp evaluate and the quantiser read it too
            with pytest.raises(FkpError, match=r"framed68\.json: unreadable crop framing"):
                model_framing(tmp_path / "framed68.onnx")


def test_the_pipeline_cuts_a_framed_models_own_crop(tmp_path, val_300w):
    """KeypointDetector gives a framed model the crop its sidecar names, both alone and framed by the
    15-point model (whose crops, gates and 15 keypoints stay the Kaggle ones)."""
    path = _framed_copy(tmp_path, WIDE.to_meta())
    image = fk.read_image(val_300w[0].image)
    gray = to_gray(image)
    alone = fk.KeypointDetector(path, points=68, keypoints_model=None, refine=0, flip=False)
    frame = frame_from_keypoints(val_300w[0].points68, rotate=True)
    got = alone.keypoints_from_frames(gray, [frame])[0]
    cut = WIDE.apply(frame)
    np.testing.assert_allclose(got, cut.to_image(alone.model.predict(crop(gray, cut)[None])[0]), atol=1e-3)
    # the Kaggle crop (what the model would get without its framing) gives other points
    assert np.abs(got - frame.to_image(alone.model.predict(crop(gray, frame)[None])[0])).max() > 1.0
    framed = fk.KeypointDetector(path, points=68)
    faces, faces15 = framed.detect(image), fk.KeypointDetector().detect(image)
    assert len(faces) == len(faces15) >= 1
    np.testing.assert_allclose(faces[0].points15, faces15[0].keypoints, atol=1e-3)
