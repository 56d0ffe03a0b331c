"""fkp video / fkp webcam: track faces and keypoints through a video file or a camera.

Writes an annotated MP4 (-o), per-frame CSV (--csv, one row per face) and JSON
lines (--json, one object per frame), and/or shows a live window (--show).
Ctrl-C stops cleanly: everything processed so far is written and playable.
"""

from __future__ import annotations

import argparse
import sys

from .options import add_points_option, filter_option, points_option


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default=None, metavar="OUT.mp4", help="write the annotated video (mp4v)")
    p.add_argument("--csv", default=None, metavar="FRAMES.csv", help="one row per face per frame (OpenFace style)")
    p.add_argument("--json", default=None, metavar="FRAMES.jsonl", help="one JSON object per frame")
    p.add_argument("--filter", default=None, metavar="NAMES", help="apply filters (comma-separated; see fkp filters)")
    p.add_argument("--smooth", default="oneeuro", choices=("oneeuro", "ema", "none"),
                   help="temporal smoothing of the keypoints (default: oneeuro)")
    p.add_argument("--max-faces", type=int, default=None, metavar="N", help="follow at most N faces (largest first)")
    p.add_argument("--detect-every", type=int, default=30, metavar="N",
                   help="run the face detector every N frames to find new faces (default: 30)")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_points_option(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="track faces and keypoints in a video file or camera", description=__doc__)
    p.add_argument("source", metavar="SOURCE", help="video file, or a camera index such as 0")
    p.add_argument("--show", action="store_true", help="show a live window (q/Esc quits, f or 0-9 pick a filter)")
    _common(p)
    p.set_defaults(func=run)

    w = sub.add_parser("webcam", help="live keypoints from a camera (fkp video 0 --show)",
                       description="Live keypoints from a camera in a window; same as fkp video CAMERA --show.")
    w.add_argument("--camera", type=int, default=0, metavar="N", help="camera index (default: 0)")
    _common(w)
    w.set_defaults(func=run_webcam)


def run_webcam(args: argparse.Namespace) -> int:
    args.source = str(args.camera)
    args.show = True
    return run(args)


def run(args: argparse.Namespace) -> int:
    from ..errors import FkpError
    from ..video.io import run_video
    from ..video.tracker import VideoTracker, video_detector

    if args.max_faces is not None and args.max_faces < 1:
        raise FkpError("--max-faces must be at least 1")
    if args.detect_every < 1:
        raise FkpError("--detect-every must be at least 1")
    filters = filter_option(args.filter)
    points = points_option(args.points)
    detector = video_detector(args.model, points=points) if args.model or points != 15 else None
    tracker = VideoTracker(detector, detect_every=args.detect_every, smooth=args.smooth, max_faces=args.max_faces)
    res = run_video(args.source, tracker, out=args.output, csv_path=args.csv, jsonl=args.json, show=args.show,
                    filters=filters, progress=not args.quiet)
    if not args.quiet:
        what = ", ".join(str(p) for p in res.outputs)
        print(f"{res.frames} frame(s), {res.ids} face id(s), {res.fps:.1f} fps" + (f"; wrote {what}" if what else ""),
              file=sys.stderr)
    if res.interrupted:
        print(f"fkp: interrupted after {res.frames} frame(s); results so far written", file=sys.stderr)
        return 130
    return 0
