"""Short real training runs: error falls, resume works, export matches torch."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the 'train' extra (torch)")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("facecache"))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, data_dir, cache):
    from facekeypoints.training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data=[str(data_dir / "300w" / "afw")], out=str(out), epochs=6, batch_size=32, limit=256,
                      cache_dir=cache, val_fraction=0.2, threads=1, oversample={}, focus_epochs=0,
                      loss="mse")  # the bounds below were measured with MSE (L1 after 6 epochs of 8 steps: 0.2025)
    train(cfg, log=lambda *_: None)
    return out


def test_short_training_lowers_validation_error(short_run, data_dir, cache):
    from facekeypoints.training.data.dataset import load, split
    from facekeypoints.training.model import build
    from facekeypoints.training.train import TrainConfig, validate

    hist = json.loads((short_run / "history.json").read_text())["history"]
    assert len(hist) == 6
    torch.manual_seed(0)
    faces = load([str(data_dir / "300w" / "afw")], cache)
    val = faces.subset(split(faces, 0.2, 0)[1])
    untrained = validate(build(TrainConfig.arch), val, 0)["all"]["nme"]
    best = min(h["val_nme"] for h in hist)
    assert best < 0.6 * untrained, (best, untrained)
    assert best < 0.20
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert (short_run / "curves.png").stat().st_size > 1000


def test_export_matches_torch(short_run, tmp_path, data_dir):
    import onnxruntime as ort

    from facekeypoints.training.checkpoint import load_checkpoint, predict_crops
    from facekeypoints.training.export import export

    onnx_path = tmp_path / "m.onnx"
    meta = export(short_run / "best.pt", onnx_path)
    assert meta["max_abs_diff_vs_torch"] < 1e-4 and meta["keypoints"][0] == "left_eye_center"
    from facekeypoints.training.data.kaggle import load_training

    imgs = load_training(data_dir / "kaggle_format" / "training.csv").images[:16]
    net, _ = load_checkpoint(short_run / "best.pt")
    want = predict_crops(net, imgs)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": imgs[:, None].astype(np.float32) / 255})[0]
    assert np.abs(got - want).max() < 1e-4
    # the runtime checks the sha256 sidecar
    from facekeypoints.errors import FkpError
    from facekeypoints.runtime import OnnxKeypointModel

    assert OnnxKeypointModel(onnx_path).predict(imgs).shape == (16, 15, 2)
    with open(onnx_path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(FkpError, match="sha256"):
        OnnxKeypointModel(onnx_path)


def test_resume_after_kill_loses_at_most_one_epoch(tmp_path, data_dir, cache):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "facekeypoints.cli", "train", "--data", str(data_dir / "300w" / "afw"),
           "--out", str(out), "--epochs", "4", "--batch-size", "16", "--limit", "192", "--cache-dir", cache,
           "--threads", "1", "--oversample", "--focus-epochs", "0"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "last.pt").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert (out / "last.pt").exists(), "no checkpoint after the first epoch"
    p.send_signal(signal.SIGKILL)
    p.wait()
    done = torch.load(out / "last.pt", map_location="cpu", weights_only=False)["epoch"]
    assert 1 <= done <= 4
    assert not any(n.endswith(".tmp") for n in os.listdir(out))
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    hist = json.loads((out / "history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    from facekeypoints.training.train import TrainConfig, load_checkpoint

    model, ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["arch"] == TrainConfig.arch == "integral"
    # the weight average carried over the kill: one update per step of all 4 epochs (192 / 16 = 12)
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert last["ema_updates"] == 4 * 12
    assert any(not torch.equal(last["model"][k], last["train_model"][k]) for k in last["model"])


def test_resume_without_checkpoint_is_one_line(tmp_path, data_dir):
    r = subprocess.run([sys.executable, "-m", "facekeypoints.cli", "train", "--data", str(data_dir / "300w" / "afw"),
                        "--out", str(tmp_path / "none"), "--resume"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "nothing to resume" in r.stderr and "Traceback" not in r.stderr


def test_seed_baseline_is_the_big_original_design():
    from facekeypoints.training.model import build, count_parameters

    assert count_parameters(build("seed")) > 7_000_000
    for arch in ("integral", "compact", "integral48", "integral-wide"):  # the default, the dense-layer variant
        assert count_parameters(build(arch)) <= count_parameters(build("seed")) / 10  # and the ablations: a tenth


def test_oversampling_and_focus_phase(tmp_path, data_dir, cache, monkeypatch):
    """300-W faces drawn twice per main epoch, then a focus epoch on 300-W alone; a finished
    run can gain a focus phase by --resume."""
    from facekeypoints.training.data.dataset import load, split
    from facekeypoints.training.train import TrainConfig, lr_factor, sampling_index, train

    assert sampling_index(["300w", "udacity", "300w"], {"300w": 3}).tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert sampling_index(["a", "b"], {}).tolist() == [0, 1]
    # the focus phase restarts the cosine at focus_lr and ends at zero; the main phase is untouched
    assert lr_factor(99, 100, 10, 0, 0.15) == lr_factor(99, 100, 10, 50, 0.15) < 0.03
    assert lr_factor(100, 100, 10, 50, 0.15) == pytest.approx(0.15)
    assert lr_factor(149, 100, 10, 50, 0.15) < 0.001

    monkeypatch.setenv("FKP_DEBUG_SHARDS", "1")
    data = [str(data_dir / "300w" / "afw"), str(data_dir / "udacity" / "test_frames_keypoints.csv")]
    faces = load(data, cache)
    tr, _ = split(faces, 0.2, 0)
    tr = np.random.default_rng(0).permutation(tr)[:160]
    n300 = sum(faces.sources[i] == "300w" for i in tr)
    assert 20 < n300 < 140  # both sets in the sample
    out = tmp_path / "run"
    cfg = TrainConfig(data=data, out=str(out), epochs=1, batch_size=32, limit=160, cache_dir=cache, val_fraction=0.2,
                      threads=1, oversample={"300w": 2}, focus="300w", focus_epochs=1)
    train(cfg, log=lambda *_: None)
    main = json.loads((out / "debug-shards" / "epoch1-rank0.json").read_text())
    focus = json.loads((out / "debug-shards" / "epoch2-rank0.json").read_text())
    assert main["train_size"] == 160 and len(main["indices"]) == 160 + n300
    assert focus["train_size"] == n300 and sorted(focus["indices"]) == list(range(n300))
    hist = json.loads((out / "history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2]

    cfg2 = TrainConfig(data=data, out=str(tmp_path / "plain"), epochs=1, batch_size=32, limit=160, cache_dir=cache,
                       val_fraction=0.2, threads=1, oversample={}, focus_epochs=0)
    train(cfg2, log=lambda *_: None)
    train(TrainConfig(data=data, out=cfg2.out, epochs=1, focus="300w", focus_epochs=2), resume=True, log=lambda *_: None)
    hist = json.loads((tmp_path / "plain" / "history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert json.loads((tmp_path / "plain" / "debug-shards" / "epoch3-rank0.json").read_text())["train_size"] == n300


def _fkp(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "facekeypoints.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_kaggle_files_alone_train_evaluate_and_submit(tmp_path, data_dir):
    """The README's Kaggle recipe on the Kaggle-layout files alone (300 rows, two thirds with 4 of
    15 keypoints): rows are split by row, so there is a validation set; evaluate reports Kaggle's
    RMSE in the 96x96 frame; kaggle-submit answers every IdLookupTable row."""
    import csv

    k = data_dir / "kaggle_format"
    run = tmp_path / "kaggle"
    r = _fkp("train", "--data", k / "training.csv", "--out", run, "--epochs", "8", "--batch-size", "16",
             "--ema", "0.99", "--threads", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "focus phase skipped" in r.stdout
    m = re.search(r"faces: (\d+) train, (\d+) validation", r.stdout)
    n_train, n_val = int(m[1]), int(m[2])
    assert n_train + n_val == 300 and 25 <= n_val <= 70  # about 15% of the rows, by a seeded hash of the row
    assert "chosen on 'all' RMSE" in r.stdout
    hist = json.loads((run / "history.json").read_text())["history"]
    assert len(hist) == 8 and min(h["val_rmse"] for h in hist) < 0.4 * hist[0]["val_rmse"], [h["val_rmse"] for h in hist]

    r = _fkp("evaluate", "--model", run / "best.pt", "--data", k / "training.csv", "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    s = res["sets"]["kaggle"]
    assert s["faces"] == n_val and res["frame"] == "96x96"
    # measured: 3.98 px after these 8 short epochs (14.1 px after the first), 2.64 px after the default
    # 80 epochs; predicting the training rows' mean face scores 3.38 px on this split (tightly framed crops)
    assert s["rmse"] < 5.0, s["rmse"]
    assert f"{s['rmse']:.3f}" in r.stdout and "kaggle RMSE" in r.stdout
    assert s["per_keypoint"]["nose_tip"]["count"] == n_val  # the 4-point rows count for the points they have
    assert s["per_keypoint"]["left_eye_outer_corner"]["count"] < n_val / 2

    sub = tmp_path / "submission.csv"
    r = _fkp("kaggle-submit", "--model", run / "best.pt", "--test", k / "test.csv", "--lookup", k / "IdLookupTable.csv",
             "-o", sub)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.reader(sub.open()))
    lookup = list(csv.DictReader((k / "IdLookupTable.csv").open()))
    assert rows[0] == ["RowId", "Location"] and [int(r[0]) for r in rows[1:]] == [int(lk["RowId"]) for lk in lookup]
    loc = {lk["FeatureName"]: [] for lk in lookup}
    for (_, v), lk in zip(rows[1:], lookup):
        loc[lk["FeatureName"]].append(float(v))
    assert all(0 <= v <= 96 for vs in loc.values() for v in vs)
    # the subject's left eye on the image's right of the 96x96 crop, the mouth below the nose
    assert 55 < np.mean(loc["left_eye_center_x"]) < 75 and 20 < np.mean(loc["right_eye_center_x"]) < 40
    assert np.mean(loc["mouth_center_bottom_lip_y"]) > np.mean(loc["nose_tip_y"]) + 10


def test_kaggle_rows_are_split_by_row_with_the_seed(data_dir):
    from facekeypoints.training.data.dataset import load, split

    faces = load([str(data_dir / "kaggle_format" / "training.csv")])
    tr, va = split(faces, 0.15, 0)
    assert len(tr) + len(va) == 300 and 25 <= len(va) <= 70
    assert split(faces, 0.15, 0)[1].tolist() == va.tolist()  # stable
    assert split(faces, 0.15, 1)[1].tolist() != va.tolist()  # the seed matters
    assert 90 <= len(split(faces, 0.4, 0)[1]) <= 150  # --val-fraction matters


def test_nothing_to_train_is_one_line(tmp_path, data_dir):
    for extra in (["--focus-epochs", "0"], ["--focus-epochs", "3", "--focus", "300w"]):
        # the second: the focus phase is skipped, as Kaggle rows hold no 300-W faces, leaving nothing
        r = _fkp("train", "--data", data_dir / "kaggle_format" / "training.csv", "--out", tmp_path / "r", "--epochs", "0",
                 *extra, timeout=120)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fkp: nothing to train"), lines


def test_empty_validation_split_says_so(tmp_path, data_dir):
    """0.1% of 300 Kaggle rows: with seed 2 the hash holds none out, and the message is now true."""
    r = _fkp("train", "--data", data_dir / "kaggle_format" / "training.csv", "--out", tmp_path / "r", "--epochs", "1",
             "--val-fraction", "0.001", "--seed", "2", timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == "fkp: validation split is empty: use more data or a larger --val-fraction"


@pytest.mark.parametrize("cmd, opt, value", [
    ("train", "--epochs", "-1"), ("train", "--batch-size", "0"), ("train", "--lr", "0"), ("train", "--lr", "nan"),
    ("train", "--val-fraction", "1.5"), ("train", "--val-fraction", "0"), ("train", "--focus-epochs", "-2"),
    ("train", "--ema", "1"), ("train", "--limit", "x"), ("evaluate", "--refine", "-2"),
    ("evaluate", "--val-fraction", "1.5"),
])
def test_bad_option_values_are_refused_in_one_line(cmd, opt, value):
    from facekeypoints.cli.main import build_parser

    r = _fkp(cmd, "--data", "nowhere", opt, value, timeout=60)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fkp {cmd}: error: argument {opt}") and value in last and "Traceback" not in r.stderr
    # and every option of train and evaluate says what it is for
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[cmd]
    assert all(a.help for a in sub._actions), [a.dest for a in sub._actions if not a.help]


def test_losses_count_present_points_only():
    from facekeypoints.training.train import SMOOTH_L1_BETA, masked_mse

    pred = torch.tensor([[0.1, -0.2, 5.0, 5.0]])
    target = torch.zeros(1, 4)
    mask = torch.tensor([[True, False]])  # the second point is missing: its 5.0s never count
    assert masked_mse(pred, target, mask).item() == pytest.approx((0.01 + 0.04) / 2)
    assert masked_mse(pred, target, mask, "l1").item() == pytest.approx((0.1 + 0.2) / 2)
    # smoothl1: squared within 1 px of the 96x96 crop, L1 beyond, continuous at the switch
    b = SMOOTH_L1_BETA
    assert masked_mse(pred, target, mask, "smoothl1").item() == pytest.approx((0.1 - b / 2 + 0.2 - b / 2) / 2)
    near = torch.tensor([[b / 2, 0.0, 0.0, 0.0]])
    assert masked_mse(near, torch.zeros(1, 4), torch.tensor([[True, True]]), "smoothl1").item() == pytest.approx(
        0.5 * (b / 2) ** 2 / b / 4)


@pytest.mark.parametrize("args, message", [
    (["--augment", "occlude"], "fkp: --augment 'occlude': expected NAME=VALUE"),
    (["--augment", "occlude=-1"], "fkp: --augment 'occlude=-1': expected NAME=VALUE"),
    (["--augment", "occlude=nan"], "fkp: --augment 'occlude=nan': expected NAME=VALUE"),
    (["--augment", "blurr=0.3"], "fkp: unknown augmentation setting 'blurr'"),
    (["--crop-zoom", "1.25"], "fkp: --crop-zoom/--crop-down are for 68-point models (--arch integral68...), not integral"),
    (["--arch", "integral68", "--crop-zoom", "3"], "fkp: crop framing out of range: --crop-zoom 3.0 (0.5-2)"),
])
def test_bad_augment_settings_are_one_line(tmp_path, data_dir, args, message):
    r = _fkp("train", "--data", data_dir / "kaggle_format" / "training.csv", "--out", tmp_path / "r", *args, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_fractional_oversampling_draws_a_new_share_each_epoch():
    from facekeypoints.training.train import sampling_index

    sources = ["300w"] + ["mtfl"] * 8 + ["udacity"]
    a = sampling_index(sources, {"300w": 3, "mtfl": 0.25}, np.random.default_rng(0))
    b = sampling_index(sources, {"300w": 3, "mtfl": 0.25}, np.random.default_rng(1))
    assert len(a) == len(b) == 3 + 2 + 1  # every epoch the same length: a quarter of the 8 MTFL faces
    assert a.tolist()[:3] == [0, 0, 0] and a[-1] == 9 and all(1 <= i <= 8 for i in a[3:5])
    assert len(sampling_index(sources, {"mtfl": 1.5}, np.random.default_rng(0))) == 1 + 8 + 4 + 1
    assert len(sampling_index(sources, {"mtfl": 0})) == 2  # 0 leaves the source out of the main phase


def test_oversampling_that_draws_nothing_is_one_line(tmp_path, data_dir):
    """MTFL is validated on but not drawn by default (mtfl=0): alone it needs --oversample mtfl=1."""
    r = _fkp("train", "--data", data_dir / "mtfl", "--out", tmp_path / "r", "--epochs", "1", timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]  # after the loading progress bar
    assert last.startswith("fkp: --oversample 300w=3 lfpw=3 mtfl=0 draws none") and "--oversample mtfl=1" in last, last


def test_integral48_heatmaps_train_and_export(tmp_path, data_dir):
    """The 48x48-heatmap ablation (docs/training/ablation): its cells sit 2 px apart across the crop,
    a short run lowers the loss, and the ONNX export matches torch."""
    import torch

    from facekeypoints.training.export import export
    from facekeypoints.training.model import build, denormalise
    from facekeypoints.training.train import TrainConfig, train

    net = build("integral48").eval()
    centres = denormalise(net.grid).numpy()
    np.testing.assert_allclose(centres, np.arange(48) * 2 + 0.5, atol=1e-5)
    with torch.no_grad():
        y = denormalise(net(torch.rand(3, 1, 96, 96)))
    assert y.shape == (3, 30) and ((y > 0) & (y < 95)).all()
    out = tmp_path / "run"
    train(TrainConfig(data=[str(data_dir / "300w" / "afw")], out=str(out), arch="integral48", epochs=2,
                      batch_size=32, limit=128, threads=1, focus_epochs=0), log=lambda *_: None)
    hist = json.loads((out / "history.json").read_text())["history"]
    assert len(hist) == 2 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    meta = export(out / "best.pt", tmp_path / "m.onnx")
    assert meta["arch"] == "integral48" and meta["points"] == 15 and meta["max_abs_diff_vs_torch"] < 1e-4
