"""Head pose from the 15 keypoints: yaw, pitch and roll in degrees.

A generic 3-D face (:data:`FACE_3D`, millimetres) is fitted to the keypoints with
``cv2.solvePnP`` through a pinhole camera made from the image size (focal length =
the longer side, principal point = the image centre). Conventions, all in the
subject's terms and the image as displayed:

* **yaw** > 0: the subject turns to their own left (the nose points to the image's right);
* **pitch** > 0: the subject looks up;
* **roll**: the angle of the eye line (right eye to left eye), > 0 when the eye on the
  image's right (the subject's left) is lower.

The rotation is split as ``R = Rz(roll) . Rx(pitch) . Ry(yaw)`` (yaw about the head's
vertical axis first, roll about the camera's axis last), so mirroring a photo negates yaw
and roll and keeps pitch, and rotating it in its plane by an angle changes roll by that
angle and leaves yaw and pitch alone. Roll is reported as the eye line's angle itself
(measured straight from the keypoints, no model involved); yaw and pitch come from the fit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from .geometry import eye_angle, frame_from_keypoints
from .schema import INDEX, KEYPOINT_NAMES

#: The generic face: mean 3-D shape of the 15 keypoints, in mm, x towards the subject's left
#: (the image's right for a frontal face), y down, z away from the camera (the nose tip is
#: nearest); origin at the eye midpoint, eye centres 63 mm apart. x and y are the mean
#: frontal shape of the 300-W training labels; depth comes from a rigid factorisation of the
#: same labels (``python bench/fit_face_shape.py``), scaled so the nose tip stands 31 mm in
#: front of the eyes (adult anthropometry; the factorisation alone overstates depth ~1.8x,
#: as 300-W's faces turn little).
FACE_3D: np.ndarray = np.array([
    (31.5, 0.0, 0.0),  # left_eye_center
    (-31.5, 0.0, 0.0),  # right_eye_center
    (18.3, 1.6, -1.4),  # left_eye_inner_corner
    (44.1, 0.7, 3.7),  # left_eye_outer_corner
    (-18.3, 1.6, -1.4),  # right_eye_inner_corner
    (-44.1, 0.7, 3.7),  # right_eye_outer_corner
    (11.6, -19.6, -13.7),  # left_eyebrow_inner_end
    (58.7, -10.7, 9.9),  # left_eyebrow_outer_end
    (-11.6, -19.6, -13.7),  # right_eyebrow_inner_end
    (-58.7, -10.7, 9.9),  # right_eyebrow_outer_end
    (0.0, 28.9, -31.0),  # nose_tip
    (27.8, 65.6, 0.0),  # mouth_left_corner
    (-27.8, 65.6, 0.0),  # mouth_right_corner
    (0.0, 57.9, -17.3),  # mouth_center_top_lip
    (0.0, 78.3, -14.3),  # mouth_center_bottom_lip
], dtype=np.float64)

#: Keypoints the fit uses: eyes, nose tip, mouth corners and top lip. The eyebrows (the
#: least well located points, and they rise with expression) and the bottom lip (it drops
#: with the jaw when the mouth opens) are left out.
POSE_POINTS: tuple[int, ...] = tuple(INDEX[n] for n in (
    "left_eye_center", "right_eye_center", "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner", "nose_tip", "mouth_left_corner",
    "mouth_right_corner", "mouth_center_top_lip"))

assert FACE_3D.shape == (len(KEYPOINT_NAMES), 3)
_IDX = np.array(POSE_POINTS)
_OBJ = np.ascontiguousarray(FACE_3D[_IDX])

#: Focal length of the camera made from a face alone (no image size): this many keypoint-frame
#: sides, about a 50-degree field of view for a face a quarter of the picture wide.
FACE_ONLY_FOCAL = 4.0


class Pose(NamedTuple):
    """Head pose in degrees (see the module docstring for the signs)."""

    yaw: float
    pitch: float
    roll: float


def camera_matrix(width: float, height: float) -> np.ndarray:
    """Pinhole camera for an image: focal length = the longer side, principal point = the centre
    (pixel-centre convention, so mirroring x -> width - 1 - x maps the camera onto itself)."""
    f = float(max(width, height))
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def _camera(points15: np.ndarray, image_size: tuple[int, int] | None) -> np.ndarray:
    if image_size is not None:
        return camera_matrix(*image_size)
    fr = frame_from_keypoints(points15)
    f = FACE_ONLY_FOCAL * fr.side
    return np.array([[f, 0.0, fr.cx], [0.0, f, fr.cy], [0.0, 0.0, 1.0]])


def solve_pose(points15: np.ndarray, image_size: tuple[int, int] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(rvec, tvec, camera)`` of the generic face fitted to (15, 2) keypoints, or None when the
    keypoints are not finite or the fit fails. ``image_size``: (width, height) of the photo; None
    makes a camera centred on the face (see :data:`FACE_ONLY_FOCAL`)."""
    pts = np.asarray(points15, np.float64)
    if pts.shape != (len(KEYPOINT_NAMES), 2):
        raise ValueError(f"expected (15, 2) keypoints, got {pts.shape}")
    if not np.isfinite(pts).all():
        return None
    cam = _camera(pts, image_size)
    try:
        ok, rvec, tvec = cv2.solvePnP(_OBJ, pts[_IDX], cam, None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:
        return None
    if not ok or tvec[2, 0] <= 0:  # the face must be in front of the camera
        return None
    return rvec, tvec, cam


def angles_from_rotation(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a rotation ``R = Rz(roll') Rx(pitch') Ry(yaw')`` (camera
    frame: x right, y down, z forward), with the signs flipped to the documented conventions."""
    pitch_ = math.asin(max(-1.0, min(1.0, float(r[2, 1]))))
    yaw_ = math.atan2(-float(r[2, 0]), float(r[2, 2]))
    roll_ = math.atan2(-float(r[0, 1]), float(r[1, 1]))
    # The face looks along -z of its model: yaw' < 0 turns the nose to +x (the subject's left),
    # pitch' < 0 tips it to -y (up in the image).
    return -math.degrees(yaw_), -math.degrees(pitch_), math.degrees(roll_)


def head_pose(points15: np.ndarray, image_size: tuple[int, int] | None = None) -> Pose:
    """Yaw, pitch and roll in degrees of a face's (15, 2) keypoints; NaNs where the fit fails."""
    sol = solve_pose(points15, image_size)
    if sol is None:
        return Pose(math.nan, math.nan, math.nan)
    yaw, pitch, _ = angles_from_rotation(cv2.Rodrigues(sol[0])[0])
    roll = math.degrees(eye_angle(np.asarray(points15, np.float64)))
    return Pose(yaw, pitch, roll)


def pose_dict(pose: Pose, digits: int = 2) -> dict[str, float | None]:
    """``{"yaw", "pitch", "roll"}`` for JSON (None where not finite)."""
    return {k: round(float(v), digits) if math.isfinite(v) else None for k, v in pose._asdict().items()}


def draw_pose(image: np.ndarray, faces, length: float = 0.6) -> np.ndarray:
    """Annotated copy of a BGR image with each face's head axes drawn from its nose tip:
    red = the subject's left (x), green = up (-y), blue = where the face points (-z).
    ``length``: axis length in eye distances of the generic face."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    n = FACE_3D[INDEX["nose_tip"]]
    a = 63.0 * length
    axes = np.array([n, n + (a, 0, 0), n + (0, -a, 0), n + (0, 0, -a)], np.float64)
    for face in faces:
        kp = np.asarray(getattr(face, "points15", face), np.float64)
        size = getattr(face, "image_size", None) or (w, h)
        sol = solve_pose(kp, size)
        if sol is None:
            continue
        p, _ = cv2.projectPoints(axes, sol[0], sol[1], sol[2], None)
        p = p.reshape(-1, 2)
        if not np.isfinite(p).all() or np.abs(p).max() > 1e6:
            continue
        t = max(1, int(round(float(np.ptp(kp[:, 0])) / 40)))
        o = kp[INDEX["nose_tip"]]  # draw from the detected nose tip, not the model's projection of it
        for q, color in zip(p[1:], ((60, 60, 255), (60, 220, 60), (255, 120, 40))):
            end = o + (q - p[0])
            cv2.arrowedLine(out, _pt(o), _pt(end), color, t, cv2.LINE_AA, shift=4, tipLength=0.15)
    return out


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * 16)), int(round(float(p[1]) * 16))
