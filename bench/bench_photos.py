"""Detection and landmark benchmark: facekeypoints vs dlib, MediaPipe and CenterFace, in one run.

Every system (ours through bench/peers/fk_runner.py, one row per detector / model the measured
source trees offer) gets every validation image of 300-W, LFPW, Udacity and MTFL, dlib's multi-face
photos and dogs.jpg, one image at a time in rotating order (fair on a shared, noisy machine), one
thread each; the 300-W + LFPW photos are also letterboxed to 640x480 for the timing. Peers run in
their own venvs (bench/setup_peers.sh). Data sets and splits: bench/sets.py; the run and the scores:
bench/suite.py; the Markdown: bench/report.py.

    python bench/bench_photos.py                       # everything, writes docs/benchmarks.md + .json
    python bench/bench_photos.py --quick               # a few images per set, prints only (< 2 min)
    python bench/bench_photos.py --tree /work/detect/src --tree68 /work/api68/src --split-tree /work/points68/src
    python bench/bench_photos.py --render              # rewrite the Markdown from docs/benchmarks.json
    python bench/bench_photos.py --haar-sweep          # + Haar detector variants (300-W train + val, in-process)
"""

from __future__ import annotations

import os

# One thread for everyone, set before numpy / OpenCV / onnxruntime start their pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import facekeypoints as fk  # noqa: E402
from facekeypoints.detection import HaarDetector  # noqa: E402
from facekeypoints.metrics import interocular, nme_per_face  # noqa: E402
from facekeypoints.schema import LEFT_EYE, RIGHT_EYE  # noqa: E402
from facekeypoints.training.data.landmarks import FaceSample, load_300w, split_by_group  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
import suite  # noqa: E402
from sets import MATCH_RADIUS, Letterbox, load_sets  # noqa: E402, F401  (Letterbox: used by the tests)

cv2.setNumThreads(1)

ROOT = Path(__file__).resolve().parents[1]
Runner = Callable[[Path], tuple[list[np.ndarray], float]]
#: --quick: the first N validation images of each set.
QUICK = {"300w": 6, "lfpw": 4, "udacity": 6, "mtfl": 12, "multi": 2}


def match(candidates: list[np.ndarray], gt: np.ndarray) -> np.ndarray | None:
    """The candidate (15, 2) whose eye midpoint is nearest the labelled one, if within MATCH_RADIUS iods."""
    mid = (gt[LEFT_EYE] + gt[RIGHT_EYE]) / 2
    best, best_d = None, MATCH_RADIUS * float(interocular(gt))
    for kp in candidates:
        d = float(np.linalg.norm((kp[LEFT_EYE] + kp[RIGHT_EYE]) / 2 - mid))
        if d < best_d:
            best, best_d = kp, d
    return best


def fk_runner(det: fk.KeypointDetector) -> Runner:
    def run(path: Path) -> tuple[list[np.ndarray], float]:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # decoding is not timed, as for the peers
        t0 = time.perf_counter()
        faces = det.detect(img)
        ms = (time.perf_counter() - t0) * 1000.0
        return [f.keypoints.astype(np.float64) for f in faces], ms

    return run




# ---------------------------------------------------------------- Haar detector experiments (--haar-sweep)


def _describe(d: HaarDetector) -> str:
    coarse = "off" if d.coarse is None else f"scale_factor {d.coarse[0]}, min_neighbors {d.coarse[1]}"
    return (f"coarse pass {coarse}, then if needed scale_factor {d.scale_factor}, min_neighbors {d.min_neighbors}; "
            f"min_size {d.min_size}, max_side {d.max_side}, big_side {d.big_side}")


SWEEP: dict[str, Callable[[], HaarDetector]] = {
    f"default ({_describe(HaarDetector())}, profile fallback)": HaarDetector,
    "coarse=None (fine pass only: the default before coarse to fine)": lambda: HaarDetector(coarse=None),
    "coarse pass alone (scale_factor 1.2, min_neighbors 1)": lambda: HaarDetector(
        coarse=None, scale_factor=1.2, min_neighbors=1),
    "big_side=0 (no big-face pass)": lambda: HaarDetector(big_side=0),
    "profile=False (no profile fallback)": lambda: HaarDetector(profile=False),
    "big_side=0, profile=False, max_side=640, coarse=None (the detector before the big-face pass)": lambda: HaarDetector(
        big_side=0, profile=False, max_side=640, coarse=None),
    "max_side=640": lambda: HaarDetector(max_side=640),
    "max_side=448": lambda: HaarDetector(max_side=448),
    "min_size=40 (dlib HOG upsample 1 finds faces from ~40 px)": lambda: HaarDetector(min_size=40),
    "HaarDetector.fast() (the shipped preset: pad 0.1, max_side 320, min_size 20, profile fallback)": HaarDetector.fast,
}


def haar_sweep(sets: dict[str, list[FaceSample]], no_face: Path | None = None, only: str = "") -> list[dict]:
    """Detection rate of the labelled face, faces per photo (more = more false alarms, as most
    crops show one person), median ms per photo (and as a ratio to the default detector,
    timed photo by photo in the same sweep), and detections on a photo without faces."""
    keys = [k.strip() for k in only.split(",") if k.strip()]
    labels = [lb for i, lb in enumerate(SWEEP) if i == 0 or not keys or any(k in lb for k in keys)]  # default always
    dets = {lb: fk.KeypointDetector(detector=SWEEP[lb](), threads=1) for lb in labels}
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rows = {lb: {"detector": lb, "date": date} for lb in labels}
    if no_face is not None and no_face.is_file():
        for lb in labels:
            rows[lb]["no_face_detections"] = len(dets[lb].detect(no_face))
    for name, ss in sets.items():
        acc = {lb: {"found": 0, "ms": [], "nme": [], "faces": 0} for lb in labels}
        for i, s in enumerate(ss):
            img = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            for lb in labels[i % len(labels):] + labels[: i % len(labels)]:  # interleaved, rotating order
                t0 = time.perf_counter()
                faces = dets[lb].detect(img)
                acc[lb]["ms"].append((time.perf_counter() - t0) * 1000.0)
                acc[lb]["faces"] += len(faces)
                m = match([fc.keypoints.astype(np.float64) for fc in faces], s.keypoints)
                if m is not None:
                    acc[lb]["found"] += 1
                    acc[lb]["nme"].append(float(nme_per_face(m[None], s.keypoints[None])[0]))
            print(f"\r  sweep {name}: {i + 1}/{len(ss)} photos", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        ref = float(np.median(acc[labels[0]]["ms"]))
        for lb, a in acc.items():
            ms = float(np.median(a["ms"]))
            rows[lb][name] = {"faces": len(ss), "found": a["found"], "detection_rate": a["found"] / len(ss),
                              "faces_per_photo": a["faces"] / len(ss),
                              "nme_own": float(np.mean(a["nme"])) if a["nme"] else None,
                              "ms_median": ms, "ms_vs_default": ms / ref}
    for r in rows.values():
        print(f"  {r['detector']}: " + ", ".join(f"{k} {v['detection_rate']:.3f} ({v['ms_vs_default']:.2f}x)"
                                                 for k, v in r.items() if isinstance(v, dict)), file=sys.stderr)
    return list(rows.values())



def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}



def versions() -> dict:
    import onnxruntime

    from facekeypoints.runtime import default_model_path

    meta_path = default_model_path().with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    v = {"facekeypoints": fk.__version__, "model_sha256": meta.get("sha256", "?")[:12], "onnxruntime": onnxruntime.__version__,
         "opencv": cv2.__version__, "numpy": np.__version__}
    v["git"] = _git_head(ROOT)
    return v


def _git_head(folder: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)



def _command() -> str:
    own = ("python bench/bench_photos.py " + shlex.join(sys.argv[1:])).rstrip()
    outer = os.environ.get("FKP_BENCH_COMMAND")  # set by bench/run_all.sh
    return f"{outer}` (which ran `{own}" if outer else own



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--tree", default=str(ROOT / "src"),
                    help="facekeypoints source tree for the detector rows (default, haar, learned when it has it)")
    ap.add_argument("--tree68", default=None, help="tree for the points=68 row and its 15-point model (default: --tree)")
    ap.add_argument("--model15", default=None, help="another 15-point .onnx (e.g. a retrained one from another "
                    "tree), run as an extra row with --tree's code")
    ap.add_argument("--model68", default=None, help="68-point .onnx for --tree68's points=68 row (default: its own "
                    "models/points68.onnx)")
    ap.add_argument("--split-tree", default=None,
                    help="tree whose training loaders define the LFPW / MTFL splits (default: --tree68 or --tree)")
    ap.add_argument("--systems", default="", help=f"comma-separated subset of {', '.join(suite.ALL_KEYS)} "
                    "(the default facekeypoints row is always in); empty = all")
    ap.add_argument("--sets", default="", help="comma-separated subset of 300w, lfpw, udacity, mtfl, multi, dogs")
    ap.add_argument("--minutes", type=float, default=None, help="time budget: stop taking new images after this "
                    "long; every set is then reported on the same leading share of its images (said in the report)")
    ap.add_argument("--every", default="", help="SET=N,...: every Nth image of those sets; timing=N: the 640x480 "
                    "timing pass on every Nth 300-W / LFPW photo (e.g. udacity=2,timing=2 on a busy machine)")
    ap.add_argument("--quick", action="store_true", help=f"first few images per set {QUICK}; prints, writes nothing")
    ap.add_argument("--haar-sweep", action="store_true", help="also measure Haar detector variants (300-W train + val)")
    ap.add_argument("--sweep-only", action="store_true", help="run only the sweep; keep the rest of the report")
    ap.add_argument("--sweep-configs", default="", help="comma-separated label substrings: only these variants")
    ap.add_argument("--sweep-train", type=int, default=300, help="300-W train faces (random, seed 0) in the sweep")
    ap.add_argument("--jobs", type=int, default=1, help="chains running at once, each with its own copy of every "
                    "system, sharing the images (on a machine busy with other work, 2-3 get the run done in time)")
    ap.add_argument("--render", action="store_true", help="only rewrite the Markdown from the existing JSON")
    ap.add_argument("--readme-rows", action="store_true", help="print README.md's benchmark rows from the JSON")
    ap.add_argument("--update-readme", action="store_true", help="replace those rows in README.md (nothing else)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown output (.json beside it)")
    args = ap.parse_args()

    out, data = Path(args.out), Path(args.data)
    old: dict = {}
    if out.with_suffix(".json").is_file():
        try:
            old = json.loads(out.with_suffix(".json").read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
    sweep = old.get("haar_sweep")
    if isinstance(sweep, list):  # the report before this benchmark kept the sweep's rows and meta apart
        sweep = {"rows": sweep, "meta": old.get("haar_sweep_meta", {})}
    if args.readme_rows or args.update_readme:
        if "summary" not in old:
            sys.exit(f"bench_photos: {out.with_suffix('.json')} holds no report of this benchmark; run it first")
        rows = report.readme_rows(old)
        print("\n".join(rows))
        if args.update_readme:
            readme = ROOT / "README.md"
            _write_atomic(readme, report.update_readme(readme.read_text(), rows))
            print(f"updated {len(rows)} rows in {readme}", file=sys.stderr)
        return
    if args.render or args.sweep_only:
        if "summary" not in old:
            sys.exit(f"bench_photos: {out.with_suffix('.json')} holds no report of this benchmark; run it first")
        rep = old
    else:
        limits = dict(QUICK) if args.quick else {}
        wanted_sets = {s.strip() for s in args.sets.split(",") if s.strip()}
        try:
            every = {k.strip(): int(v) for k, v in (x.split("=") for x in args.every.split(",") if x.strip())}
        except ValueError:
            sys.exit(f"bench_photos: --every wants SET=N,... (got {args.every!r})")
        timing_every = every.pop("timing", 1)
        sets = load_sets(data, args.split_tree or args.tree68 or args.tree, limits, every)
        if wanted_sets:
            sets.items = {k: v for k, v in sets.items.items() if k in wanted_sets}
        wanted = {s.strip() for s in args.systems.split(",") if s.strip()} or None
        unknown = (wanted or set()) - set(suite.ALL_KEYS)
        if unknown:
            sys.exit(f"bench_photos: unknown --systems {sorted(unknown)}; choose from {', '.join(suite.ALL_KEYS)}")
        load = machine()
        rep = suite.benchmark(args.tree, args.tree68, wanted, sets, args.model15, args.model68, timing_every,
                              args.jobs, args.minutes)
        rep["meta"] = {"command": _command(), "machine": load, "bench_git": _git_head(ROOT), "data": str(data)}
    if args.haar_sweep or args.sweep_only:
        train, val = split_by_group(load_300w(data / "300w"), 0.15, 0)
        pick = np.random.default_rng(0).permutation(len(train))[: args.sweep_train]
        print("haar sweep:", file=sys.stderr)
        rows = haar_sweep({"train": [train[i] for i in sorted(pick)], "val": val}, data / "photos" / "dogs.jpg",
                          args.sweep_configs)
        if args.sweep_configs and sweep:  # replace those rows, keep the others
            new = {r["detector"]: r for r in rows}
            rows = [new.pop(r["detector"], r) for r in sweep["rows"] if r["detector"] in SWEEP] + list(new.values())
        sweep = {"rows": rows, "meta": {"command": _command(), "date": dt.datetime.now(dt.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"), "versions": versions()}}
    if sweep:
        rep["haar_sweep"] = sweep
    write = not (args.no_write or args.quick)
    if write:  # the numbers first: a report that fails to render can be redone with --render
        _write_atomic(out.with_suffix(".json"), json.dumps(rep, indent=None, separators=(",", ":")) + "\n")
    md = report.markdown(rep, sweep)
    print(md)
    if write:
        _write_atomic(out, md)
        print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
