"""fkp detect: keypoints for every face in photos, drawn and written as data."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .options import add_points_option, filter_option, int_at_least, one_stdout, points_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find faces and keypoints in photos", description=__doc__)
    p.add_argument("inputs", nargs="+", metavar="PATH", help="image files, folders (recursive) or globs")
    p.add_argument("-o", "--outdir", default=None, metavar="DIR",
                   help="write annotated images here (created if missing; same names as the inputs)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write one JSON array, an object per input ('-' = standard output)")
    p.add_argument("--csv", default=None, metavar="FILE", help="write one CSV row per face ('-' = standard output)")
    p.add_argument("--show", action="store_true", help="show each annotated image in a window")
    p.add_argument("--filter", default=None, metavar="NAMES", help="apply filters (comma-separated; see fkp filters)")
    p.add_argument("--draw-pose", action="store_true",
                   help="draw each face's head axes (red: subject's left, green: up, blue: facing) on the images")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--refine", type=int_at_least(0), default=1, help="re-centred passes per face (0 = one pass)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="average the final pass with its mirror image (one more model pass per face)")
    from ..detection import DEFAULT_DETECTOR, DETECTORS

    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=[n for n in DETECTORS if not n.endswith("-fast")],
                   help=f"face detector: learned (the CNN trained here, docs/detector.md) or haar (the original "
                        f"write-up's cascade) (default: {DEFAULT_DETECTOR})")
    p.add_argument("--fast", action="store_true",
                   help="the detector's fast preset for portraits (haar: HaarDetector.fast(), misses faces under ~48 px "
                        "in a 640 px photo; learned: one pass at 256 px instead of two at 224 and 448)")
    p.add_argument("--workers", type=int_at_least(0), default=1,
                   help="processes over the inputs (0 = one per CPU); output is the same, in input order")
    add_points_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import FkpError, OutputError, UsageError
    from ..fileio import check_output_dir, check_output_file
    from ..photos import expand_inputs, output_name, write_csv, write_json

    filters = filter_option(args.filter)
    if filters and not (args.outdir or args.show):
        raise UsageError("--filter changes only the images written or shown: add -o OUTDIR or --show")
    args.points = points_option(args.points)
    workers = args.workers or os.cpu_count() or 1
    if args.show and workers > 1:
        raise UsageError("--show works with --workers 1 only (one window, one photo at a time)")
    one_stdout(json=args.json, csv=args.csv)
    # every destination is checked before the first photo is read, so no work is lost to a bad path
    if args.outdir:
        check_output_dir(args.outdir)
    if args.json:
        check_output_file(args.json, "--json file", stdout=True)
    if args.csv:
        check_output_file(args.csv, "--csv file", stdout=True)
    if args.show:
        from ..video.display import require_display

        require_display()
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise FkpError("no input images found")
    if args.outdir:
        outdir = Path(args.outdir).resolve()
        clash = next((p for p in inputs if Path(p).exists() and Path(p).resolve().parent == outdir), None)
        if clash is not None:
            raise UsageError(f"{args.outdir}: holds input photos ({clash}); annotated images would overwrite them, "
                             "give another -o")
    workers = min(workers, len(inputs))
    records: list[dict] = []
    unwritten: list[str] = []  # outputs that could not be written, reported with the failures
    used: set[str] = set()
    interrupted = False
    results = _serial(args, inputs, filters) if workers == 1 else _Pool(args, inputs, filters, workers)
    try:
        for path, rec, annotated, part in tqdm(results, total=len(inputs), desc="photos", unit="img",
                                               disable=len(inputs) < 2, file=sys.stderr):
            records.append(rec)
            if args.outdir and (annotated is not None or part is not None):
                final = Path(args.outdir) / output_name(path, used)
                try:
                    if part is not None:
                        try:
                            os.replace(part, final)
                        except OSError as e:
                            Path(part).unlink(missing_ok=True)
                            raise OutputError(final, f"cannot write ({e.strerror or e})") from None
                    else:
                        from ..imageio import write_image_atomic

                        write_image_atomic(final, annotated)
                except OutputError as e:
                    unwritten.append(str(e))
            if annotated is not None and args.show:
                from ..video.display import show

                if not show("fkp detect", annotated):
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the pool, removes half-written images
        unwritten += getattr(results, "unwritten", [])
    for dest, write in ((args.json, write_json), (args.csv, lambda d, r: write_csv(d, r, args.points))):
        if dest:
            try:  # a failure here (disk full...) must not stop the other output
                write(dest, records)
            except OutputError as e:
                unwritten.append(str(e))
    failed = [r for r in records if r["error"]]
    n_faces = sum(len(r["faces"]) for r in records)
    if not (args.json or args.csv or args.outdir or args.show):
        for r in records:
            if not r["error"]:
                print(f"{r['image']}: {len(r['faces'])} face(s)")
    print(f"{len(records) - len(failed)} image(s) processed, {n_faces} face(s)" + (f", {len(failed)} failed:" if failed else ""),
          file=sys.stderr)
    for r in failed:
        print(f"  {r['image']}: {r['error']}", file=sys.stderr)
    for msg in unwritten:
        print(f"fkp: not written: {msg}", file=sys.stderr)
    if interrupted:
        print(f"fkp: interrupted after {len(records)} of {len(inputs)} inputs; results so far written", file=sys.stderr)
        return 130
    return 1 if failed or unwritten else 0


def _detector(model: str | None, refine: int, fast: bool, threads: int | None = None, flip: bool = True,
              points: int = 15, detector: str | None = None):
    from ..detection import DEFAULT_DETECTOR, DETECTORS
    from ..pipeline import KeypointDetector

    name = detector or DEFAULT_DETECTOR
    if fast and f"{name}-fast" in DETECTORS:
        name = f"{name}-fast"
    return KeypointDetector(model, detector=name, refine=refine, threads=threads, flip=flip, points=points)


def _serial(args: argparse.Namespace, inputs: list[str], filters: list[str]) -> Iterator[tuple]:
    """One process: (path, record, annotated image or None, None) per input, in order."""
    from ..photos import process

    det = _detector(args.model, args.refine, args.fast, flip=args.flip, points=args.points,
                    detector=getattr(args, "detector", None))
    for path in inputs:
        rec, annotated = process(det, path, filters, draw_pose=getattr(args, "draw_pose", False))
        yield path, rec, annotated, None


# --- worker pool ---------------------------------------------------------------------------
# Each worker builds its detector once (onnxruntime and OpenCV on one thread each, so N workers
# use N cores), detects a photo and writes its annotated image to a hidden part file in the
# output folder; the parent takes results in input order (imap) and renames each part to the
# name the serial run would give it, so outputs are byte-for-byte those of --workers 1.

_PART = ".fkp-part-{}-{}"
_worker: dict = {}


def _init_worker(model: str | None, refine: int, fast: bool, filters: list[str], outdir: str | None, tag: int,
                 flip: bool = True, draw_pose: bool = False, points: int = 15, detector: str | None = None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    import cv2

    cv2.setNumThreads(1)
    from ..errors import FkpError

    _worker.update(filters=filters, outdir=outdir, tag=tag, error=None, draw_pose=draw_pose)
    try:
        _worker["det"] = _detector(model, refine, fast, threads=1, flip=flip, points=points, detector=detector)
    except FkpError as e:  # reported by the first job: a failing initializer would respawn forever
        _worker["error"] = str(e)


def _work(job: tuple[int, str]) -> tuple[dict, str | None, str | None]:
    from ..errors import FkpError, OutputError
    from ..imageio import write_image_atomic
    from ..photos import output_name, process

    i, path = job
    if _worker["error"]:
        raise FkpError(_worker["error"])
    try:
        rec, annotated = process(_worker["det"], path, _worker["filters"], draw_pose=_worker["draw_pose"])
        part = None
        if annotated is not None and _worker["outdir"]:
            part = Path(_worker["outdir"]) / (_PART.format(_worker["tag"], i) + Path(output_name(path, set())).suffix)
            try:
                write_image_atomic(part, annotated)
            except OutputError as e:  # reported at the end; the batch goes on
                return rec, None, str(e)
    except FkpError as e:
        raise FkpError(str(e)) from None  # plain FkpError pickles back to the parent (InputError does not)
    return rec, None if part is None else str(part), None


class _Pool:
    """Iterator over (path, record, None, part file or None) from a process pool, in input order."""

    def __init__(self, args: argparse.Namespace, inputs: list[str], filters: list[str], workers: int) -> None:
        import multiprocessing as mp

        self.inputs, self.outdir, self.tag = inputs, args.outdir, os.getpid()
        if self.outdir:
            Path(self.outdir).mkdir(parents=True, exist_ok=True)
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")  # no fork of a threaded parent; imports paid once
            ctx.set_forkserver_preload(["facekeypoints.cli.detect", "facekeypoints.pipeline",
                                        "facekeypoints.photos"])
        else:
            ctx = mp.get_context("spawn")
        init = (args.model, args.refine, args.fast, filters, args.outdir, self.tag, args.flip,
                getattr(args, "draw_pose", False), args.points, getattr(args, "detector", None))
        self.pool = ctx.Pool(workers, _init_worker, init)
        self.it = self.pool.imap(_work, enumerate(inputs))
        self.n = 0
        self.unwritten: list[str] = []

    def __iter__(self) -> _Pool:
        return self

    def __next__(self) -> tuple:
        if self.n >= len(self.inputs):
            raise StopIteration
        rec, part, unwritten = next(self.it)
        path = self.inputs[self.n]
        self.n += 1
        if unwritten:
            self.unwritten.append(unwritten)
        return path, rec, None, part

    def close(self) -> None:
        if self.n >= len(self.inputs):
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()
        if self.outdir:
            for f in Path(self.outdir).glob(f"*{_PART.format(self.tag, '')}*"):
                f.unlink(missing_ok=True)
