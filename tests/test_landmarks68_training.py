"""The 68 iBUG landmarks: LFPW and MTFL loaders on the real files, 68 points through the
data pipeline (flip, harmonise, cache), the 68-landmark loss layout, and the shipped
points68.onnx on real 300-W validation faces."""

import json
from pathlib import Path

import numpy as np
import pytest

from facekeypoints.schema import IBUG68_TO_15_MATRIX, INDEX, flip_keypoints, flip_mask, from_ibug68
from facekeypoints.training.data.augment import AugmentConfig, make_batch
from facekeypoints.training.data.dataset import FaceSet, from_samples
from facekeypoints.training.data.harmonise import OFFSETS, harmonise, to_eye_units
from facekeypoints.training.data.landmarks import (
    MTFL_POINTS,
    in_validation,
    load_300w,
    load_lfpw,
    load_mtfl,
    load_udacity,
    split_by_group,
)

MODEL68 = Path(__file__).resolve().parents[1] / "src" / "facekeypoints" / "models" / "points68.onnx"
LE, RE = INDEX["left_eye_center"], INDEX["right_eye_center"]


def test_lfpw_loader_splits_by_file(data_dir):
    faces = load_lfpw(data_dir / "lfpw" / "trainset")
    assert len(faces) == 805 and {f.source for f in faces} == {"lfpw"}
    assert len({f.group for f in faces}) == 805  # each file is its own photo
    f = faces[0]
    assert f.group == "lfpw/" + f.image.stem and f.points68.shape == (68, 2)
    np.testing.assert_allclose(f.keypoints, from_ibug68(f.points68), atol=1e-5)
    tr, va = split_by_group(faces, 0.15, 0)
    assert 80 < len(va) < 170 and not ({x.image for x in tr} & {x.image for x in va})
    # the documented rule, from the file name alone
    assert {x.image.stem for x in va} == {x.image.stem for x in faces if in_validation("lfpw/" + x.image.stem, 0.15, 0)}
    assert np.mean([x.keypoints[LE, 0] > x.keypoints[RE, 0] for x in faces]) > 0.95


def test_mtfl_loader_five_points_split_by_person(data_dir, tmp_path):
    faces = load_mtfl(data_dir / "mtfl")
    assert len(faces) == 7650
    present = np.zeros(15, bool)
    present[[INDEX[n] for n in MTFL_POINTS]] = True
    for f in faces[:50] + faces[-50:]:
        np.testing.assert_array_equal(f.mask, present)
        assert np.isnan(f.keypoints[~present]).all() and np.isfinite(f.keypoints[present]).all()
        assert f.points68 is None and f.image.is_file()
        assert ((f.keypoints[present] >= 0) & (f.keypoints[present] < 80)).all()  # 80x80 image pixels
    lfw = [f for f in faces if f.image.parent.name == "lfw_5590"]
    net = [f for f in faces if f.image.parent.name == "net_7876"]
    assert len(lfw) == 4151 and len(net) == 3499
    assert lfw[0].group == "mtfl/lfw/" + lfw[0].image.stem.rsplit("_", 1)[0]
    # this copy has one file per LFW person; two files of one person share a group
    two = tmp_path / "landmarks.txt"
    line = (data_dir / "mtfl" / "landmarks.txt").read_text().splitlines()[0]
    two.write_text(line + "\n" + line.replace("_0001.jpg", "_0002.jpg") + "\n")
    a, b = load_mtfl(two)
    assert a.group == b.group == "mtfl/lfw/" + a.image.stem.rsplit("_", 1)[0] and a.image != b.image
    assert len({f.group for f in net}) == len(net)  # web photos: split by file
    tr, va = split_by_group(faces, 0.15, 0)
    assert 800 < len(va) < 1500 and not ({f.group for f in tr} & {f.group for f in va})
    # the first point is the eye on the image's left: the subject's right eye
    assert np.mean([f.keypoints[LE, 0] > f.keypoints[RE, 0] for f in faces]) > 0.99
    assert np.mean([f.keypoints[INDEX["mouth_left_corner"], 0] > f.keypoints[INDEX["mouth_right_corner"], 0]
                    for f in faces]) > 0.99


def test_mtfl_faces_make_context_crops_with_masks(data_dir):
    fs = from_samples(load_mtfl(data_dir / "mtfl")[:8])
    assert fs.contexts.shape == (8, 192, 192) and fs.mask.sum(1).tolist() == [5] * 8
    assert not fs.mask68.any() and np.isnan(fs.points68).all()
    imgs, kps, msk = make_batch(fs.contexts, fs.keypoints, fs.mask, np.random.default_rng(0), AugmentConfig(flip=1.0))
    assert (msk.sum(1) <= 5).all() and msk.sum() >= 36 and np.isnan(kps[~msk]).all()


def test_harmonise_moves_only_mtfl_and_udacity_labels(data_dir):
    faces = FaceSet.concat([
        from_samples(load_300w(data_dir / "300w" / "afw")[:4]),
        from_samples(load_lfpw(data_dir / "lfpw" / "trainset")[:4]),
        from_samples(load_mtfl(data_dir / "mtfl")[:4]),
        from_samples(load_udacity(data_dir / "udacity" / "training_frames_keypoints.csv")[:4]),
    ])
    out = harmonise(faces)
    src = np.array(faces.sources)
    same = np.isin(src, ["300w", "lfpw"])
    np.testing.assert_array_equal(out.keypoints[same], faces.keypoints[same])
    np.testing.assert_array_equal(out.points68[same], faces.points68[same])
    mt = src == "mtfl"
    moved = to_eye_units(out.keypoints[mt] - faces.keypoints[mt], faces.keypoints[mt])
    idx = [INDEX[n] for n in MTFL_POINTS]
    np.testing.assert_allclose(moved[:, idx], np.broadcast_to(OFFSETS["mtfl"][idx], moved[:, idx].shape), atol=1e-4)
    assert np.isnan(out.keypoints[mt][:, [i for i in range(15) if i not in idx]]).all()
    assert np.abs(out.keypoints[mt][:, idx] - faces.keypoints[mt][:, idx]).max() > 0.1  # it did move them
    # Udacity's 68 landmarks move with its 15: the 15 derived from the moved 68 are the moved 15
    ud = src == "udacity"
    derived = np.einsum("kl,nlc->nkc", IBUG68_TO_15_MATRIX, out.points68[ud])
    np.testing.assert_allclose(derived, out.keypoints[ud], atol=1e-3)
    assert np.abs(out.points68[ud] - faces.points68[ud]).max() > 0.3


def test_flip_augmentation_maps_a_mirrored_faces_68_points_onto_the_original(data_dir):
    fs = from_samples(load_300w(data_dir / "300w" / "afw")[:16] + load_lfpw(data_dir / "lfpw" / "trainset")[:8])
    geo = dict(brightness=0, contrast=0, gamma=0, blur=0, noise=0, occlude=0)
    args = (fs.contexts, fs.keypoints, fs.mask)
    imgs, kps, msk, p68, m68 = make_batch(*args, np.random.default_rng(3), AugmentConfig(flip=0.0, **geo),
                                          fs.points68, fs.mask68)
    fimgs, fkps, fmsk, f68, fm68 = make_batch(*args, np.random.default_rng(3), AugmentConfig(flip=1.0, **geo),
                                              fs.points68, fs.mask68)
    np.testing.assert_array_equal(fimgs, imgs[:, :, ::-1])
    assert m68.mean() > 0.95
    both = m68 & flip_mask(fm68)
    np.testing.assert_allclose(flip_keypoints(f68, 96)[both], p68[both], atol=1e-4)
    # the same affine map as the 15: the 15 derived from the 68 are the 15
    ok = msk.all(1) & m68.all(1)
    np.testing.assert_allclose(np.einsum("kl,nlc->nkc", IBUG68_TO_15_MATRIX, p68[ok]), kps[ok], atol=1e-3)
    # on the mirrored face the names were swapped: the subject's right eye (36-41) and jaw
    # start (0) are on the image's left again
    eyes = fm68[:, 36:48].all(1)
    assert eyes.sum() > 20 and (f68[eyes, 36:42, 0].mean(1) < f68[eyes, 42:48, 0].mean(1)).all()
    jaw = fm68[:, 0] & fm68[:, 16]
    assert jaw.sum() > 15 and (f68[jaw, 0, 0] < f68[jaw, 16, 0]).all()


def test_cache_is_versioned_and_keeps_the_68(tmp_path, data_dir):
    from facekeypoints.training.data import dataset

    samples = load_lfpw(data_dir / "lfpw" / "trainset")[:5] + load_mtfl(data_dir / "mtfl")[:3]
    a = dataset._cached(samples, "t", tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and f"-v{dataset.CACHE_VERSION}-" in files[0].name
    assert int(np.load(files[0])["version"]) == dataset.CACHE_VERSION
    b = dataset._cached(samples, "t", tmp_path)  # read back
    np.testing.assert_array_equal(a.points68, b.points68)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert b.mask68[:5].all() and not b.mask68[5:].any() and b.sources[-1] == "mtfl"


def test_loss_layout_trains_68_where_labelled_else_the_derived_15():
    torch = pytest.importorskip("torch")
    from facekeypoints.training.model import build, n_points, to_keypoints
    from facekeypoints.training.train import loss_mask, model_targets

    m15 = np.zeros((2, 15), bool)
    m15[0] = True  # a 300-W face: 68 labelled
    m15[1, [INDEX[n] for n in MTFL_POINTS]] = True  # an MTFL face: 5 of the 15
    m68 = np.zeros((2, 68), bool)
    m68[0] = True
    lm = loss_mask(m15, m68)
    assert lm.shape == (2, 83) and lm[0].sum() == 68 and lm[1].sum() == 5 and not lm[1, :68].any()
    both = loss_mask(m15, m68, "all")  # --derived-loss all: the 15 also on the 68-point face
    assert both[0].sum() == 68 + 15 and both[1].sum() == 5
    net = build("integral68").eval()
    assert n_points(net) == 68 and n_points(build("integral")) == 15
    with torch.no_grad():
        y = net(torch.rand(2, 1, 96, 96))
    assert y.shape == (2, 136)
    pred, target = model_targets(y, torch.zeros(2, 30), torch.zeros(2, 136))
    assert pred.shape == target.shape == (2, 166)
    np.testing.assert_allclose(pred[:, 136:].numpy(), to_keypoints(y).numpy())
    want = np.einsum("kl,nlc->nkc", IBUG68_TO_15_MATRIX, y.numpy().reshape(2, 68, 2)).reshape(2, 30)
    np.testing.assert_allclose(to_keypoints(y).numpy(), want, atol=1e-6)


def test_region_weight_moves_emphasis_onto_a_region_of_the_68():
    torch = pytest.importorskip("torch")
    from facekeypoints.errors import FkpError
    from facekeypoints.schema import IBUG68_REGIONS
    from facekeypoints.training.train import loss_weights, masked_mse, point_weights

    m15 = np.ones((1, 15), bool)
    m68 = np.ones((1, 68), bool)
    w = point_weights({"jaw": 3.0}, with68=True)
    lw = loss_weights(m15, m68, "missing", w)
    jaw = list(IBUG68_REGIONS["jaw"])
    assert lw.shape == (1, 83) and (lw[0, jaw] == 3).all() and lw[0, 17:68].sum() == 51 and lw[0, 68:].sum() == 0
    # the weighted mean: an error on the jaw alone counts 3 of 17 * 3 + 51 weights
    pred = torch.zeros(1, 166)
    pred[0, 0] = 0.5  # point 0 (jaw) x
    got = masked_mse(pred, torch.zeros(1, 166), torch.from_numpy(lw), "l1").item()
    assert got == pytest.approx(3 * 0.5 / (2 * (17 * 3 + 51)))
    plain = masked_mse(pred, torch.zeros(1, 166), torch.from_numpy(loss_weights(m15, m68, "missing", None)), "l1")
    assert plain.item() == pytest.approx(0.5 / (2 * 68))
    assert point_weights({}, with68=True) is None
    with pytest.raises(FkpError, match="chin"):
        point_weights({"chin": 2}, with68=True)
    with pytest.raises(FkpError, match="integral68"):
        point_weights({"jaw": 2}, with68=False)


@pytest.fixture(scope="module")
def model68():
    if not MODEL68.is_file():
        pytest.skip(f"{MODEL68} not built")
    from facekeypoints.training.evaluate import load_predictor

    return load_predictor(MODEL68, threads=1, native=True)


def test_shipped_points68_model_lands_on_real_300w_labels(model68, data_dir):
    """The 68 points of real held-out faces land on the human labels (300-W's metric), and the
    15 the runtime derives are the 15 of those points."""
    from facekeypoints import metrics
    from facekeypoints.training.evaluate import as_keypoints, model_framing, predict_faces

    meta = json.loads(MODEL68.with_suffix(".json").read_text())
    assert meta["points"] == 68 and meta["output"]["shape"] == [None, 68, 2] and len(meta["landmark_regions"]) == 68
    assert MODEL68.stat().st_size < 5_000_000
    samples = load_300w(data_dir / "300w")
    val = from_samples(split_by_group(samples, 0.15, 0)[1])
    _, pred, kps, msk, p68, m68 = predict_faces(model68, val, refine=1, flip=True, with68=True,
                                                framing=model_framing(MODEL68))
    assert pred.shape == (len(val), 68, 2)
    s68 = metrics.summary68(pred, p68, m68)
    assert s68["faces"] > 150 and s68["nme"] < NME68_BOUND, s68["nme"]
    assert s68["per_region"]["left_eye"] < 0.04 and s68["per_region"]["jaw"] < 0.09
    derived = as_keypoints(pred)
    np.testing.assert_allclose(derived[0], from_ibug68(pred[0]), atol=1e-4)
    assert metrics.nme(derived, kps, msk) < NME15_BOUND


def test_shipped_points68_model_mirror_consistent(model68, data_dir):
    """A mirrored crop's 68 points, mapped back through the flip permutation, land on the
    original crop's: a wrong pair in the permutation would put an eye corner on a lid."""
    from facekeypoints.training.data.augment import eval_batch
    from facekeypoints.training.evaluate import model_framing

    fs = from_samples(split_by_group(load_300w(data_dir / "300w"), 0.15, 0)[1][:40])
    imgs, *_ = eval_batch(fs.contexts, fs.keypoints, fs.mask, 0, framing=model_framing(MODEL68))
    a = model68(imgs)
    b = flip_keypoints(model68(np.ascontiguousarray(imgs[:, :, ::-1])), 96)
    iod = np.linalg.norm(a[:, 45] - a[:, 36], axis=1)
    assert np.median(np.linalg.norm(a - b, axis=2).mean(1) / iod) < 0.035  # measured 0.021


# measured on the shipped model, mirror-averaged refinement pass on these 193 faces: 68-point
# NME 0.0395 (jaw 0.064, eyes 0.025-0.026), derived 15 0.0325 (docs/training/ablation/README.md)
NME68_BOUND = 0.046
NME15_BOUND = 0.038


def test_int8_points68_keeps_the_accuracy(model68, data_dir):
    """The shipped int8 variant (training/quantize.py) lands where the float model does."""
    from facekeypoints.training.data.augment import eval_batch
    from facekeypoints.training.evaluate import load_predictor, model_framing

    int8 = load_predictor(MODEL68.with_name("points68.int8.onnx"), threads=1, native=True)
    assert model_framing(MODEL68.with_name("points68.int8.onnx")) == model_framing(MODEL68)
    fs = from_samples(split_by_group(load_300w(data_dir / "300w"), 0.15, 0)[1][:60])
    imgs, *_ = eval_batch(fs.contexts, fs.keypoints, fs.mask, 0, framing=model_framing(MODEL68))
    a, b = model68(imgs), int8(imgs)
    iod = np.linalg.norm(a[:, 45] - a[:, 36], axis=1)
    assert np.median(np.linalg.norm(a - b, axis=2).mean(1) / iod) < 0.01


def test_warm_start_reproduces_the_shipped_model(tmp_path, data_dir):
    """--init: the shipped model's architecture (`integral` or `integral-wide`, as its JSON says) loaded
    from default.onnx (BatchNorm calibrated on real crops) computes what the ONNX file computes; so does
    a wider model (its extra channels start unread), and the 68-landmark models load too (their heatmaps
    reach beyond the crop, so their start is near, not equal). A model narrower than the file is
    refused in one line."""
    torch = pytest.importorskip("torch")
    from facekeypoints.errors import FkpError
    from facekeypoints.runtime import OnnxKeypointModel, default_model_path
    from facekeypoints.training.data.augment import eval_batch
    from facekeypoints.training.export import export
    from facekeypoints.training.model import build, denormalise, to_keypoints
    from facekeypoints.training.warmstart import init_from_onnx

    fs = from_samples(load_300w(data_dir / "300w" / "afw")[:48])
    imgs, *_ = eval_batch(fs.contexts, fs.keypoints, fs.mask, 0)
    want = OnnxKeypointModel(threads=1).predict(imgs[:16])
    x = torch.from_numpy(imgs[:16]).float().div(255).unsqueeze(1)
    shipped = json.loads(default_model_path().with_suffix(".json").read_text())["arch"]
    assert shipped in ("integral", "integral-wide")
    archs = [shipped, "integral-wide", "integral68", "integral68-wide"] if shipped == "integral" else \
        [shipped, "integral68-wide"]
    for arch in archs:
        net = build(arch)
        assert init_from_onnx(net, default_model_path(), imgs, np.nanmean(fs.points68, 0)) == 18
        with torch.no_grad():
            got = denormalise(to_keypoints(net.eval()(x))).numpy().reshape(-1, 15, 2)
        if "68" not in arch:
            np.testing.assert_allclose(got, want, atol=1e-3)
        else:
            assert np.median(np.linalg.norm(got - want, axis=2)) < 2.5  # measured 1.37 px (integral68)
    # a wide model (the one just widened) exported, and the narrow model refused from it
    wide = build("integral-wide")
    init_from_onnx(wide, default_model_path(), imgs)
    torch.save({"arch": "integral-wide", "model": wide.state_dict(), "config": {}}, tmp_path / "wide.pt")
    export(tmp_path / "wide.pt", tmp_path / "wide.onnx", check_images=imgs[:8])
    with pytest.raises(FkpError, match=r"wide\.onnx: s24\.\S+ has \d+ channels, the model \d+: other stage widths"):
        init_from_onnx(build("integral"), tmp_path / "wide.onnx", imgs)


def test_warm_start_continues_the_shipped_68_point_model(model68, data_dir):
    """--init points68.onnx: a 68-point model started from the shipped one (its convolutions and its
    learnt logits beyond the crop) computes what the ONNX file computes, so a training can go on
    from it; a model whose heatmaps reach a different distance beyond the crop is refused."""
    torch = pytest.importorskip("torch")
    from facekeypoints.errors import FkpError
    from facekeypoints.runtime import OnnxKeypointModel
    from facekeypoints.training.data.augment import eval_batch
    from facekeypoints.training.model import Integral68Net, IntegralNet, denormalise
    from facekeypoints.training.warmstart import init_from_onnx

    fs = from_samples(load_300w(data_dir / "300w" / "afw")[:48])
    imgs, *_ = eval_batch(fs.contexts, fs.keypoints, fs.mask, 0)
    want = OnnxKeypointModel(MODEL68, threads=1).predict(imgs[:16])
    net = Integral68Net()
    assert init_from_onnx(net, MODEL68, imgs, np.nanmean(fs.points68, 0)) == 18
    with torch.no_grad():
        got = denormalise(net.eval()(torch.from_numpy(imgs[:16]).float().div(255).unsqueeze(1)))
    np.testing.assert_allclose(got.numpy().reshape(-1, 68, 2), want, atol=1e-3)
    other = IntegralNet(n_points=68, pad=4)
    with pytest.raises(FkpError, match=r"points68\.onnx: its heatmaps are 36 cells wide, the model's 32"):
        init_from_onnx(other, MODEL68, imgs)


def test_integral68_trains_on_68_and_5_point_faces_and_exports(tmp_path, data_dir):
    """One short run on 300-W (68 points) + MTFL (5 of the 15): both kinds of face train the
    model, validation reports the 68-point NME, and the export says 68 points."""
    pytest.importorskip("torch")
    from facekeypoints.training.export import export
    from facekeypoints.training.train import TrainConfig, train

    lines = (data_dir / "mtfl" / "landmarks.txt").read_text().splitlines()
    mtfl = tmp_path / "mtfl" / "landmarks.txt"  # 300 of MTFL's faces, both parts, by absolute path
    mtfl.parent.mkdir()
    mtfl.write_text("".join(f"{data_dir / 'mtfl' / ln.split()[0]} {' '.join(ln.split()[1:])}\n"
                            for ln in lines[:150] + lines[-150:]))
    data = [str(data_dir / "300w" / "afw"), str(mtfl)]
    out = tmp_path / "run"
    best = train(TrainConfig(data=data, out=str(out), arch="integral68", epochs=2, batch_size=32, limit=128,
                             threads=1, focus_epochs=0, crop_zoom=1.25, crop_down=0.1), log=lambda *_: None)
    hist = json.loads((out / "history.json").read_text())["history"]
    assert len(hist) == 2 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert 0 < best["300w"]["nme68"] < 1.0 and best["300w"]["landmarks68"]["faces"] > 20
    assert "nme_eye_centres" in best["mtfl"] and "val_nme_mtfl" in hist[-1]
    meta = export(out / "best.pt", tmp_path / "m.onnx")
    assert meta["points"] == 68 and meta["output"]["shape"] == [None, 68, 2] and meta["max_abs_diff_vs_torch"] < 1e-4
    # its wider crop (geometry.Framing) travels with it: the sidecar, the runtime and fkp evaluate know it
    from facekeypoints.geometry import Framing
    from facekeypoints.runtime import OnnxKeypointModel
    from facekeypoints.training.evaluate import model_framing

    assert meta["framing"] == {"zoom": 1.25, "down": 0.1}
    assert OnnxKeypointModel(tmp_path / "m.onnx").framing == Framing(1.25, 0.1)
    assert model_framing(tmp_path / "m.onnx") == model_framing(out / "best.pt") == Framing(1.25, 0.1)
