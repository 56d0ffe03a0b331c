"""Photo -> faces -> keypoints in original pixels: the single entry class.

``KeypointDetector`` ties a face detector (pluggable; the learned CNN by default, Haar as
``detector="haar"``) to the
ONNX keypoint model. Each face is cropped the way the model was trained,
predicted, then re-cropped around its own first prediction (upright, centred)
and predicted again: the refinement pass removes most of the detector's box
error and the face's roll. A detection whose keypoints span far less face than
its box implies is dropped (:data:`MIN_KEYPOINT_SCALE`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import numpy as np

from .detection import Detection, FaceDetector, make_detector
from .detection.learned import FIVE_INDEX
from .detection.verifier import OnnxFaceVerifier, default_verifier_path
from .geometry import Frame, crop, frame_from_box, frame_from_keypoints, mirror_average, mirror_pair
from .imageio import as_image, to_gray
from .openness import Openness, openness, openness_dict
from .pose import Pose, head_pose, pose_dict
from .runtime import OnnxKeypointModel, check_points
from .schema import KEYPOINT_NAMES, NUM_KEYPOINTS, NUM_LANDMARKS, conform_landmarks, to_points15

# Keypoints whose face frame is under this fraction of the side the detector's box implies
# mark a box on part of a face (a mouth with the tongue out) or on no face (a logo, a hair clip,
# a fist): the model finds a small "face" inside it. Measured on every 300-W photo: over the
# 1,139 faces found with keypoints near their labels (NME < 0.15) the ratio never fell below
# 0.70 (median 1.00). The 11 detections under 0.67: 4 false alarms (a logo, a hair clip, a
# painting, hands), 3 boxes on part of a face (its mouth, one eye), 2 faces whose keypoints had
# failed anyway (NME 0.57 and 0.63) and 2 unlabelled faces cut by the photo's edge.
MIN_KEYPOINT_SCALE = 0.67

#: Two faces whose keypoint frames share more than this fraction of the smaller frame are one face
#: seen twice; the better-scored one is kept. Measured over every dlib group photo and 300-W photo:
#: between two faces on distinct labelled people the largest share was 0.23 (dlib's 2008_002079.jpg);
#: above 0.5 came only a second box on a woman's lower face and collar in 2008_002470.jpg (0.71,
#: score 0.56 against her face's 0.97; it drew sunglasses on her collar) and a false alarm on a
#: hand below a face in HELEN 2212956363_1.jpg (0.53, score 0.40 against 0.63).
MAX_FRAME_OVERLAP = 0.5

#: Mirror gate for detections that carry five points (the learned detector): a detection whose
#: final keypoints and those predicted on the mirrored crop differ by more than this (mean over the
#: 15 points, in crop sides) is dropped. A face gives the model the same answer both ways; a dog,
#: a fist or a pattern does not. Chosen on the detector's training pictures and synthetic crowds of
#: training faces (docs/detector.md): on their detections of score >= 0.3, 95% of the true faces
#: are under 0.013 and half of the false alarms over 0.04; at 0.02 the false alarms fall about 5x for
#: 0.3-2% of the faces.
MAX_MIRROR_GAP = 0.02

#: Verifier threshold. The shipped verifier (three averaged CNNs, trained with the learned detector's
#: own false alarms as negatives) keeps 99.75% of the 1,964 held-out validation faces at 0.4, as many
#: as its predecessor kept at 0.25, and rejects 96.4% of the held-out non-faces (its predecessor
#: 74.0%) and 95.1% of the learned detector's false alarms on held-out photos (55.3%); docs/detector.md.
MIN_FACE_PROB = 0.4


@dataclass
class Face:
    """One face: detector box (x0, y0, x1, y1), score, and (P, 2) float32 keypoints in original
    image pixels: P = 15 in ``KEYPOINT_NAMES`` order, or P = 68 iBUG landmarks
    (``KeypointDetector(points=68)``), from which :attr:`points15` derives the 15. ``id`` is set
    by the video tracker; ``image_size`` (width, height) of the photo or frame, set by the
    detector and the tracker, gives :attr:`pose` its camera.

    ``score``: the detector's 0-1 probability that the box is a face, the same scale for every
    detector (:attr:`facekeypoints.detection.Detection.score`; Haar's is calibrated on 300-W),
    or None when the detector gives none."""

    box: tuple[float, float, float, float]
    score: float | None
    keypoints: np.ndarray = field(repr=False)
    id: int | None = None
    image_size: tuple[int, int] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = {
            "box": [round(float(v), 2) for v in self.box],
            "score": None if self.score is None else round(float(self.score), 4),
            "keypoints": {n: [round(float(x), 2), round(float(y), 2)] for n, (x, y) in zip(KEYPOINT_NAMES, self.points15)},
        }
        if self.landmarks is not None:
            d["landmarks"] = [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]
        if self.id is not None:
            d["id"] = self.id
        d["pose"] = pose_dict(self.pose)
        if (o := self.openness) is not None:
            d["openness"] = openness_dict(o)
        return d

    @property
    def points15(self) -> np.ndarray:
        """The (15, 2) named keypoints: ``keypoints`` itself, or derived from the 68 landmarks
        (``schema.IBUG68_TO_15_MATRIX``)."""
        return to_points15(self.keypoints)

    @property
    def landmarks(self) -> np.ndarray | None:
        """The (68, 2) iBUG landmarks, or None for a 15-point face."""
        return self.keypoints if len(self.keypoints) == NUM_LANDMARKS else None

    @property
    def pose(self) -> Pose:
        """(yaw, pitch, roll) in degrees (:mod:`facekeypoints.pose`: yaw > 0 turned to the subject's
        left, pitch > 0 looking up, roll = the eye line's angle, > 0 with the subject's left eye lower)."""
        return head_pose(self.points15, self.image_size)

    @property
    def openness(self) -> Openness | None:
        """Eye and mouth aspect ratios (:mod:`facekeypoints.openness`); None without 68 landmarks."""
        lm = self.landmarks
        return None if lm is None else openness(lm)

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def frame_overlap(a: Frame, b: Frame) -> float:
    """Shared area of two (upright) crop frames as a fraction of the smaller one."""
    ix = max(0.0, min(a.cx + a.side / 2, b.cx + b.side / 2) - max(a.cx - a.side / 2, b.cx - b.side / 2))
    iy = max(0.0, min(a.cy + a.side / 2, b.cy + b.side / 2) - max(a.cy - a.side / 2, b.cy - b.side / 2))
    return ix * iy / max(min(a.side, b.side) ** 2, 1e-9)


def one_per_face(faces: list[Face], max_overlap: float = MAX_FRAME_OVERLAP) -> list[Face]:
    """Drop the second sighting of a face, whatever the detector: of two faces whose keypoint
    frames overlap by more than ``max_overlap`` of the smaller, keep the better-scored one
    (the larger when neither has a score). Input order is kept for the survivors."""
    frames = [frame_from_keypoints(f.keypoints) for f in faces]
    rank = sorted(range(len(faces)), key=lambda i: (-(faces[i].score if faces[i].score is not None else -1.0),
                                                     -frames[i].side))
    kept: list[int] = []
    for i in rank:
        if all(frame_overlap(frames[i], frames[k]) <= max_overlap for k in kept):
            kept.append(i)
    return [faces[i] for i in sorted(kept)]


def detection_frame(d: Detection) -> Frame:
    """The keypoint crop for a detection: from its five points when the detector gives them
    (centred and de-rolled the way the refinement pass crops), else from its box (Haar-calibrated,
    rotated by the angle it was found at)."""
    if d.points is not None:
        kp = np.full((len(KEYPOINT_NAMES), 2), np.nan, np.float32)
        kp[FIVE_INDEX] = np.asarray(d.points, np.float32)
        return frame_from_keypoints(kp, rotate=True)
    return replace(frame_from_box(d.box), angle=d.angle)


class KeypointDetector:
    """Find every face in a photo and its 15 keypoints (or 68 landmarks).

    ``model``: path to an ONNX model (default: the one shipped in the package for ``points``).
    ``points``: 15 (the named keypoints, default) or 68 (iBUG landmarks, from ``points68.onnx``);
    it must match the model's own point count.
    ``keypoints_model`` (``points=68`` only): a 15-point model ("default" = the shipped one) that
    crops and refines each face and gives its 15 keypoints, as with ``points=15``; the 68-point model
    then predicts on the final crop and its landmarks are moved onto those 15
    (:func:`~facekeypoints.schema.conform_landmarks`). So a 68-point face has the 15-point model's
    keypoints and gates, and the 68 gain its better crop (docs/benchmarks.md). None: the 68-point model
    alone, the 15 derived from its landmarks (one model; 3 model passes per face instead of 5).
    ``detector``: a name from :data:`facekeypoints.detection.DETECTORS` ("learned", "haar", "haar-fast";
    default: :data:`~facekeypoints.detection.DEFAULT_DETECTOR`) or any callable
    ``gray or BGR image -> list[Detection]``.
    ``refine``: number of re-centred passes after the first (0 = single pass).
    ``flip``: average the final pass with its mirror image (:func:`~facekeypoints.geometry.mirror_average`).
    ``min_keypoint_scale``: drop detections whose keypoints span less than this fraction of
    the face their box implies (:data:`MIN_KEYPOINT_SCALE`; 0 keeps all).
    ``verifier``: face/non-face model that drops detector false alarms ("default" = the
    shipped one, None = keep every detection); ``min_face_prob`` is its threshold (:data:`MIN_FACE_PROB`).
    ``max_mirror_gap``: the mirror gate (:data:`MAX_MIRROR_GAP`) for detections with five points
    (the learned detector; Haar's boxes are not gated); None turns it off.
    ``skip_first_pass``: when the detector gives five points (the learned one), the first crop
    comes from them; True also skips the first keypoint pass (``refine`` passes in all instead of
    ``refine + 1``: one model pass less per face, but 3.68% NME instead of 3.47% on the 300-W +
    LFPW validation faces, docs/detector.md).
    ``threads``: onnxruntime intra-op threads (None = its default).
    """

    def __init__(self, model: str | os.PathLike | OnnxKeypointModel | None = None,
                 detector: str | FaceDetector | None = None, refine: int = 1, threads: int | None = None,
                 verifier: str | os.PathLike | OnnxFaceVerifier | None = "default", min_face_prob: float = MIN_FACE_PROB,
                 flip: bool = True, min_keypoint_scale: float = MIN_KEYPOINT_SCALE, points: int = 15,
                 skip_first_pass: bool = False, max_mirror_gap: float | None = MAX_MIRROR_GAP,
                 keypoints_model: str | os.PathLike | OnnxKeypointModel | None = "default") -> None:
        points = check_points(points)
        self.model = (model if isinstance(model, OnnxKeypointModel)
                      else OnnxKeypointModel(model, threads=threads, points=points))
        self.points = self.model.expect_points(points)
        # points=68: the 15-point model that frames each face and gives its keypoints (None: the 68 alone)
        if self.points != NUM_LANDMARKS or keypoints_model is None:
            self.framer: OnnxKeypointModel | None = None
        elif isinstance(keypoints_model, OnnxKeypointModel):
            self.framer = keypoints_model
        else:
            self.framer = OnnxKeypointModel(None if keypoints_model == "default" else keypoints_model,
                                            threads=threads, points=NUM_KEYPOINTS)
        if self.framer is not None:
            self.framer.expect_points(NUM_KEYPOINTS)
        self.detector = make_detector(detector, threads=threads)
        self.refine = refine
        self.flip = flip
        self.min_keypoint_scale = min_keypoint_scale
        self.skip_first_pass = skip_first_pass
        self.max_mirror_gap = max_mirror_gap
        if verifier == "default":
            # for both detectors: trained on the false alarms of each (docs/detector.md, "The verifier")
            verifier = OnnxFaceVerifier(threads=threads) if default_verifier_path().is_file() else None
        elif verifier is not None and not isinstance(verifier, OnnxFaceVerifier):
            verifier = OnnxFaceVerifier(verifier, threads=threads)
        self.verifier = verifier
        self.min_face_prob = min_face_prob

    def detect(self, image: np.ndarray | str | os.PathLike) -> list[Face]:
        """All faces, largest first. ``image``: HxWx3 BGR uint8 array (or grey), or a path."""
        img = as_image(image)
        gray = to_gray(img)
        dets, frames, crops = self.verified(gray, self.detector(gray))
        if not dets:
            return []
        # With skip_first_pass, a detector's five points stand in for the first keypoint pass
        # (docs/detector.md measures both).
        pointed = self.skip_first_pass and all(d.points is not None for d in dets)
        kps, ok = self.gated_keypoints(gray, dets, frames, crops, refine=max(self.refine - 1, 0) if pointed else None)
        size = (int(img.shape[1]), int(img.shape[0]))
        faces = [Face(tuple(float(v) for v in d.box), d.score, k, image_size=size)
                 for d, k, good in zip(dets, kps, ok) if good]
        faces = one_per_face(faces)
        faces.sort(key=lambda f: -f.size)
        return faces

    def verified(self, gray: np.ndarray, dets: list[Detection]) -> tuple[list[Detection], list[Frame], np.ndarray]:
        """The detections the verifier takes for faces (all of them without a verifier), with
        their crop frames (:func:`detection_frame`) and crops. The video tracker gates its
        detections here too."""
        frames = [detection_frame(d) for d in dets]
        if not frames:
            return [], [], np.zeros((0, 96, 96), np.uint8)
        crops = np.stack([crop(gray, f) for f in frames])
        if self.verifier is not None:
            keep = self.verifier.predict(crops) >= self.min_face_prob
            dets = [d for d, k in zip(dets, keep) if k]
            frames = [f for f, k in zip(frames, keep) if k]
            crops = crops[keep]
        return dets, frames, crops

    def gated_keypoints(self, gray: np.ndarray, dets: list[Detection], frames: list[Frame],
                        crops: np.ndarray | None = None, refine: int | None = None,
                        flip: bool | None = None) -> tuple[np.ndarray, list[bool]]:
        """Keypoints for verified detections (:meth:`keypoints_from_frames`) and whether each one
        passes the keypoint gates: :meth:`spans_face`, and for detections with five points the mirror
        gate (``max_mirror_gap``), which needs the final pass mirror-averaged (so it is, whatever
        ``flip`` says, when the gate applies)."""
        gated = self.max_mirror_gap is not None and any(d.points is not None for d in dets)
        gaps: list[np.ndarray] = []
        kps = self.keypoints_from_frames(gray, frames, refine=refine, crops=crops, flip=True if gated else flip,
                                         gaps=gaps)
        ok = [self.spans_face(k, f) for k, f in zip(kps, frames)]
        if gated:
            ok = [o and (d.points is None or float(g) <= self.max_mirror_gap) for o, d, g in zip(ok, dets, gaps[-1])]
        return kps, ok

    def _mirror_pair(self, model: OnnxKeypointModel, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints averaged over the crops and their mirror images (as
        :func:`~facekeypoints.geometry.mirror_average`) and, per crop, the mean distance between the
        two halves' 15 keypoints in Kaggle-frame sides (the mirror gate's measure, whatever the model's framing)."""
        a, b = mirror_pair(model.predict, crops)
        gap = np.linalg.norm(to_points15(a) - to_points15(b), axis=-1).mean(-1) * model.framing.zoom / crops.shape[2]
        return (a + b) / 2, gap

    def spans_face(self, keypoints: np.ndarray, frame: Frame) -> bool:
        """Whether keypoints predicted in a detection's crop ``frame`` span the face its box implies
        (:data:`MIN_KEYPOINT_SCALE`)."""
        return frame_from_keypoints(keypoints).side >= self.min_keypoint_scale * frame.side

    def keypoints(self, image: np.ndarray | str | os.PathLike, boxes) -> np.ndarray:
        """(N, P, 2) keypoints (P = :attr:`points`) for face boxes (x0, y0, x1, y1) you supply
        (e.g. from another detector)."""
        gray = to_gray(as_image(image))
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return self.keypoints_from_frames(gray, [frame_from_box(b) for b in boxes])

    def keypoints_from_frames(self, gray: np.ndarray, frames: list[Frame], refine: int | None = None,
                              crops: np.ndarray | None = None, flip: bool | None = None,
                              gaps: list | None = None) -> np.ndarray:
        """Predict in the given crop frames (``crops``: those frames already cut), then
        refine ``refine`` times around each prediction; ``flip`` (default: the detector's
        setting) mirror-averages the final pass (``gaps``, a list: gets the mirror gap per face,
        :meth:`_mirror_pair`). Each refined frame is built from the 15 keypoints (derived from 68
        landmarks), as the models were trained. With a ``keypoints_model`` (``points=68``) it makes
        every pass and the 68-point model predicts once more on the final frames (in its own framing)."""
        if not frames:
            return np.zeros((0, self.points, 2), np.float32)
        passes = self.refine if refine is None else refine
        flip = self.flip if flip is None else flip
        model = self.framer or self.model
        if crops is None:
            crops = np.stack([crop(gray, f) for f in frames])
        kps = self._predict(model, gray, frames, crops, flip and passes == 0, gaps)
        for i in range(passes):
            frames = [frame_from_keypoints(k, rotate=True) for k in kps]
            crops = np.stack([crop(gray, f) for f in frames])
            kps = self._predict(model, gray, frames, crops, flip=flip and i == passes - 1, gaps=gaps)
        if self.framer is not None:
            kps = conform_landmarks(self._predict(self.model, gray, frames, crops, flip=flip), kps)
        return kps

    def _predict(self, model: OnnxKeypointModel, gray: np.ndarray, frames: list[Frame], crops: np.ndarray,
                 flip: bool = False, gaps: list | None = None) -> np.ndarray:
        """``model``'s points in image pixels for faces whose Kaggle frames are ``frames`` (``crops``:
        those frames cut). A model trained on another framing (a 68-point model's wider crop,
        :class:`~facekeypoints.geometry.Framing`) gets its own crops of the same faces."""
        if not model.framing.identity:
            frames = [model.framing.apply(f) for f in frames]
            crops = np.stack([crop(gray, f) for f in frames])
        if flip and gaps is not None:
            pred, gap = self._mirror_pair(model, crops)
            gaps.append(gap)
        else:
            pred = mirror_average(model.predict, crops) if flip else model.predict(crops)
        return np.stack([f.to_image(p) for f, p in zip(frames, pred)])

