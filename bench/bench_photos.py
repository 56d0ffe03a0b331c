"""End-to-end photo benchmark: facekeypoints vs dlib (HOG + 68 points) vs MediaPipe FaceMesh.

Whole 300-W validation photos (the photo-disjoint split training uses), each annotating
one face. Every system runs on every photo, image by image in rotating order (fair timing
on a shared, noisy machine); its detection matching the labelled face (eye midpoint
nearest the labelled one, within one outer-eye-corner distance) is scored with NME.
A second pass times the same photos letterboxed to 640x480. One thread for everyone.
The peers run in their own venv as subprocesses (bench/peers/, bench/README.md).

Usage: python bench/bench_photos.py [--limit N] [--no-write] [--haar-sweep | --sweep-only]
Writes docs/benchmarks.md and docs/benchmarks.json (unless --no-write); prints the table.
"""

from __future__ import annotations

import os

# One thread for everyone, set before numpy / OpenCV / onnxruntime start their pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import facekeypoints as fk  # noqa: E402
from facekeypoints.detection import HaarDetector  # noqa: E402
from facekeypoints.metrics import interocular, nme_per_face, per_keypoint  # noqa: E402
from facekeypoints.schema import KEYPOINT_NAMES, LEFT_EYE, RIGHT_EYE, from_ibug68  # noqa: E402
from facekeypoints.training.data.landmarks import FaceSample, load_300w, split_by_group  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from client import DEFAULT_PEER_PYTHON, PeerClient  # noqa: E402
from mediapipe_map import from_facemesh  # noqa: E402

cv2.setNumThreads(1)

ROOT = Path(__file__).resolve().parents[1]
FK, FK0, DLIB, MP = "facekeypoints", "facekeypoints refine=0", "dlib", "mediapipe"
SYSTEMS = (FK, FK0, DLIB, MP)
TIMING_SIZE = (640, 480)
#: A detection matches the labelled face when its eye midpoint lies within this many
#: outer-eye-corner distances of the labelled eye midpoint (other people's faces are farther).
MATCH_RADIUS = 1.0


@dataclass
class Result:
    """One system on one photo: keypoints of the matched face in native pixels (or None), faces found, ms."""

    keypoints: np.ndarray | None
    faces: int
    ms: float


@dataclass
class SystemRuns:
    native: list[Result] = field(default_factory=list)
    small: list[Result] = field(default_factory=list)  # the 640x480 letterboxed pass


Runner = Callable[[Path], tuple[list[np.ndarray], float]]


def match(candidates: list[np.ndarray], gt: np.ndarray) -> np.ndarray | None:
    """The candidate (15, 2) whose eye midpoint is nearest the labelled one, if within MATCH_RADIUS iods."""
    mid = (gt[LEFT_EYE] + gt[RIGHT_EYE]) / 2
    best, best_d = None, MATCH_RADIUS * float(interocular(gt))
    for kp in candidates:
        d = float(np.linalg.norm((kp[LEFT_EYE] + kp[RIGHT_EYE]) / 2 - mid))
        if d < best_d:
            best, best_d = kp, d
    return best


@dataclass(frozen=True)
class Letterbox:
    """Fit inside ``size`` keeping the aspect ratio, centred on black (the 640x480 timing pass)."""

    scale: float
    ox: int
    oy: int
    size: tuple[int, int] = TIMING_SIZE

    @classmethod
    def fit(cls, w: int, h: int, size: tuple[int, int] = TIMING_SIZE) -> Letterbox:
        s = min(size[0] / w, size[1] / h)
        return cls(s, (size[0] - round(w * s)) // 2, (size[1] - round(h * s)) // 2, size)

    def apply(self, img: np.ndarray) -> np.ndarray:
        nw, nh = round(img.shape[1] * self.scale), round(img.shape[0] * self.scale)
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        out = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        out[self.oy:self.oy + nh, self.ox:self.ox + nw] = small
        return out

    def forward(self, pts: np.ndarray) -> np.ndarray:
        """Native -> letterboxed pixel centres (cv2.resize maps x to (x + 0.5) * s - 0.5)."""
        return (pts + 0.5) * self.scale - 0.5 + (self.ox, self.oy)

    def back(self, pts: np.ndarray) -> np.ndarray:
        return (pts - (self.ox, self.oy) + 0.5) / self.scale - 0.5


def fk_runner(det: fk.KeypointDetector) -> Runner:
    def run(path: Path) -> tuple[list[np.ndarray], float]:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # decoding is not timed, as for the peers
        t0 = time.perf_counter()
        faces = det.detect(img)
        ms = (time.perf_counter() - t0) * 1000.0
        return [f.keypoints.astype(np.float64) for f in faces], ms

    return run


def peer_runner(peer: PeerClient, to15: Callable[[np.ndarray], np.ndarray]) -> Runner:
    def run(path: Path) -> tuple[list[np.ndarray], float]:
        reply = peer.run(path)
        return [to15(np.asarray(f["points"], np.float64)).astype(np.float64) for f in reply["faces"]], float(reply["ms"])

    return run


def run_all(runners: dict[str, Runner], samples: list[FaceSample], tmp: Path) -> dict[str, SystemRuns]:
    """Both passes, photo by photo, the systems' order rotating so none always goes first."""
    names = list(runners)
    for name in names:  # warm-up: first-call initialisation is not what we measure
        runners[name](samples[0].image)
    runs = {n: SystemRuns() for n in names}
    t_start = time.perf_counter()
    for i, s in enumerate(samples):
        img = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        lb = Letterbox.fit(img.shape[1], img.shape[0])
        small_path = tmp / f"{i:04d}.png"  # lossless, so every system reads the same pixels
        cv2.imwrite(str(small_path), lb.apply(img))
        gt_small = lb.forward(s.keypoints.astype(np.float64))
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            kps, ms = runners[name](s.image)
            runs[name].native.append(Result(match(kps, s.keypoints), len(kps), ms))
        for name in order:
            kps, ms = runners[name](small_path)
            m = match(kps, gt_small)
            runs[name].small.append(Result(None if m is None else lb.back(m), len(kps), ms))
        el = time.perf_counter() - t_start
        print(f"\r{i + 1}/{len(samples)} photos, {el:.0f}s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return runs


def face_attributes(gt: np.ndarray) -> dict[str, float]:
    """Size (outer-eye-corner distance, px), roll (deg) and a yaw proxy in [-1, 1] from the labels.

    The yaw proxy compares the nose tip's distances to the two outer eye corners:
    0 for a frontal face, about +-0.3 for a face turned 45 degrees or more.
    """
    le, re_ = gt[KEYPOINT_NAMES.index("left_eye_outer_corner")], gt[KEYPOINT_NAMES.index("right_eye_outer_corner")]
    nose = gt[KEYPOINT_NAMES.index("nose_tip")]
    v = le - re_
    dl, dr = float(np.linalg.norm(nose - le)), float(np.linalg.norm(nose - re_))
    return {"iod_px": float(np.linalg.norm(v)), "roll_deg": math.degrees(math.atan2(float(v[1]), float(v[0]))),
            "yaw": (dl - dr) / (dl + dr)}


def summarise(runs: dict[str, SystemRuns], samples: list[FaceSample]) -> dict:
    """Per system and pass: detection rate, NME on common / own faces, timing and ratio to dlib."""
    gt = np.stack([s.keypoints for s in samples]).astype(np.float64)
    out: dict = {}
    for pass_name in ("native", "small"):
        results = {n: getattr(sr, pass_name) for n, sr in runs.items()}
        found = {n: np.array([r.keypoints is not None for r in res]) for n, res in results.items()}
        common = np.logical_and.reduce(list(found.values()))
        ref = float(np.median([r.ms for r in results[DLIB]])) if DLIB in results else None
        for n, res in results.items():
            pred = np.stack([r.keypoints if r.keypoints is not None else np.full((15, 2), np.nan) for r in res])
            nme = nme_per_face(pred, gt)
            ms = np.array([r.ms for r in res])
            f = found[n]

            def mean(mask: np.ndarray, v: np.ndarray = nme) -> float | None:
                return float(np.mean(v[mask])) if mask.any() else None

            per_kp = per_keypoint(pred[common], gt[common]) if common.any() else {}
            out.setdefault(n, {})[pass_name] = {
                "nme_common_per_keypoint": {k: round(v["nme"], 5) for k, v in per_kp.items()},
                "found": int(f.sum()),
                "detection_rate": float(f.mean()),
                "faces_per_photo": float(np.mean([r.faces for r in res])),
                "common_faces": int(common.sum()),
                "nme_common": mean(common),
                "nme_common_median": float(np.median(nme[common])) if common.any() else None,
                "failure_rate_common": mean(common, (nme > 0.10).astype(float)),
                "nme_own": mean(f),
                "ms_median": float(np.median(ms)),
                "ms_mean": float(np.mean(ms)),
                "ms_p90": float(np.percentile(ms, 90)),
                "ms_ratio_vs_dlib": float(np.median(ms)) / ref if ref else None,
                "per_photo_nme": [round(float(v), 5) if np.isfinite(v) else None for v in nme],
                "per_photo_ms": [round(float(v), 3) for v in ms],
            }
    return out


def miss_analysis(summary: dict, samples: list[FaceSample]) -> dict:
    """Which labelled faces each system misses (native pass): size, roll and yaw of missed vs found."""
    attrs = [face_attributes(s.keypoints.astype(np.float64)) for s in samples]
    out = {}
    for n, d in summary.items():
        found = np.array([v is not None for v in d["native"]["per_photo_nme"]])
        missed = [a for a, f in zip(attrs, found) if not f]
        hit = [a for a, f in zip(attrs, found) if f]

        def med(rows: list[dict], key: str, fn: Callable[[float], float] = abs) -> float | None:
            return float(np.median([fn(r[key]) for r in rows])) if rows else None

        out[n] = {
            "missed": len(missed),
            "missed_abs_yaw_over_0.2": sum(abs(a["yaw"]) > 0.2 for a in missed),
            "missed_abs_roll_over_20": sum(abs(a["roll_deg"]) > 20 for a in missed),
            "missed_iod_under_40px": sum(a["iod_px"] < 40 for a in missed),
            "median_abs_yaw_missed": med(missed, "yaw"), "median_abs_yaw_found": med(hit, "yaw"),
            "median_abs_roll_missed": med(missed, "roll_deg"), "median_abs_roll_found": med(hit, "roll_deg"),
            "median_iod_missed": med(missed, "iod_px", float), "median_iod_found": med(hit, "iod_px", float),
            "missed_photos": [s.image.name for s, f in zip(samples, found) if not f],
        }
    out["_all_faces"] = {
        "abs_yaw_over_0.2": sum(abs(a["yaw"]) > 0.2 for a in attrs),
        "abs_roll_over_20": sum(abs(a["roll_deg"]) > 20 for a in attrs),
        "iod_under_40px": sum(a["iod_px"] < 40 for a in attrs),
        "median_iod_px": float(np.median([a["iod_px"] for a in attrs])),
    }
    return out


# ---------------------------------------------------------------- detector experiments (--haar-sweep)


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


# ---------------------------------------------------------------- report


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _nme(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def versions(peers: dict[str, PeerClient]) -> dict:
    import onnxruntime

    from facekeypoints.runtime import default_model_path

    meta_path = default_model_path().with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    v = {"facekeypoints": fk.__version__, "model_sha256": meta.get("sha256", "?")[:12], "onnxruntime": onnxruntime.__version__,
         "opencv": cv2.__version__, "numpy": np.__version__}
    for p in peers.values():
        v.update({f"{p.name}:{k}": val for k, val in p.versions.items()})
    try:  # which code was measured: other work may be in progress in the checkout
        git = ["git", "-C", str(ROOT)]
        v["git"] = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout
        v["src_uncommitted"] = sorted(ln[3:] for ln in dirty.splitlines() if ln.strip()) or "none"
    except OSError:
        pass
    return v


def targets(summary: dict) -> list[tuple[str, bool, str]]:
    """The issue's three targets, for the default facekeypoints and each --extra-detector variant."""
    out = []
    for name in (n for n in summary if n == FK or n.startswith(FK + ", detector")):
        tag = "" if name == FK else f" [{name.removeprefix('facekeypoints, ')}]"
        n, s = summary, "native"
        if MP in n:
            a, b = n[name][s]["nme_common"], n[MP][s]["nme_common"]
            out.append((f"NME on commonly found faces lower than MediaPipe's{tag}", a < b, f"{a:.4f} vs {b:.4f}"))
        if DLIB in n:
            a, b = n[name][s]["detection_rate"], n[DLIB][s]["detection_rate"]
            out.append((f"detection rate within 3 points of dlib's{tag}", a >= b - 0.03,
                        f"{100 * a:.1f}% vs {100 * b:.1f}%"))
            a, b = n[name]["small"]["ms_median"], n[DLIB]["small"]["ms_median"]
            out.append((f"median time per 640x480 photo lower than dlib's (HOG, upsample 1){tag}", a < b,
                        f"{a:.1f} ms vs {b:.1f} ms ({a / b:.2f}x)"))
    return out


#: Observations that held over every run so far (they point at the tables, whose numbers change per run).
NOTES = [
    "- The frontal Haar cascade loses near-frontal faces that fill much of the photo or touch its edge (it "
    "needs some margin around a face at its largest scales). The default detector's second pass on a small, "
    "black-framed copy (`big_side`) recovers most of them for about a tenth more time (compare the `big_side=0` "
    "sweep row); OpenCV's profile cascade, tried only when nothing else was found, adds a little and costs "
    "nothing on photos with a frontal face.",
    "- facekeypoints' time is almost all face detection (see the first bullet under the tables), and most of "
    "that is the cascade's smallest windows. The default runs the cascade coarse to fine: a pass with scale "
    "steps of 1.2 settles most portraits alone, and the fine pass (steps of 1.1), which the small faces of group "
    "photos need, runs only when the coarse one finds nothing or a small face (compare the `coarse=None` row). "
    "`max_side` sets the floor: 512 keeps every face from 28 px in photos up to 512 px (dlib's group photos) and "
    "from 35 px in a 640x480 frame, near dlib HOG's 40 px at upsample 1; `HaarDetector.fast()` (320 px) is "
    "faster still but loses small faces.",
    "- dlib's NME is optimistic here (its 68-point model was trained on 300-W, AFW and HELEN included). MediaPipe "
    "was never trained on 300-W's landmark definition; its NME includes that definition gap.",
]


def facts(report: dict) -> list[str]:
    """Plain sentences computed from the numbers: where facekeypoints' time goes, and who misses what."""
    summ, out = report["systems"], []
    if FK0 in summ:
        a, b = summ[FK]["small"]["ms_median"], summ[FK0]["small"]["ms_median"]
        model = max(a - b, 0.0)
        out.append(f"- Where facekeypoints' time goes (640x480): one keypoint-model pass costs about {model:.1f} ms "
                   f"(default minus refine=0), so the face detector takes about {max(b - model, 0.0):.0f} of the "
                   f"{a:.0f} ms.")
    if DLIB in summ:
        f_fk = np.array([v is not None for v in summ[FK]["native"]["per_photo_nme"]])
        f_dl = np.array([v is not None for v in summ[DLIB]["native"]["per_photo_nme"]])
        out.append(f"- Faces found by dlib but missed by (default) facekeypoints: {int((f_dl & ~f_fk).sum())}; found by "
                   f"facekeypoints but missed by dlib: {int((f_fk & ~f_dl).sum())}.")
    if MP in summ:
        nf = np.array([np.nan if v is None else v for v in summ[FK]["native"]["per_photo_nme"]], float)
        nm = np.array([np.nan if v is None else v for v in summ[MP]["native"]["per_photo_nme"]], float)
        both = np.isfinite(nf) & np.isfinite(nm)
        if both.any():
            out.append(f"- On the {int(both.sum())} faces both found, (default) facekeypoints is more accurate than MediaPipe "
                       f"on {int((nf[both] < nm[both]).sum())}.")
    return out


def markdown(report: dict) -> str:
    summ, meta = report["systems"], report["meta"]
    L = [
        "# Benchmarks: whole photos, facekeypoints vs dlib vs MediaPipe",
        "",
        f"Generated by `{meta['command']}` on {meta['date']}.",
        f"Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores "
        f"(load average {', '.join(f'{x:.1f}' for x in meta['machine']['load_average_at_start'] or [])} at start; "
        "shared with other jobs, so absolute times are noisy: compare the ratios to dlib, measured photo by photo "
        "in the same run).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
        f"Data: the {meta['faces']} faces of the 300-W validation split (`split_by_group(load_300w(...), 0.15, 0)[1]`, "
        "photo-disjoint from the training photos; AFW and HELEN, each file annotating one face, other people may "
        "appear). Every system gets the whole photo. A system *finds* the labelled face when one of its faces has "
        f"its eye midpoint within {MATCH_RADIUS:g} outer-eye-corner distance of the labelled eye midpoint (the "
        "nearest such face is scored). NME = mean point error over the 15 keypoints / outer-eye-corner distance.",
        "",
        "| system | found | detection rate | NME, faces all found | median NME, all found | >10% NME | "
        "NME, own found | ms / photo (median) | vs dlib | ms / 640x480 photo (median) | vs dlib |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, d in summ.items():
        a, b = d["native"], d["small"]
        L.append(f"| {n} | {a['found']}/{meta['faces']} | {_pct(a['detection_rate'])} | {_nme(a['nme_common'])} "
                 f"| {_nme(a['nme_common_median'])} | {_pct(a['failure_rate_common'])} | {_nme(a['nme_own'])} "
                 f"| {_ms(a['ms_median'])} | {_ratio(a['ms_ratio_vs_dlib'])} | {_ms(b['ms_median'])} "
                 f"| {_ratio(b['ms_ratio_vs_dlib'])} |")
    common = next(iter(summ.values()))["native"]["common_faces"]
    L += [
        "",
        f"Faces found by all systems: {common}. Times cover only the library's work on an already-decoded "
        "BGR image (colour conversion included, file decoding excluded), one thread each "
        "(`OMP_NUM_THREADS=1`, `cv2.setNumThreads(1)`, onnxruntime `threads=1`); medians over all photos, after a "
        "warm-up call. The 640x480 pass letterboxes each photo (aspect kept, black borders); there the systems "
        "find:",
        "",
        "| system | found at 640x480 | NME, all found at 640x480 | NME, own found at 640x480 |",
        "|---|---|---|---|",
    ]
    for n, d in summ.items():
        b = d["small"]
        L.append(f"| {n} | {b['found']}/{meta['faces']} | {_nme(b['nme_common'])} | {_nme(b['nme_own'])} |")
    L += ["", *facts(report), "", "NME per keypoint on the faces all systems found (native photos):", "",
          "| keypoint | " + " | ".join(summ) + " |", "|---|" + "---|" * len(summ)]
    for k in KEYPOINT_NAMES:
        L.append(f"| {k} | " + " | ".join(_nme(d["native"].get("nme_common_per_keypoint", {}).get(k))
                                          for d in summ.values()) + " |")
    L += ["", "## Targets (issue 3)", ""]
    for text, ok, detail in report["targets"]:
        L.append(f"- {'met' if ok else '**not met**'}: {text}: {detail}")
    L += [
        "",
        "## How the peers run",
        "",
        "- **facekeypoints**: `fk.KeypointDetector(threads=1).detect(image)`, default settings (Haar cascade "
        "detector, one refinement pass averaged with its mirror image, detections whose keypoints span under 0.67 "
        "of their box's face dropped); `refine=0` skips the refinement pass (its one pass is still mirror-averaged).",
        "- **dlib**: `dlib.get_frontal_face_detector()` (HOG) with upsample 1 on the RGB image, then "
        "`shape_predictor_68_face_landmarks.dat` (from `face_recognition_models`), mapped to the 15 points with "
        "`facekeypoints.schema.from_ibug68`. Caveat: dlib's 68-point model was trained on iBUG 300-W, whose "
        "training set includes the AFW and HELEN photos used here, so its NME on this data is optimistic.",
        "- **MediaPipe**: legacy `mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=5, "
        "refine_landmarks=True)`; 478 landmarks mapped to the 15 points by `bench/peers/mediapipe_map.py` "
        "(landmark choice made on 300-W *train* faces only by `bench/peers/tune_mediapipe_map.py`, then frozen). "
        "FaceMesh's own detector is the short-range BlazeFace model. Its landmark set differs from the 300-W "
        "definition (e.g. eyebrow ends), which costs it some NME whatever the mapping.",
        "",
        "## Which faces are missed (native photos)",
        "",
        "Yaw proxy: (nose-to-left-outer-eye-corner minus nose-to-right) / their sum, from the labels; abs(yaw) > 0.2 is "
        "a clearly turned face. Size: outer-eye-corner distance in pixels.",
        "",
        "| system | missed | of which abs(yaw) > 0.2 | abs(roll) > 20 deg | iod < 40 px "
        "| median abs(yaw) missed / found | median abs(roll) missed / found | median iod missed / found |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ma = report["misses"]
    for n in summ:
        m = ma[n]

        def pair(a: float | None, b: float | None, fmt: str = "{:.2f}") -> str:
            return f"{'-' if a is None else fmt.format(a)} / {'-' if b is None else fmt.format(b)}"

        L.append(f"| {n} | {m['missed']} | {m['missed_abs_yaw_over_0.2']} | {m['missed_abs_roll_over_20']} "
                 f"| {m['missed_iod_under_40px']} | {pair(m['median_abs_yaw_missed'], m['median_abs_yaw_found'])} "
                 f"| {pair(m['median_abs_roll_missed'], m['median_abs_roll_found'], '{:.1f}')} "
                 f"| {pair(m['median_iod_missed'], m['median_iod_found'], '{:.0f}')} |")
    al = ma["_all_faces"]
    L += ["", f"All {meta['faces']} faces: {al['abs_yaw_over_0.2']} with abs(yaw) > 0.2, {al['abs_roll_over_20']} with "
          f"abs(roll) > 20 deg, {al['iod_under_40px']} with iod<40 px, median iod {al['median_iod_px']:.0f} px."]
    if report.get("haar_sweep"):
        sets = [k for k, v in report["haar_sweep"][0].items() if isinstance(v, dict)]
        sm = report.get("haar_sweep_meta", {})
        L += ["", "## Detector experiments (`--haar-sweep`)", "",
              "facekeypoints with other Haar settings passed as `fk.KeypointDetector(detector=...)` (bench-only "
              "variants in `bench/bench_photos.py`; the train split is where a choice should be made, validation "
              "only confirms it). ms = median per native photo, one thread; every variant runs on each photo in turn, "
              "so the ratio to the default detector (same sweep) is the figure to trust. "
              f"From `{sm.get('command', '?')}` on {sm.get('date', '?')} "
              f"(model {sm.get('versions', {}).get('model_sha256', '?')}).", "",
              "| detector | " + " | ".join(f"{k}: found | {k}: faces/photo | {k}: NME own | {k}: ms (vs default)"
                                           for k in sets) + " | detections on dogs.jpg |",
              "|---|" + "---|---|---|---|" * len(sets) + "---|"]
        for row in report["haar_sweep"]:
            L.append(f"| {row['detector']} | " + " | ".join(
                f"{_pct(row[k]['detection_rate'])} ({row[k]['found']}/{row[k]['faces']}) "
                f"| {row[k]['faces_per_photo']:.2f} | {_nme(row[k]['nme_own'])} "
                f"| {_ms(row[k]['ms_median'])} ({_ratio(row[k].get('ms_vs_default'))})" for k in sets)
                + f" | {row.get('no_face_detections', '-')} |")
    L += ["", "## Reading the results", "", *NOTES]
    L += ["", "Raw numbers (per photo NME and ms for every system): `docs/benchmarks.json`. "
          "How to install the peers and rerun: `bench/README.md`.", ""]
    return "\n".join(L)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_benchmark(args: argparse.Namespace, samples: list[FaceSample]) -> dict:
    """All systems on the validation photos: the report without the detector sweep."""
    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(wanted) - set(SYSTEMS)
    if unknown or FK not in wanted:
        sys.exit(f"bench_photos: --systems must include {FK!r} and name only {SYSTEMS} (got {sorted(unknown)})")
    started = dt.datetime.now().astimezone()
    load = machine()
    peers: dict[str, PeerClient] = {}
    try:
        runners: dict[str, Runner] = {FK: fk_runner(fk.KeypointDetector(threads=1))}
        if FK0 in wanted:
            runners[FK0] = fk_runner(fk.KeypointDetector(refine=0, threads=1))
        for key in filter(None, (k.strip() for k in args.extra_detector.split(";"))):
            label = next((lb for lb in SWEEP if lb.startswith(key)), None)
            if label is None:
                sys.exit(f"bench_photos: --extra-detector {key!r} matches no sweep variant: {list(SWEEP)}")
            runners[f"facekeypoints, detector {label}"] = fk_runner(fk.KeypointDetector(detector=SWEEP[label](), threads=1))
        if DLIB in wanted:
            peers[DLIB] = PeerClient("dlib", args.peer_python)
            runners[DLIB] = peer_runner(peers[DLIB], from_ibug68)
        if MP in wanted:
            peers[MP] = PeerClient("mediapipe", args.peer_python)
            runners[MP] = peer_runner(peers[MP], from_facemesh)
        with tempfile.TemporaryDirectory(prefix="fkp-bench-") as tmp:
            runs = run_all(runners, samples, Path(tmp))
        vers = versions(peers)
    finally:
        for p in peers.values():
            p.close()
    summary = summarise(runs, samples)
    return {
        "meta": {"command": _command(), "date": started.strftime("%Y-%m-%d %H:%M %Z"),
                 "seconds": round((dt.datetime.now().astimezone() - started).total_seconds()),
                 "machine": load, "versions": vers, "faces": len(samples), "match_radius_iod": MATCH_RADIUS,
                 "photos": [str(s.image.relative_to(Path(args.data))) for s in samples]},
        "systems": summary,
        "misses": miss_analysis(summary, samples),
        "targets": targets(summary),
    }


def _command() -> str:
    return ("python bench/bench_photos.py " + shlex.join(sys.argv[1:])).rstrip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="folder holding 300w/")
    ap.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="python of the peers' venv (bench/README.md)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {', '.join(SYSTEMS)}")
    ap.add_argument("--extra-detector", default="", help="also run facekeypoints with these sweep variants "
                    "(';'-separated label prefixes), as extra rows measured against dlib")
    ap.add_argument("--limit", type=int, default=None, help="first N validation faces only (debugging)")
    ap.add_argument("--haar-sweep", action="store_true", help="also measure Haar detector variants (train + val)")
    ap.add_argument("--sweep-only", action="store_true",
                    help="run only the detector sweep and update it in the existing report")
    ap.add_argument("--sweep-configs", default="", help="comma-separated label substrings: run only these "
                    "detector variants (their rows replace the same rows of the last sweep)")
    ap.add_argument("--sweep-train", type=int, default=300, help="train faces (random, seed 0) in the sweep")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the existing JSON")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown output (.json beside it)")
    args = ap.parse_args()

    out = Path(args.out)
    old: dict = {}
    if out.with_suffix(".json").is_file():
        try:
            old = json.loads(out.with_suffix(".json").read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
    if args.render:
        if not old.get("systems"):
            sys.exit(f"bench_photos: --render needs {out.with_suffix('.json')}; run the benchmark first")
        old["targets"] = targets(old["systems"])
        _write_atomic(out, markdown(old))
        _write_atomic(out.with_suffix(".json"), json.dumps(old, indent=1) + "\n")
        print(f"rewrote {out} from {out.with_suffix('.json')}", file=sys.stderr)
        return
    train, val = split_by_group(load_300w(Path(args.data) / "300w"), 0.15, 0)
    samples = val[: args.limit] if args.limit else val
    if args.sweep_only:
        if not old.get("systems"):
            sys.exit(f"bench_photos: --sweep-only updates {out.with_suffix('.json')}; run the benchmark first")
        report = old
    else:
        report = run_benchmark(args, samples)
    if args.haar_sweep or args.sweep_only:
        pick = np.random.default_rng(0).permutation(len(train))[: args.sweep_train]
        print("haar sweep:", file=sys.stderr)
        rows = haar_sweep({"train": [train[i] for i in sorted(pick)], "val": samples},
                          Path(args.data) / "photos" / "dogs.jpg", args.sweep_configs)
        if args.sweep_configs and old.get("haar_sweep"):  # replace those rows, keep the others
            new = {r["detector"]: r for r in rows}
            kept = [new.pop(r["detector"], r) for r in old["haar_sweep"] if r["detector"] in SWEEP]
            rows = kept + list(new.values())
        report["haar_sweep"] = rows
        report["haar_sweep_meta"] = {"command": _command(), "date": dt.datetime.now().astimezone().strftime(
            "%Y-%m-%d %H:%M %Z"), "versions": versions({})}
    elif old.get("haar_sweep"):  # keep the last sweep (slow to redo), labelled with its own run
        report["haar_sweep"], report["haar_sweep_meta"] = old["haar_sweep"], old.get("haar_sweep_meta", {})
    md = markdown(report)
    print(md)
    if not args.no_write:
        _write_atomic(out, md)
        _write_atomic(out.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
        print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
