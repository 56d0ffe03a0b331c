"""Synthetic test clips made from real, labelled 300-W faces.

A 300-W photo is warped into a 640x480 canvas by a similarity transform that
changes over time (move, scale, roll); its 15 labelled keypoints go through the
same transform, so every frame has exact ground truth. The face is blended in
with a soft elliptical mask over a smooth background, so there is no hard
photo edge. Frames are rendered on demand (a 300-frame clip needs no RAM).

Used by tests/test_video.py and bench/bench_video.py (via sys.path). Clips are
written to temporary folders only, never into the repository.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facekeypoints.schema import INDEX
from facekeypoints.training.data.landmarks import FaceSample, load_300w

W, H = 640, 480
FPS = 30.0

_LE, _RE, _NOSE = INDEX["left_eye_center"], INDEX["right_eye_center"], INDEX["nose_tip"]
_MOUTH = [INDEX["mouth_left_corner"], INDEX["mouth_right_corner"]]

#: time (s) -> (centre x, centre y, interocular distance in px, roll in degrees)
Motion = Callable[[float], tuple[float, float, float, float]]


#: Near-frontal HELEN faces with clear eyes (no sunglasses), tried first.
PREFERRED = ("103236168_1", "1050957888_1", "1070861406_1", "1018882799_1")


def frontal_faces(data_dir: Path, count: int = 4) -> list[FaceSample]:
    """``count`` near-frontal, upright, large faces of 300-W/HELEN (deterministic order):
    the PREFERRED ones first, then the first others that pass the same geometric test."""
    samples = load_300w(Path(data_dir) / "300w" / "helen" / "trainset")
    rank = {name: i for i, name in enumerate(PREFERRED)}
    samples.sort(key=lambda s: (rank.get(s.image.stem, len(rank)), str(s.image)))
    out = []
    for s in samples:
        kp = s.keypoints
        iod = float(np.linalg.norm(kp[_LE] - kp[_RE]))
        eye_mid = (kp[_LE] + kp[_RE]) / 2
        roll = math.degrees(math.atan2(*(kp[_LE] - kp[_RE])[::-1]))
        yaw = abs(float(kp[_NOSE, 0] - eye_mid[0])) / max(iod, 1.0)
        if iod >= 60 and abs(roll) < 8 and yaw < 0.08:
            out.append(s)
        if len(out) == count:
            break
    return out


@dataclass
class Sprite:
    """A face photo with its keypoints and a feathered mask around the face."""

    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray = field(repr=False)
    centre: np.ndarray = field(repr=False)
    iod: float = 0.0

    @classmethod
    def from_sample(cls, sample: FaceSample) -> Sprite:
        img = cv2.imread(str(sample.image))
        kp = sample.keypoints.astype(np.float64)
        eye_mid = (kp[_LE] + kp[_RE]) / 2
        centre = eye_mid + 0.35 * (kp[_MOUTH].mean(0) - eye_mid)
        iod = float(np.linalg.norm(kp[_LE] - kp[_RE]))
        mask = np.zeros(img.shape[:2], np.float32)
        axes = (int(1.45 * iod), int(1.9 * iod))
        cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.25 * iod)
        return cls(img, kp, mask, centre, iod)

    def matrix(self, cx: float, cy: float, iod: float, roll_deg: float) -> np.ndarray:
        """2x3 transform photo -> canvas putting the face centre at (cx, cy) with this size and roll."""
        s = iod / self.iod
        a = math.radians(roll_deg)
        r = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        t = np.array([cx, cy]) - r @ self.centre
        return np.hstack([r, t[:, None]])


def _background(seed: int) -> np.ndarray:
    """A smooth, muted wall-like background (busy colour blobs make Haar fire on nothing)."""
    rng = np.random.default_rng(seed)
    low = cv2.resize(rng.uniform(0, 1, (3, 4, 1)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    fine = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 1.5)
    img = (90 + 90 * low[..., None] + 4 * fine[..., None]) * tint
    return np.clip(img, 0, 255).astype(np.float32)


@dataclass
class Clip:
    """A rendered-on-demand clip: ``frame(i)`` is BGR uint8, ``truth(i)`` a list of (15, 2) arrays
    (one per visible face, in sprite order; faces hidden in frame i are left out)."""

    sprites: list[Sprite]
    motions: list[Motion]
    n_frames: int
    fps: float = FPS
    noise: float = 0.0
    visible: Callable[[int, int], bool] = lambda i, j: True
    seed: int = 0
    background: np.ndarray = field(init=False, repr=False)
    _frames: list[np.ndarray] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.background = _background(self.seed)

    def __len__(self) -> int:
        return self.n_frames

    def _matrices(self, i: int) -> list[np.ndarray | None]:
        t = i / self.fps
        return [sp.matrix(*m(t)) if self.visible(i, j) else None
                for j, (sp, m) in enumerate(zip(self.sprites, self.motions))]

    def truth(self, i: int) -> list[np.ndarray]:
        out = []
        for sp, m in zip(self.sprites, self._matrices(i)):
            if m is not None:
                out.append((sp.keypoints @ m[:, :2].T + m[:, 2]).astype(np.float32))
        return out

    def frame(self, i: int) -> np.ndarray:
        img = self.background.copy()
        for sp, m in zip(self.sprites, self._matrices(i)):
            if m is None:
                continue
            # warp only the canvas region the photo lands on
            h, w = sp.image.shape[:2]
            corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ m[:, :2].T + m[:, 2]
            x0, y0 = np.clip(np.floor(corners.min(0)).astype(int), 0, [W, H])
            x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 1, 0, [W, H])
            if x1 <= x0 or y1 <= y0:
                continue
            mr = m.copy()
            mr[:, 2] -= (x0, y0)
            size = (int(x1 - x0), int(y1 - y0))
            face = cv2.warpAffine(sp.image, mr, size, flags=cv2.INTER_LINEAR).astype(np.float32)
            a = cv2.warpAffine(sp.mask, mr, size, flags=cv2.INTER_LINEAR)[..., None]
            roi = img[y0:y1, x0:x1]
            img[y0:y1, x0:x1] = roi + (face - roi) * a
        if self.noise > 0:
            rng = np.random.default_rng((self.seed, i))
            img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(self.noise)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.frame(i) for i in range(self.n_frames))

    def frames(self) -> list[np.ndarray]:
        """All frames, rendered once and kept (about 0.9 MB each)."""
        if self._frames is None:
            self._frames = list(self)
        return self._frames


def moving(iod: float = 62.0, amp: tuple[float, float] = (150.0, 80.0), speed: float = 1.0,
           roll: float = 12.0, zoom: float = 0.15, phase: float = 0.0,
           centre: tuple[float, float] = (W / 2, H / 2)) -> Motion:
    """Smooth Lissajous motion with breathing scale and roll; ``speed`` scales all frequencies.

    At speed 1 and the default size the face moves up to about 8 px per frame at 30 fps
    (about 1.5 face widths per second), a brisk but ordinary head movement."""
    def f(t: float) -> tuple[float, float, float, float]:
        u = t * speed
        return (centre[0] + amp[0] * math.sin(2 * math.pi * 0.25 * u + phase),
                centre[1] + amp[1] * math.sin(2 * math.pi * 0.35 * u + 0.7 + phase),
                iod * (1 + zoom * math.sin(2 * math.pi * 0.2 * u + phase)),
                roll * math.sin(2 * math.pi * 0.3 * u + 1.3 + phase))
    return f


def still(iod: float = 62.0, centre: tuple[float, float] = (W / 2, H / 2), roll: float = 0.0) -> Motion:
    return lambda t: (centre[0], centre[1], iod, roll)


def moving_clip(data_dir: Path, n_frames: int = 120, face: int = 0, **kw) -> Clip:
    """One face moving, scaling and rolling."""
    sp = Sprite.from_sample(frontal_faces(data_dir, face + 1)[face])
    noise = kw.pop("noise", 2.0)
    return Clip([sp], [moving(**kw)], n_frames, noise=noise, seed=1)


def still_clip(data_dir: Path, n_frames: int = 90, noise: float = 6.0, face: int = 0) -> Clip:
    """One face standing still; only sensor-like noise changes from frame to frame."""
    sp = Sprite.from_sample(frontal_faces(data_dir, face + 1)[face])
    return Clip([sp], [still()], n_frames, noise=noise, seed=2)


def two_face_clip(data_dir: Path, n_frames: int = 90) -> Clip:
    """Two different people, one in each half of the frame, moving independently."""
    a, b = (Sprite.from_sample(s) for s in frontal_faces(data_dir, 2)[:2])
    ma = moving(iod=44, amp=(50, 60), roll=8, centre=(W * 0.27, H / 2))
    mb = moving(iod=48, amp=(50, 60), roll=8, centre=(W * 0.73, H / 2), phase=2.0, speed=0.8)
    return Clip([a, b], [ma, mb], n_frames, noise=2.0, seed=3)


def gap_clip(data_dir: Path, n_frames: int = 90, gap: tuple[int, int] = (30, 60)) -> Clip:
    """One face that leaves the picture for frames gap[0]..gap[1]-1 (background only) and comes back."""
    sp = Sprite.from_sample(frontal_faces(data_dir, 1)[0])
    return Clip([sp], [moving(amp=(60, 30))], n_frames, noise=2.0, seed=4,
                visible=lambda i, j: not (gap[0] <= i < gap[1]))


def write_video(clip: Clip | list[np.ndarray], path: Path, fps: float = FPS, fourcc: str = "mp4v") -> Path:
    """Encode frames with OpenCV (mp4v in .mp4, MJPG in .avi)."""
    path = Path(path)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    if not w.isOpened():
        raise RuntimeError(f"cannot open a {fourcc} writer for {path}")
    for f in clip:
        w.write(f)
    w.release()
    return path


@dataclass
class CutClip:
    """Two clips joined by a hard cut: frames 0..cut-1 of ``a``, then frames cut.. of ``b``
    (another background, another person elsewhere). Same interface as :class:`Clip`."""

    a: Clip
    b: Clip
    cut: int
    fps: float = FPS

    def __len__(self) -> int:
        return self.b.n_frames

    def frame(self, i: int) -> np.ndarray:
        return (self.a if i < self.cut else self.b).frame(i)

    def truth(self, i: int) -> list[np.ndarray]:
        return (self.a if i < self.cut else self.b).truth(i)

    def frames(self) -> list[np.ndarray]:
        return [self.frame(i) for i in range(len(self))]


def cut_clip(data_dir: Path, n_frames: int = 60, cut: int = 30) -> CutClip:
    """A face on the left of one scene, then a hard cut to another person on the right of another."""
    a, b = (Sprite.from_sample(s) for s in frontal_faces(data_dir, 2)[:2])
    ma = moving(iod=50, amp=(30, 20), roll=5, centre=(W * 0.3, H / 2))
    mb = moving(iod=50, amp=(30, 20), roll=5, centre=(W * 0.72, H * 0.45), phase=1.0)
    return CutClip(Clip([a], [ma], n_frames, noise=2.0, seed=5), Clip([b], [mb], n_frames, noise=2.0, seed=6), cut)
