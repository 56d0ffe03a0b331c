"""Scaling out: 2-process CPU training under torchrun (gloo) on real faces, and ``fkp detect --workers``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

EPOCHS = 3


def _torchrun(args: list[str], env_extra: dict | None = None, timeout: int = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "FKP_DEBUG_SHARDS": "1", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "facekeypoints.cli", "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, data_dir):
    pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
    out = tmp_path_factory.mktemp("ddp") / "run"
    cache = tmp_path_factory.mktemp("ddpcache")
    # the dense-head model: it leaves the mean face within these few steps, the heatmap default takes longer
    args = ["--data", str(data_dir / "300w" / "afw"), "--out", str(out), "--arch", "compact", "--limit", "192",
            "--epochs", str(EPOCHS), "--batch-size", "32", "--threads", "1", "--cache-dir", str(cache), "--device", "cpu",
            "--oversample", "--focus-epochs", "0"]
    r = _torchrun(args)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    return out, args, cache, r


@pytest.fixture(scope="module")
def val_faces(ddp_run, data_dir):
    from facekeypoints.training.data.dataset import load, split

    faces = load([str(data_dir / "300w" / "afw")], ddp_run[2])
    return faces.subset(split(faces, 0.15, 0)[1])


def test_two_process_training_lowers_validation_error(ddp_run, val_faces):
    import torch

    from facekeypoints.training.model import build
    from facekeypoints.training.train import validate

    out, _, _, r = ddp_run
    hist = json.loads((out / "history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == list(range(1, EPOCHS + 1))
    torch.manual_seed(0)
    untrained = validate(build("compact"), val_faces, 0)["300w"]["nme"]
    best = min(h["val_nme"] for h in hist)
    assert best < 0.75 * untrained, (best, untrained)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    # only rank 0 logs and writes
    assert r.stdout.count("epoch   1/3") == 1 and r.stdout.count("best validation") == 1, r.stdout
    assert "2 process(es) on cpu" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "curves.png", "debug-shards", "history.json", "last.pt"]


def test_rank0_checkpoint_loads_in_one_process_and_its_metrics_hold(ddp_run, val_faces):
    import torch

    from facekeypoints.training.train import load_checkpoint, validate

    out = ddp_run[0]
    raw = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert raw["world_size"] == 2 and raw["epoch"] == EPOCHS
    assert not any(k.startswith("module.") for k in raw["model"])
    model, ckpt = load_checkpoint(out / "best.pt")
    # the sharded, gathered validation scored exactly the weights and BatchNorm statistics rank 0 saved
    again = validate(model, val_faces, 0)
    assert again["300w"]["nme"] == pytest.approx(ckpt["metrics"]["300w"]["nme"], rel=1e-5, abs=1e-7)
    assert again["300w"]["rmse"] == pytest.approx(ckpt["metrics"]["300w"]["rmse"], rel=1e-5, abs=1e-7)
    assert ckpt["best"] == min(h["val_nme"] for h in ckpt["history"])


def test_ranks_see_disjoint_shards_covering_each_epoch(ddp_run):
    out = ddp_run[0]
    for epoch in range(1, EPOCHS + 1):
        r0, r1 = (json.loads((out / "debug-shards" / f"epoch{epoch}-rank{r}.json").read_text()) for r in (0, 1))
        a, b = r0["indices"], r1["indices"]
        assert r0["train_size"] == 192 and r0["world"] == 2
        assert len(a) == len(set(a)) == 96 and len(b) == len(set(b)) == 96
        assert not set(a) & set(b)
        assert set(a) | set(b) == set(range(192))
    e1 = json.loads((out / "debug-shards" / "epoch1-rank0.json").read_text())["indices"]
    e2 = json.loads((out / "debug-shards" / "epoch2-rank0.json").read_text())["indices"]
    assert set(e1) != set(e2), "each epoch must draw a new permutation"


def test_distributed_resume_continues(ddp_run, tmp_path):
    out, args, _, _ = ddp_run
    run = tmp_path / "resumed"
    shutil.copytree(out, run)
    before = json.loads((run / "history.json").read_text())["history"]
    args = [a if a != str(out) else str(run) for a in args]
    args[args.index("--epochs") + 1] = str(EPOCHS + 1)
    r = _torchrun(args + ["--resume"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resumed from {run / 'last.pt'} after epoch {EPOCHS}" in r.stdout
    hist = json.loads((run / "history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == list(range(1, EPOCHS + 2))
    assert hist[:EPOCHS] == before
    a, b = (json.loads((run / "debug-shards" / f"epoch{EPOCHS + 1}-rank{r}.json").read_text())["indices"] for r in (0, 1))
    assert not set(a) & set(b) and set(a) | set(b) == set(range(192))
    from facekeypoints.training.checkpoint import load_checkpoint

    assert load_checkpoint(run / "last.pt")[1]["epoch"] == EPOCHS + 1


def _grad_worker(rank: int, world: int, init: str, batch: dict, result: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from facekeypoints.training.distributed import shard_batches
    from facekeypoints.training.model import build
    from facekeypoints.training.train import shard_loss

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.manual_seed(0)
    model = build("compact").eval()  # eval: BatchNorm/dropout do not depend on the split
    net = DistributedDataParallel(model)
    order = batch["order"]
    share = shard_batches(order, len(order), rank, world)[0]
    count = 2.0 * float(batch["mask"][order].sum())
    x, y, m = (torch.from_numpy(batch[k][np.sort(share)]) for k in ("x", "y", "mask"))
    loss, _ = shard_loss(net(x), y, m, count, world)
    loss.backward()
    if rank == 0:
        torch.save({k: p.grad.clone() for k, p in model.named_parameters()}, result)
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_gradient_equals_one_process_gradient_of_the_global_batch(tmp_path):
    """Uneven shares (7 faces over 2 ranks) and missing keypoints still give the exact gradient."""
    torch = pytest.importorskip("torch")
    import torch.multiprocessing as tmp

    from facekeypoints.training.model import build
    from facekeypoints.training.train import masked_mse

    rng = np.random.default_rng(3)
    mask = rng.random((7, 15)) > 0.3
    mask[0] = False  # a face with no points
    batch = {"x": rng.random((7, 1, 96, 96), dtype=np.float32), "y": rng.uniform(-1, 1, (7, 30)).astype(np.float32),
             "mask": mask, "order": rng.permutation(7)}
    result = str(tmp_path / "grads.pt")
    tmp.spawn(_grad_worker, args=(2, f"file://{tmp_path / 'store'}", batch, result), nprocs=2, join=True)
    torch.manual_seed(0)
    model = build("compact").eval()
    masked_mse(model(torch.from_numpy(batch["x"])), torch.from_numpy(batch["y"]), torch.from_numpy(mask)).backward()
    got = torch.load(result)
    for k, p in model.named_parameters():
        assert torch.allclose(got[k], p.grad, rtol=1e-4, atol=1e-7), k


# --- fkp detect --workers ----------------------------------------------------------------------

def _detect(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facekeypoints.cli", "detect", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_detect_workers_match_one_worker(tmp_path, data_dir):
    photos = data_dir / "photos"
    bad = tmp_path / "in" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    twin = tmp_path / "in" / "bald_guys.jpg"  # same name as an input in photos/: numbered output name
    shutil.copy(photos / "bald_guys.jpg", twin)
    inputs = [str(photos / "2008_001009.jpg"), str(bad), str(photos), str(twin)]
    res = {}
    for w in (1, 2):
        out = tmp_path / f"w{w}"
        r = _detect([*inputs, "--workers", str(w), "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                     "-o", str(out / "img")])
        assert r.returncode == 1, r.stderr[-2000:]
        assert "Traceback" not in r.stderr and f"{bad}: not a readable image" in r.stderr
        res[w] = out
    j1, j2 = ((res[w] / "r.json").read_text() for w in (1, 2))
    assert j1 == j2
    assert (res[1] / "r.csv").read_text() == (res[2] / "r.csv").read_text()
    recs = json.loads(j2)
    from facekeypoints.photos import expand_inputs

    assert [r["image"] for r in recs] == expand_inputs(inputs)
    assert [r["image"] for r in recs if r["error"]] == [str(bad)]
    by_name = {Path(r["image"]).name: r for r in recs}
    assert len(by_name["bald_guys.jpg"]["faces"]) >= 3 and sum(len(r["faces"]) for r in recs) >= 30
    names = sorted(p.name for p in (res[1] / "img").iterdir())
    assert names == sorted(p.name for p in (res[2] / "img").iterdir())  # no part files left behind
    assert "bald_guys_2.jpg" in names and len(names) == len(recs) - 1
    for n in names:
        assert (res[1] / "img" / n).read_bytes() == (res[2] / "img" / n).read_bytes(), n


def test_detect_workers_ctrl_c_writes_finished_results(tmp_path, data_dir):
    inputs = sorted(str(p) for p in (data_dir / "300w" / "afw").glob("*.jpg"))[:80]
    out = tmp_path / "img"
    # As in a terminal, the child must start with SIGINT at its default: a suite launched in the
    # background (`cmd &`) has it ignored, and exec passes "ignored" on (a handled signal is reset).
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        p = subprocess.Popen([sys.executable, "-m", "facekeypoints.cli", "detect", *inputs, "--workers", "2",
                              "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"), "-o", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, old)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if out.is_dir() and sum(not n.startswith(".") for n in os.listdir(out)) >= 3:
            break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted after" in err
    recs = json.loads((tmp_path / "r.json").read_text())
    assert 3 <= len(recs) < len(inputs)
    assert [r["image"] for r in recs] == inputs[: len(recs)]
    assert sorted(os.listdir(out)) == sorted(Path(r["image"]).name for r in recs)  # finished, no half-written parts
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 1 + sum(len(r["faces"]) for r in recs)


def test_detect_workers_bad_model_is_one_line(tmp_path, data_dir):
    photos = [str(data_dir / "photos" / n) for n in ("2008_001009.jpg", "bald_guys.jpg")]
    r = _detect([*photos, "--workers", "2", "--model", str(tmp_path / "missing.onnx"), "--json", str(tmp_path / "r.json")],
                timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"fkp: {tmp_path / 'missing.onnx'}: model file not found", r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "r.json").exists()
