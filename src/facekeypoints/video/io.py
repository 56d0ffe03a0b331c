"""Video in and out for ``fkp video``/``fkp webcam``: sources, per-frame outputs, the main loop.

Outputs are written to temporary names and renamed when the run ends, however it
ends (end of file, q/Esc, Ctrl-C, a decoding error): the MP4 is finalised by
releasing the writer (so it is playable) and the CSV/JSONL hold every frame
processed, each frame's rows written in a single call so no row is ever cut.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import FkpError, InputError, OutputError, UsageError
from ..photos import USE_COLUMNS
from ..schema import KAGGLE_COLUMNS, LANDMARK_COLUMNS, NUM_LANDMARKS, to_points15

#: After the keypoints: head pose in degrees, then eye and mouth aspect ratios (empty without 68
#: landmarks; a blink is a dip in the eye columns).
CSV_HEADER = ["frame", "timestamp", "face_id", "box_x0", "box_y0", "box_x1", "box_y1", "score"] + list(
    KAGGLE_COLUMNS) + USE_COLUMNS


def _use_cells(face) -> list[str]:
    """The USE_COLUMNS cells of a face ("" where not available or not finite)."""
    pose = getattr(face, "pose", None)
    opened = getattr(face, "openness", None)
    vals = [*(pose if pose is not None else (math.nan,) * 3), *(opened if opened is not None else (math.nan,) * 3)]
    return ["" if not math.isfinite(v) else f"{v:.2f}" if i < 3 else f"{v:.4f}" for i, v in enumerate(vals)]


def parse_source(source: str | int) -> str | int:
    """A camera index (``"0"``) unless a file of that name exists; else the path."""
    if isinstance(source, int):
        return source
    s = str(source).strip()
    if s.isdigit() and not Path(s).exists():
        return int(s)
    return s


@dataclass
class Source:
    """An opened video file or camera."""

    cap: cv2.VideoCapture
    name: str
    is_camera: bool
    fps: float
    frame_count: int  # 0 when unknown (cameras, some streams)
    width: int
    height: int


@contextmanager
def _quiet_opencv():
    """Silence OpenCV's own warnings (e.g. a missing camera) so the user sees one clear line."""
    try:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # very old builds
        level = None
    try:
        yield
    finally:
        if level is not None:
            cv2.utils.logging.setLogLevel(level)


def open_source(source: str | int) -> Source:
    """Open a file or camera index; a one-line FkpError when it cannot be read."""
    src = parse_source(source)
    # FFmpeg's own decoder messages ("overread 8", ...) would bury our one-line warning; users can override.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if isinstance(src, int):
        with _quiet_opencv():
            cap = cv2.VideoCapture(src)
            ok = cap.isOpened()
        if not ok:
            cap.release()
            raise FkpError(f"camera {src} not found or busy (no video device with that index could be opened)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        return Source(cap, f"camera {src}", True, fps if 1 <= fps <= 240 else 30.0, 0,
                      int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    p = Path(src)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory, not a video")
    if p.stat().st_size == 0:
        raise InputError(p, "empty file (0 bytes)")
    with _quiet_opencv():
        cap = cv2.VideoCapture(str(p))
        ok = cap.isOpened()
    if not ok:
        cap.release()
        raise InputError(p, "not a readable video (unknown format, or corrupt/truncated beyond repair)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return Source(cap, str(p), False, fps if 1 <= fps <= 1000 else 30.0, max(n, 0),
                  int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))


def _partial(path: Path) -> Path:
    """A unique temporary sibling (two runs writing the same output never share it) that keeps the
    extension, from which OpenCV picks the container."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    os.close(fd)
    return Path(name)


VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")


class Outputs:
    """MP4 / CSV / JSONL outputs, written under temporary names and renamed by :meth:`close`.

    Every destination is checked before anything is written (a one-line
    :class:`~facekeypoints.errors.OutputError`); ``-`` sends the CSV or JSONL to standard output.
    """

    def __init__(self, video: str | os.PathLike | None, csv_path: str | os.PathLike | None,
                 jsonl: str | os.PathLike | None, fps: float, points: int = 15) -> None:
        from ..fileio import check_output_file

        self.fps = fps
        self.points = points
        self.problems: list[tuple[Path, str]] = []  # outputs that could not be finalised, filled by close()
        self.video_path = Path(video) if video else None
        self.csv_path = Path(csv_path) if csv_path else None
        self.jsonl_path = Path(jsonl) if jsonl else None
        if self.video_path is not None:
            check_output_file(self.video_path, "output video (mp4v)", suffixes=VIDEO_SUFFIXES)
        if str(csv_path) == "-" and str(jsonl) == "-":
            raise UsageError("only one of the CSV and the JSON lines can go to standard output ('-')")
        for p, what in ((self.csv_path, "CSV file"), (self.jsonl_path, "JSON lines file")):
            if p is not None:
                check_output_file(p, what, stdout=True)
        self._writer: cv2.VideoWriter | None = None
        self._tmp: dict[Path, Path] = {}  # final name -> temporary file
        self._csv = self._jsonl = None
        try:
            self._csv = self._open(self.csv_path, newline="")
            self._jsonl = self._open(self.jsonl_path)
            if self.video_path is not None:
                self._tmp[self.video_path] = _partial(self.video_path)
        except OSError as e:
            self.close()
            raise OutputError(e.filename or "output", f"cannot write ({e.strerror or e})") from None
        if self._csv is not None:
            header = CSV_HEADER + (list(LANDMARK_COLUMNS) if points == NUM_LANDMARKS else [])
            self._csv.write(",".join(header) + "\r\n")
        self.frames = 0

    def _open(self, path: Path | None, newline: str | None = None):
        if path is None:
            return None
        if str(path) == "-":
            return sys.stdout
        self._tmp[path] = tmp = _partial(path)
        return open(tmp, "w", newline=newline)  # noqa: SIM115

    def write(self, index: int, timestamp: float, faces: Sequence, image: np.ndarray | None) -> None:
        """One frame: its rows/object (built first, then written in one call) and its picture."""
        if self._csv is not None:
            buf = io.StringIO()
            w = csv.writer(buf)
            for f in faces:
                kp = np.asarray(to_points15(f.keypoints), np.float64).reshape(-1)
                extra: list[str] = []
                if self.points == NUM_LANDMARKS:
                    lm = np.asarray(f.keypoints, np.float64)
                    extra = ([f"{v:.2f}" for v in lm.reshape(-1)] if lm.shape == (NUM_LANDMARKS, 2)
                             else [""] * len(LANDMARK_COLUMNS))
                w.writerow([index, f"{timestamp:.4f}", "" if f.id is None else f.id,
                            *(f"{v:.2f}" for v in f.box), "" if f.score is None else f"{f.score:.4f}",
                            *(f"{v:.2f}" for v in kp), *_use_cells(f), *extra])
            self._csv.write(buf.getvalue())
        if self._jsonl is not None:
            rec = {"frame": index, "timestamp": round(timestamp, 4), "faces": [f.to_dict() for f in faces]}
            self._jsonl.write(json.dumps(rec) + "\n")
        if self.video_path is not None and image is not None:
            if self._writer is None:
                h, w = image.shape[:2]
                self._writer = cv2.VideoWriter(str(self._tmp[self.video_path]), cv2.VideoWriter_fourcc(*"mp4v"),
                                               self.fps, (w, h))
                if not self._writer.isOpened():
                    raise FkpError(f"{self.video_path}: OpenCV cannot write mp4v video here")
            self._writer.write(image)
        self.frames += 1

    def close(self) -> list[Path]:
        """Finalise and rename every output; returns the paths written. Never raises (it runs while
        another error may be on its way out): what could not be finalised is removed and listed in
        :attr:`problems`."""
        done = []
        if self._writer is not None:
            if self._writer.isOpened():
                self._writer.release()
                self._rename(self.video_path, done)
            else:
                self._writer.release()
            self._writer = None
        for fh, path in ((self._csv, self.csv_path), (self._jsonl, self.jsonl_path)):
            if fh is sys.stdout:
                fh.flush()
            elif fh is not None:
                try:
                    fh.close()
                except OSError as e:
                    self.problems.append((path, f"cannot write ({e.strerror or e})"))
                else:
                    self._rename(path, done)
        self._csv = self._jsonl = None
        for tmp in self._tmp.values():  # an output never started (no frame) or not finalised
            tmp.unlink(missing_ok=True)
        self._tmp.clear()
        return done

    def _rename(self, path: Path, done: list[Path]) -> None:
        tmp = self._tmp.pop(path)
        try:
            os.replace(tmp, path)
            done.append(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            self.problems.append((path, f"cannot write ({e.strerror or e})"))


@contextmanager
def graceful_interrupt():
    """Turn the first Ctrl-C (or SIGTERM) into a flag the loop checks, so outputs are finalised;
    a second Ctrl-C interrupts at once."""
    state = {"stop": False}

    def handler(signum, frame):  # noqa: ARG001
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield state
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


@dataclass
class RunResult:
    frames: int
    faces: int  # face detections summed over frames
    ids: int  # distinct face ids seen
    seconds: float
    interrupted: bool
    truncated: bool
    outputs: list[Path]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def filter_names() -> list[str]:
    """Names of the live filters (empty when the filters module is not installed)."""
    try:
        from ..filters import FILTERS
    except ImportError:
        return []
    return [f if isinstance(f, str) else str(getattr(f, "name", f)) for f in FILTERS]


def run_video(source: str | int, tracker, out: str | None = None, csv_path: str | None = None,
              jsonl: str | None = None, show: bool = False, filters: Sequence[str] = (),
              progress: bool = True, warn: Callable[[str], None] | None = None) -> RunResult:
    """Track faces through a file or camera, writing the outputs asked for; see ``fkp video``."""
    warn = warn or (lambda msg: print(f"fkp: warning: {msg}", file=sys.stderr))
    if show:
        from .display import require_display

        require_display()
    filters = list(filters)
    if filters:
        from ..filters import check_filter_names

        check_filter_names(filters)
    from ..fileio import check_output_file

    if out:  # destinations first (before a camera is opened), then the source
        check_output_file(out, "output video (mp4v)", suffixes=VIDEO_SUFFIXES)
    src = open_source(source)
    try:
        outputs = Outputs(out, csv_path, jsonl, src.fps, getattr(tracker, "points", 15))
    except BaseException:
        src.cap.release()
        raise
    bar = None
    if progress and not src.is_camera:
        from tqdm import tqdm

        bar = tqdm(total=src.frame_count or None, desc=Path(src.name).name, unit="frame", file=sys.stderr,
                   dynamic_ncols=True, mininterval=0.5)
    live = LiveView(filters) if show else None
    index = n_faces = 0
    ids: set[int] = set()
    interrupted = truncated = False
    t_start = time.perf_counter()
    try:
        with graceful_interrupt() as state:
            while not state["stop"]:
                try:
                    ok, frame = src.cap.read()
                except cv2.error:
                    ok, frame = False, None
                if not ok or frame is None:
                    break
                ts = time.perf_counter() - t_start if src.is_camera else index / src.fps
                faces = tracker.update(frame, ts)
                n_faces += len(faces)
                ids.update(f.id for f in faces if f.id is not None)
                active = live.filters if live is not None else filters
                image = None
                if outputs.video_path is not None or live is not None:
                    image = _render(frame, faces, active)
                outputs.write(index, ts, faces, image)
                index += 1
                if bar is not None:
                    bar.update(1)
                if live is not None and not live.show(image):
                    break
            interrupted = state["stop"]
    finally:
        if bar is not None:
            bar.close()
        src.cap.release()
        if live is not None:
            live.close()
        written = outputs.close()
    seconds = time.perf_counter() - t_start
    if outputs.problems:
        raise OutputError(*outputs.problems[0])
    if index == 0 and not interrupted:
        for p in written:
            p.unlink(missing_ok=True)
        raise InputError(src.name, "no frames received from the camera" if src.is_camera
                         else "no frame could be decoded (corrupt or unsupported video)")
    # Some containers only estimate their frame count: allow a small shortfall before calling it truncated.
    if not src.is_camera and not interrupted and src.frame_count and \
            index < src.frame_count - max(2, int(0.01 * src.frame_count)):
        truncated = True
        warn(f"{src.name}: video ended after {index} of {src.frame_count} frames (truncated or corrupt); "
             f"wrote the {index} frames decoded")
    return RunResult(index, n_faces, len(ids), seconds, interrupted, truncated, written)


def _render(frame: np.ndarray, faces: Sequence, filters: Sequence[str]) -> np.ndarray:
    if filters:
        from ..filters import apply_filter

        return apply_filter(frame, faces, list(filters))
    from ..drawing import draw

    return draw(frame, faces)


class LiveView:
    """The --show window: overlay, FPS counter, q/Esc to quit, 0-9 or f to pick a filter."""

    TITLE = "fkp video (q/Esc: quit, f or 0-9: filters)"

    def __init__(self, filters: Sequence[str]) -> None:
        self.names = filter_names()
        self.filters = list(filters)
        self._last = time.perf_counter()
        self._fps = 0.0

    def show(self, image: np.ndarray) -> bool:
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        if dt > 0:
            self._fps = 1 / dt if self._fps == 0 else 0.9 * self._fps + 0.1 / dt
        label = f"{self._fps:5.1f} fps" + (f"  [{'+'.join(self.filters)}]" if self.filters else "")
        view = image.copy()
        cv2.putText(view, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(view, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.imshow(self.TITLE, view)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        if ord("0") <= key <= ord("9"):
            k = key - ord("0")
            self.filters = [self.names[k - 1]] if 0 < k <= len(self.names) else []
        elif key == ord("f") and self.names:
            cur = self.names.index(self.filters[0]) if self.filters and self.filters[0] in self.names else -1
            self.filters = [] if cur + 1 >= len(self.names) else [self.names[cur + 1]]
        return True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.TITLE)
            cv2.waitKey(1)
        except cv2.error:
            pass
