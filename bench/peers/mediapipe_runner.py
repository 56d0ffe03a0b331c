"""MediaPipe peer: legacy FaceMesh (static images, up to 10 faces, refined iris landmarks).

Run with the peers' venv python (mediapipe 0.10.21 needs numpy<2; see bench/README.md);
speaks bench/peers/protocol.py. Returns all 478 landmarks in pixels; the mapping to the
15 keypoints lives in mediapipe_map.py (run by the benchmark, so it can change without
re-running MediaPipe).
"""

from __future__ import annotations

import os

import cv2
import mediapipe as mp
import numpy as np
from protocol import serve

#: dlib's multi-face photos hold up to 7 labelled faces; a cap of 10 costs nothing on one-face photos.
MAX_FACES = int(os.environ.get("FKP_MP_MAX_FACES", "10"))


def main() -> None:
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=MAX_FACES,
                                           refine_landmarks=True, min_detection_confidence=0.5)

    def process(bgr: np.ndarray) -> list[dict]:
        h, w = bgr.shape[:2]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        res = mesh.process(rgb)
        faces = []
        for lm in res.multi_face_landmarks or []:
            # normalised [0, 1] image coordinates (0 = the left edge) -> pixel centres at integers
            pts = np.array([(p.x, p.y) for p in lm.landmark], np.float64) * (w, h) - 0.5
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
            faces.append({"box": [float(x0), float(y0), float(x1), float(y1)], "score": None,
                          "points": np.round(pts, 2).tolist()})
        return faces

    serve("mediapipe", {"mediapipe": mp.__version__, "max_num_faces": MAX_FACES, "refine_landmarks": True}, process)


if __name__ == "__main__":
    main()
