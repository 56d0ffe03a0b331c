"""MediaPipe face detector peer (legacy ``solutions.face_detection``, BlazeFace), detector only.

``python mediapipe_detection_runner.py 0`` = the short-range model (faces within ~2 m, the
one FaceMesh uses), ``1`` = the full-range model. Run with the peers' venv python (mediapipe
0.10.21 needs numpy<2); speaks bench/peers/protocol.py. Points: its 6 keypoints in pixels
(the two eyes first, then nose tip, mouth centre, the two ear tragions).
"""

from __future__ import annotations

import sys

import cv2
import mediapipe as mp
import numpy as np
from protocol import serve


def main() -> None:
    model = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    fd = mp.solutions.face_detection.FaceDetection(model_selection=model, min_detection_confidence=0.5)

    def process(bgr: np.ndarray) -> list[dict]:
        h, w = bgr.shape[:2]
        res = fd.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        faces = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            pts = np.array([(k.x, k.y) for k in d.location_data.relative_keypoints], np.float64) * (w, h) - 0.5
            faces.append({"box": [b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h],
                          "score": float(d.score[0]), "points": np.round(pts, 2).tolist()})
        return faces

    serve("mediapipe-detection", {"mediapipe": mp.__version__, "model_selection": model,
                                  "min_detection_confidence": 0.5}, process)


if __name__ == "__main__":
    main()
