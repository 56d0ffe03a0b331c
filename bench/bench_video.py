"""Video benchmark: speed against MediaPipe FaceMesh, jitter, lag and accuracy of tracking.

    python bench/bench_video.py                 # all parts, 5 repeats, prints Markdown tables
    python bench/bench_video.py --repeats 7 --json /tmp/bench_video.json
    python bench/bench_video.py --no-mediapipe  # skip MediaPipe
    python bench/bench_video.py --no-mediapipe --parts speed,cut --detectors learned haar  # the two detectors

Clips are synthesised from real 300-W faces (tests/videos.py) into a temporary folder:
a 640x480 face moving, scaling and rolling (ground truth per frame), and a still face
with sensor-like noise. Speed is the whole loop without display: decode (OpenCV) +
track + keypoints. MediaPipe 0.10.21 needs numpy<2, so it runs in its own venv
(created on first use, ``--mp-venv``) as a subprocess on the same MP4, with runs of
the two interleaved so both see the same load on a shared machine; we report medians
and the median of the per-pair speed ratios. ``--detectors`` runs the tracker's periodic
detection with each named face detector (default: the package's ``DEFAULT_DETECTOR``), each
loop timed in the same interleaved repeats; the ``cut`` part counts the frames the tracker needs
to find the new person after a hard scene cut (tests/videos.py ``cut_clip``, cuts at several
phases of the detection schedule).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import videos  # noqa: E402

from facekeypoints.geometry import frame_from_keypoints  # noqa: E402
from facekeypoints.metrics import interocular, nme_per_face  # noqa: E402
from facekeypoints.schema import INDEX  # noqa: E402
from facekeypoints.video.smoothing import EmaFilter, NoSmoothing, OneEuroFilter  # noqa: E402
from facekeypoints.video.tracker import VideoTracker  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
MP_VERSION = "0.10.21"

# MediaPipe mesh indices for the points whose definition matches ours (subject's left/right):
# outer/inner eye corners, nose tip, mouth corners.
MP_POINTS = {"left_eye_outer_corner": 263, "left_eye_inner_corner": 362, "right_eye_outer_corner": 33,
             "right_eye_inner_corner": 133, "nose_tip": 1, "mouth_left_corner": 291, "mouth_right_corner": 61}

MP_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import cv2, numpy as np
    import mediapipe as mp
    path, record = sys.argv[1], sys.argv[2] == "1"
    idx = json.loads(sys.argv[3])
    cap = cv2.VideoCapture(path)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False)
    pts, n, found = [], 0, 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        res = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        n += 1
        if res.multi_face_landmarks:
            found += 1
            if record:
                lm = res.multi_face_landmarks[0].landmark
                h, w = frame.shape[:2]
                pts.append([[lm[i].x * w, lm[i].y * h] for i in idx])
        elif record:
            pts.append([[float("nan")] * 2] * len(idx))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"frames": n, "found": found, "wall": wall, "cpu": cpu, "points": pts if record else None}))
""")


# -- helpers ---------------------------------------------------------------------------------------------

def jitter(kps: np.ndarray) -> float:
    """Mean frame-to-frame keypoint movement (px)."""
    return float(np.nanmean(np.linalg.norm(np.diff(kps, axis=0), axis=-1)))


def lag_frames(pred: np.ndarray, truth: np.ndarray, skip: int = 10) -> float:
    """Time shift d (frames, 0.05 steps) that best aligns pred(t) with truth(t - d).

    Against ground truth the estimate also absorbs the model's pose-dependent bias (detect-every-frame,
    which has no delay, shows it); against the raw tracked trajectory it is the smoother's own delay."""
    n = len(truth)
    t = np.arange(n, dtype=np.float64)
    flat = truth.reshape(n, -1)
    best = (0.0, np.inf)
    for d in np.arange(-2.0, 8.0001, 0.05):
        shifted = np.stack([np.interp(t - d, t, flat[:, k]) for k in range(flat.shape[1])], -1).reshape(truth.shape)
        e = float(np.nanmean(np.linalg.norm(pred[skip:] - shifted[skip:], axis=-1)))
        if e < best[1]:
            best = (float(d), e)
    return best[0]


def smooth_offline(raw: np.ndarray, fps: float, make) -> np.ndarray:
    """Apply a smoother to a raw trajectory (the tracker's own smoothing does exactly this per track);
    NaN frames (no face) pass through and reset the filter, as a lost track does."""
    f = make()
    out = []
    for i, k in enumerate(raw):
        if np.isnan(k).any():
            f.reset()
            out.append(k)
        else:
            out.append(f(k, i / fps, frame_from_keypoints(k).side))
    return np.array(out)


SMOOTHERS = {"none": NoSmoothing, "oneeuro": OneEuroFilter, "ema": EmaFilter}


def nearest(faces, truth: np.ndarray | None) -> np.ndarray:
    """Keypoints of the face whose centre is nearest the ground truth (the first face without truth)."""
    if not faces:
        return np.full((15, 2), np.nan, np.float32)
    if truth is None:
        return faces[0].keypoints
    c = truth.mean(0)
    return min(faces, key=lambda f: float(np.hypot(*(f.keypoints.mean(0) - c)))).keypoints


def track(frames: list[np.ndarray], fps: float, truth: np.ndarray | None = None, **kw) -> tuple[np.ndarray, VideoTracker]:
    """(N, 15, 2) keypoints per frame of the tracked face nearest the truth (NaN where none)."""
    tr = VideoTracker(**kw)
    out = [nearest(tr.update(f, i / fps), None if truth is None else truth[i]) for i, f in enumerate(frames)]
    return np.array(out), tr


def tracker_for(detector: str | None, **kw) -> VideoTracker:
    """A VideoTracker whose periodic detection runs ``detector`` (None: the package default)."""
    from facekeypoints.video.tracker import video_detector

    return VideoTracker(video_detector(detector=detector) if detector else None, **kw)


def timed_loop(path: Path, detector: str | None = None, **kw) -> dict:
    """Decode + track + keypoints over a file; wall and CPU seconds."""
    tr = tracker_for(detector, **kw)
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    n = found = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        found += bool(tr.update(frame, n / fps))
        n += 1
    return {"frames": n, "found": found, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
            "stats": dict(tr.stats)}


def timed_detect_every_frame(path: Path, detector, limit: int) -> dict:
    cap = cv2.VideoCapture(str(path))
    n = 0
    t0 = time.perf_counter()
    while n < limit:
        ok, frame = cap.read()
        if not ok:
            break
        detector.detect(frame)
        n += 1
    return {"frames": n, "wall": time.perf_counter() - t0}


def timed_decode(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    n = 0
    t0 = time.perf_counter()
    while cap.read()[0]:
        n += 1
    return n / (time.perf_counter() - t0)


def ensure_mediapipe(venv: Path) -> tuple[Path | None, str]:
    """The venv's python if mediapipe imports there (installing it on first use), else (None, why)."""
    py = venv / "bin" / "python"
    check = [str(py), "-c", "import mediapipe, numpy; print(mediapipe.__version__, numpy.__version__)"]
    if py.exists():
        r = subprocess.run(check, capture_output=True, text=True)
        if r.returncode == 0:
            return py, r.stdout.strip()
    print(f"installing mediapipe=={MP_VERSION} into {venv} (numpy<2) ...", file=sys.stderr)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(py), "-m", "pip", "install", "-q", f"mediapipe=={MP_VERSION}", "opencv-python-headless<5", "numpy<2"]]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            return None, f"could not install mediapipe=={MP_VERSION}: {last}"
    r = subprocess.run(check, capture_output=True, text=True)
    return (py, r.stdout.strip()) if r.returncode == 0 else (None, f"mediapipe does not import: {r.stderr[-200:]}")


def run_mediapipe(py: Path, path: Path, record: bool = False) -> dict:
    r = subprocess.run([str(py), "-c", MP_SCRIPT, str(path), "1" if record else "0", json.dumps(list(MP_POINTS.values()))],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"mediapipe run failed: {r.stderr[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))


# -- the parts ---------------------------------------------------------------------------------------------

def bench_speed(tmp: Path, args, mp_py: Path | None) -> dict:
    clip = videos.moving_clip(DATA, args.frames)
    path = videos.write_video(clip, tmp / "speed.mp4")
    names = args.detectors or [None]
    ours, mp, ratios, ours_cpu, mp_cpu = [], [], [], [], []
    others: dict[str, dict] = {n: {"fps": [], "cpu_fps": []} for n in names[1:]}
    for n in names:
        timed_loop(path, n)  # warm caches (model file, cascade, codec)
    for rep in range(args.repeats):
        a = timed_loop(path, names[0])
        ours.append(a["frames"] / a["wall"])
        ours_cpu.append(a["frames"] / a["cpu"])
        for n in names[1:]:
            o = timed_loop(path, n)
            others[n]["fps"].append(o["frames"] / o["wall"])
            others[n]["cpu_fps"].append(o["frames"] / o["cpu"])
            others[n].update(stats=o["stats"], found=o["found"])
        if mp_py is not None:
            m = run_mediapipe(mp_py, path)
            mp.append(m["frames"] / m["wall"])
            mp_cpu.append(m["frames"] / m["cpu"])
            ratios.append(ours[-1] / mp[-1])
        print(f"  speed repeat {rep + 1}: ours {ours[-1]:.0f} fps"
              + "".join(f", {n} {o['fps'][-1]:.0f} fps" for n, o in others.items())
              + (f", mediapipe {mp[-1]:.0f} fps" if mp else ""), file=sys.stderr)
    from facekeypoints.detection import DEFAULT_DETECTOR
    from facekeypoints.video.tracker import video_detector

    det = video_detector(detector=names[0])
    d = timed_detect_every_frame(path, det, min(args.frames, 90))
    dec = [timed_decode(path) for _ in range(3)]
    res = {"clip_frames": args.frames, "detector": names[0] or DEFAULT_DETECTOR, "ours_fps": ours,
           "ours_cpu_fps": ours_cpu, "ours_stats": a["stats"], "ours_found": a["found"], "others": others,
           "decode_fps": med(dec), "detect_every_frame_fps": d["frames"] / d["wall"]}
    if mp_py is not None:
        res.update(mediapipe_fps=mp, mediapipe_cpu_fps=mp_cpu, ratio=ratios, mediapipe_found=m["found"])
    return res


def bench_cut(args) -> dict:
    """Frames from a hard scene cut until the tracker reports the new person (keypoints within NME
    0.1 of them), per detector, for cuts at several phases of the detection schedule."""
    from facekeypoints.detection import DEFAULT_DETECTOR

    out = {}
    for name in args.detectors or [None]:
        delays = []
        for cut in (30, 37, 44, 51, 58):
            clip = videos.cut_clip(DATA, cut + 30, cut=cut)
            tr = tracker_for(name, smooth="none")
            delay = None
            for i, f in enumerate(clip.frames()):
                faces = tr.update(f, i / clip.fps)
                if i >= cut and delay is None and any(nme_per_face(x.keypoints, clip.truth(i)[0]) < 0.1 for x in faces):
                    delay = i - cut
            delays.append(delay)
        out[name or DEFAULT_DETECTOR] = delays
        print(f"  cut {name or DEFAULT_DETECTOR}: frames to re-find {delays}", file=sys.stderr)
    return out


def bench_jitter(tmp: Path, args, mp_py: Path | None) -> dict:
    clip = videos.still_clip(DATA, args.still_frames, noise=args.noise)
    frames = clip.frames()
    raw, _ = track(frames, clip.fps, smooth="none")
    iod = float(interocular(clip.truth(0)[0]))
    out = {"noise_sigma": args.noise, "iod_px": iod, "frames": len(frames)}
    for name, make in SMOOTHERS.items():
        s = smooth_offline(raw, clip.fps, make)
        out[name] = jitter(s)
    # the tracker's built-in smoothing gives the same numbers (checked here, not assumed)
    out["oneeuro_in_tracker"] = jitter(track(frames, clip.fps, smooth="oneeuro")[0])
    if mp_py is not None:
        path = videos.write_video(frames, tmp / "still.mp4")
        ours_enc = track(_read(path), clip.fps, smooth="none")[0]
        m = np.array(run_mediapipe(mp_py, path, record=True)["points"], np.float64)
        idx = [INDEX[n] for n in MP_POINTS]
        out["mp4_none_7pts"] = jitter(ours_enc[:, idx])
        out["mp4_oneeuro_7pts"] = jitter(smooth_offline(ours_enc, clip.fps, OneEuroFilter)[:, idx])
        out["mediapipe_7pts"] = jitter(m)
    return out


def _read(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(f)


def bench_motion(args) -> dict:
    """Accuracy (tracking vs detect-every-frame) and lag on moving clips: 3 people x 2 speeds."""
    from facekeypoints.video.tracker import video_detector

    det = video_detector()
    rows = []
    for face in range(3):
        for speed in (0.5, 1.0):
            clip = videos.moving_clip(DATA, args.motion_frames, face=face, speed=speed)
            frames = clip.frames()
            truth = np.array([clip.truth(i)[0] for i in range(len(clip))])
            raw, tr = track(frames, clip.fps, truth, smooth="none")
            dets = np.array([nearest(det.detect(f), truth[i]) for i, f in enumerate(frames)])
            step = np.linalg.norm(np.diff(truth, axis=0), axis=-1).mean()
            both = ~np.isnan(dets).any((1, 2)) & ~np.isnan(raw).any((1, 2))  # compare on the same frames
            row = {"face": face, "speed": speed, "px_per_frame": float(step), "frames": len(frames),
                   "nme_detect": float(nme_per_face(dets[both], truth[both]).mean()),
                   "detect_missed": int(np.isnan(dets).any((1, 2)).sum()),
                   "track_missed": int(np.isnan(raw).any((1, 2)).sum())}
            for name, make in SMOOTHERS.items():
                s = smooth_offline(raw, clip.fps, make) if name != "none" else raw
                row[f"nme_{name}"] = float(nme_per_face(s[both], truth[both]).mean())
                row[f"lag_{name}"] = lag_frames(s, truth)
                row[f"filter_lag_{name}"] = lag_frames(s, raw)  # the smoother's own delay, model bias removed
            row["lag_detect"] = lag_frames(dets, truth)
            rows.append(row)
            print(f"  motion face {face} speed {speed}: track {row['nme_none']:.4f} detect {row['nme_detect']:.4f}",
                  file=sys.stderr)
            clip._frames = None
    return {"rows": rows}


# -- report ---------------------------------------------------------------------------------------------------

def report(res: dict, mp_note: str) -> str:
    s = res["speed"]
    lines = ["### Speed (640x480, single face, decode + track + keypoints, no display)", "",
             f"Clip: {s['clip_frames']} frames; {len(s['ours_fps'])} interleaved repeats; median (min-max).", "",
             "| pipeline | FPS (wall clock) | ms/frame | frames per CPU-second (all threads) |", "|---|---|---|---|"]

    def row(name, xs, cpu):
        return (f"| {name} | {med(xs):.0f} ({min(xs):.0f}-{max(xs):.0f}) | {1000 / med(xs):.2f} | "
                f"{med(cpu):.0f} |")

    lines.append(row(f"facekeypoints VideoTracker (oneeuro, {s.get('detector', 'default')} detector)", s["ours_fps"],
                     s["ours_cpu_fps"]))
    for n, o in s.get("others", {}).items():
        lines.append(row(f"facekeypoints VideoTracker (oneeuro, {n} detector)", o["fps"], o["cpu_fps"]))
    if "mediapipe_fps" in s:
        lines.append(row(f"MediaPipe FaceMesh {MP_VERSION}, static_image_mode=False", s["mediapipe_fps"],
                         s["mediapipe_cpu_fps"]))
    lines.append(f"| facekeypoints detect every frame ({s.get('detector', 'default')} + keypoints) | "
                 f"{s['detect_every_frame_fps']:.0f} | "
                 f"{1000 / s['detect_every_frame_fps']:.2f} | |")
    lines.append(f"| decode only (OpenCV, mp4v) | {s['decode_fps']:.0f} | {1000 / s['decode_fps']:.2f} | |")
    lines.append("")
    if "ratio" in s:
        lines.append(f"Speed ratio facekeypoints / MediaPipe (median of per-repeat ratios): **{med(s['ratio']):.2f}x** "
                     f"(range {min(s['ratio']):.2f}-{max(s['ratio']):.2f}). Faces found: ours "
                     f"{s['ours_found']}/{s['clip_frames']}, MediaPipe {s['mediapipe_found']}/{s['clip_frames']}.")
    else:
        lines.append(f"MediaPipe not measured: {mp_note}")
    lines.append(f"Tracker work per run: {s['ours_stats']}")
    j = res["jitter"]
    lines += ["", f"### Jitter (still face, IOD {j['iod_px']:.0f} px, Gaussian sensor noise sigma={j['noise_sigma']:g}, "
              f"{j['frames']} frames)", "",
              "| smoothing | mean frame-to-frame movement (px) | % of IOD | reduction |", "|---|---|---|---|"]
    for name in ("none", "ema", "oneeuro"):
        lines.append(f"| {name} | {j[name]:.3f} | {100 * j[name] / j['iod_px']:.2f} | {j['none'] / j[name]:.1f}x |")
    lines.append(f"| oneeuro inside VideoTracker | {j['oneeuro_in_tracker']:.3f} | "
                 f"{100 * j['oneeuro_in_tracker'] / j['iod_px']:.2f} | {j['none'] / j['oneeuro_in_tracker']:.1f}x |")
    if "mediapipe_7pts" in j:
        lines += ["", "Same clip through mp4v, on the 7 points MediaPipe's mesh defines alike (eye corners, nose tip, "
                  f"mouth corners): ours raw {j['mp4_none_7pts']:.3f} px, ours One Euro {j['mp4_oneeuro_7pts']:.3f} px, "
                  f"MediaPipe FaceMesh {j['mediapipe_7pts']:.3f} px per frame."]
    m = res["motion"]["rows"]
    lines += ["", "### Accuracy and lag on moving clips (NME = mean error / outer-eye-corner distance)", "",
              "| face | speed (px/frame) | frames without a face: detect / track | NME detect every frame | "
              "NME tracking (raw) | tracking / detect | NME oneeuro | NME ema |",
              "|---|---|---|---|---|---|---|---|"]
    for r in m:
        lines.append(f"| {r['face']} | {r['px_per_frame']:.1f} | {r['detect_missed']} / {r['track_missed']} of {r['frames']} | "
                     f"{r['nme_detect']:.4f} | {r['nme_none']:.4f} | "
                     f"{r['nme_none'] / r['nme_detect']:.3f} | {r['nme_oneeuro']:.4f} | {r['nme_ema']:.4f} |")
    lines += ["", "Lag in frames (time shift that best aligns the trajectory with the reference):", "",
              "| face | speed (px/frame) | vs truth: detect every frame | raw tracking | oneeuro | ema 3 Hz | "
              "vs raw tracking: oneeuro | ema 3 Hz |", "|---|---|---|---|---|---|---|---|"]
    for r in m:
        lines.append(f"| {r['face']} | {r['px_per_frame']:.1f} | {r['lag_detect']:.2f} | {r['lag_none']:.2f} | "
                     f"{r['lag_oneeuro']:.2f} | {r['lag_ema']:.2f} | {r['filter_lag_oneeuro']:.2f} | "
                     f"{r['filter_lag_ema']:.2f} |")
    ratios = [r["nme_none"] / r["nme_detect"] for r in m]
    lines += ["", f"Tracking/detect NME ratio: median {med(ratios):.3f}, worst {max(ratios):.3f} (goal <= 1.10). "
              f"One Euro vs raw tracking NME: median {med([r['nme_oneeuro'] / r['nme_none'] for r in m]):.3f}x. "
              f"Smoother delay (vs raw tracking, median): One Euro {med([r['filter_lag_oneeuro'] for r in m]):.2f} "
              f"frames, EMA 3 Hz {med([r['filter_lag_ema'] for r in m]):.2f} frames."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=300, help="frames of the speed clip")
    ap.add_argument("--still-frames", type=int, default=150)
    ap.add_argument("--motion-frames", type=int, default=150)
    ap.add_argument("--noise", type=float, default=6.0, help="sensor noise sigma (grey levels) of the still clip")
    ap.add_argument("--mp-venv", type=Path, default=Path("/tmp/mpvenv"))
    ap.add_argument("--no-mediapipe", action="store_true")
    ap.add_argument("--parts", default="speed,jitter,motion")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    ap.add_argument("--detectors", nargs="+", default=None,
                    help="face detectors for the tracker's periodic detection (speed and cut parts; default: the package default)")
    args = ap.parse_args()
    if not (DATA / "300w").is_dir():
        print(f"real face data not found at {DATA}", file=sys.stderr)
        return 1
    mp_py, mp_note = (None, "skipped (--no-mediapipe)") if args.no_mediapipe else ensure_mediapipe(args.mp_venv)
    print(f"mediapipe: {mp_note}", file=sys.stderr)
    parts = set(args.parts.split(","))
    res: dict = {"mediapipe": mp_note}
    with tempfile.TemporaryDirectory() as tmp:
        if "speed" in parts:
            res["speed"] = bench_speed(Path(tmp), args, mp_py)
        if "jitter" in parts:
            res["jitter"] = bench_jitter(Path(tmp), args, mp_py)
        if "motion" in parts:
            res["motion"] = bench_motion(args)
        if "cut" in parts:
            res["cut"] = bench_cut(args)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    if parts >= {"speed", "jitter", "motion"}:
        print(report(res, mp_note))
        if "cut" in res:
            print("\nFrames from a hard scene cut to the new person found (cuts at frames 30-58): "
                  + "; ".join(f"{n}: {d}" for n, d in res["cut"].items()))
    else:
        print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
