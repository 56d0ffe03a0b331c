"""fkp video / fkp webcam: track faces and keypoints through a video file or a camera.

Writes an annotated MP4 (-o), per-frame CSV (--csv, one row per face) and JSON
lines (--json, one object per frame), and/or shows a live window (--show).
Ctrl-C stops cleanly: everything processed so far is written and playable.
"""

from __future__ import annotations

import argparse
import sys

from .options import add_points_option, filter_option, int_at_least, one_stdout, points_option


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default=None, metavar="OUT.mp4", help="write the annotated video (mp4v)")
    p.add_argument("--csv", default=None, metavar="FRAMES.csv",
                   help="one row per face per frame, OpenFace style ('-' = standard output)")
    p.add_argument("--json", default=None, metavar="FRAMES.jsonl",
                   help="one JSON object per frame ('-' = standard output)")
    p.add_argument("--filter", default=None, metavar="NAMES", help="apply filters (comma-separated; see fkp filters)")
    p.add_argument("--smooth", default="oneeuro", choices=("oneeuro", "ema", "none"),
                   help="temporal smoothing of the keypoints")
    p.add_argument("--max-faces", type=int_at_least(1), default=None, metavar="N", help="follow at most N faces (largest first)")
    p.add_argument("--detect-every", type=int_at_least(1), default=30, metavar="N",
                   help="run the face detector every N frames to find new faces")
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
    w.add_argument("--camera", type=int_at_least(0), default=0, metavar="N", help="camera index")
    _common(w)
    w.set_defaults(func=run_webcam)


def run_webcam(args: argparse.Namespace) -> int:
    args.source = str(args.camera)
    args.show = True
    return run(args)


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..fileio import check_output_file
    from ..video.io import VIDEO_SUFFIXES, run_video
    from ..video.tracker import VideoTracker, video_detector

    filters = filter_option(args.filter)
    points = points_option(args.points)
    if not (args.output or args.csv or args.json or args.show):
        raise UsageError("nothing to write: give -o OUT.mp4, --csv FILE, --json FILE and/or --show")
    if filters and not (args.output or args.show):
        raise UsageError("--filter changes only the video written or shown: add -o OUT.mp4 or --show")
    one_stdout(json=args.json, csv=args.csv)
    # destinations and the display before the model loads and the source opens
    if args.output:
        check_output_file(args.output, "output video (mp4v)", suffixes=VIDEO_SUFFIXES)
    for path, what in ((args.csv, "--csv file"), (args.json, "--json file")):
        if path:
            check_output_file(path, what, stdout=True)
    if args.show:
        from ..video.display import require_display

        require_display()
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
