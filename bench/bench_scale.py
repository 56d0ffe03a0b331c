"""Scaling benchmark: training images/s with 1 vs N processes (torchrun, CPU/gloo) and
``fkp detect --workers 1`` vs ``--workers N`` photos/s on 300-W photos (outputs checked identical).

Short runs, medians over repeats; the load average is recorded before and after because the
figures mean little on a shared machine without it. Results: docs/scaling.md.

    python bench/bench_scale.py                      # defaults: 2 processes/workers, 3 repeats
    python bench/bench_scale.py --procs 4 --repeats 5 --photos 400 --json /tmp/scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def train_rate(data: Path, procs: int, threads: int, limit: int, epochs: int, batch: int, cache: str) -> dict:
    """Faces/s of the training epochs after the first (warm; includes the per-epoch validation)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        args = ["train", "--data", str(data), "--out", str(out), "--limit", str(limit), "--epochs", str(epochs),
                "--batch-size", str(batch), "--cache-dir", cache, "--device", "cpu", "--threads", str(threads)]
        if procs == 1:
            cmd = [sys.executable, "-m", "facekeypoints.cli", *args]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                   "-m", "facekeypoints.cli", *args]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"training failed ({' '.join(cmd)}):\n{r.stderr[-3000:]}")
        hist = json.loads((out / "history.json").read_text())["history"]
    secs = [h["seconds"] for h in hist[1:]] or [hist[0]["seconds"]]
    return {"faces_per_s": limit / statistics.median(secs), "epoch_s": secs, "wall_s": wall,
            "best_val_nme": min(h["val_nme"] for h in hist)}


def detect_rate(photos: list[str], workers: int, tmp: Path) -> tuple[float, str]:
    out = tmp / f"w{workers}.json"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "facekeypoints.cli", "detect", *photos, "--workers", str(workers),
                        "--json", str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"fkp detect failed:\n{r.stderr[-3000:]}")
    return len(photos) / wall, out.read_text()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--procs", type=int, default=2, help="processes / workers to compare with 1")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=256, help="training faces per epoch")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--photos", type=int, default=200, help="300-W photos for fkp detect")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-detect", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    a = ap.parse_args()
    n = a.procs
    res: dict = {"cpus": os.cpu_count(), "load_before": _load(), "procs": n}
    print(f"{os.cpu_count()} CPUs, load average {res['load_before']} (1/5/15 min)", flush=True)

    if not a.skip_train:
        afw = a.data / "300w" / "afw"
        with tempfile.TemporaryDirectory() as cache:
            train_rate(afw, 1, 1, 32, 1, a.batch_size, cache)  # fills the face cache
            # one process on all n cores' threads, one process on one thread, n processes x 1 thread
            configs = {"1 process x 1 thread": (1, 1), f"1 process x {n} threads": (1, n),
                       f"{n} processes x 1 thread": (n, 1)}
            runs: dict[str, list[dict]] = {k: [] for k in configs}
            for _ in range(a.repeats):  # interleaved so that load changes hit every configuration
                for name, (p, t) in configs.items():
                    runs[name].append(train_rate(afw, p, t, a.limit, a.epochs, a.batch_size, cache))
                    print(f"  train {name}: {runs[name][-1]['faces_per_s']:.1f} faces/s", flush=True)
        res["train"] = {k: {"median_faces_per_s": statistics.median(r["faces_per_s"] for r in v), "runs": v}
                        for k, v in runs.items()}
        for k, v in res["train"].items():
            print(f"train {k:24s} {v['median_faces_per_s']:7.1f} faces/s (median of {a.repeats})")

    if not a.skip_detect:
        photos = sorted(str(p) for p in (a.data / "300w" / "afw").glob("*.jpg"))
        photos += sorted(str(p) for p in (a.data / "300w" / "helen" / "trainset").glob("*.jpg"))
        photos = photos[: a.photos]
        rates: dict[int, list[float]] = {1: [], n: []}
        outputs: dict[int, str] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(a.repeats):
                for w in (1, n):
                    rate, outputs[w] = detect_rate(photos, w, Path(tmp))
                    rates[w].append(rate)
                    print(f"  detect --workers {w}: {rate:.2f} photos/s", flush=True)
        same = outputs[1] == outputs[n]
        res["detect"] = {"photos": len(photos), "identical_json": same,
                         **{f"workers_{w}": {"median_photos_per_s": statistics.median(v), "runs": v}
                            for w, v in rates.items()}}
        for w in (1, n):
            print(f"detect --workers {w}: {statistics.median(rates[w]):6.2f} photos/s (median of {a.repeats}, "
                  f"{len(photos)} photos, wall time incl. start-up)")
        print(f"JSON identical: {same}")
        if not same:
            return 1
    res["load_after"] = _load()
    print(f"load average after: {res['load_after']}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
