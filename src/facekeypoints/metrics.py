"""Accuracy metrics (numpy): Kaggle RMSE in the 96x96 frame and inter-ocular NME."""

from __future__ import annotations

import numpy as np

from .schema import KEYPOINT_NAMES, LEFT_EYE_OUTER, RIGHT_EYE_OUTER


def _err(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    m = np.isfinite(gt).all(-1) if mask is None else np.asarray(mask, bool) & np.isfinite(gt).all(-1)
    return np.linalg.norm(pred - gt, axis=-1), m


def rmse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Kaggle's metric: root mean squared error over every present coordinate."""
    d, m = _err(pred, gt, mask)
    return float(np.sqrt((d[m] ** 2).sum() / (2 * m.sum()))) if m.any() else float("nan")


def interocular(gt: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance per face (300-W normalisation); NaN where a corner is missing."""
    gt = np.asarray(gt, np.float64)
    return np.linalg.norm(gt[..., LEFT_EYE_OUTER, :] - gt[..., RIGHT_EYE_OUTER, :], axis=-1)


def nme_per_face(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean point error of each face / its outer-eye-corner distance (NaN if not defined)."""
    d, m = _err(pred, gt, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(m.any(-1), (d * m).sum(-1) / m.sum(-1), np.nan)
        return mean / interocular(gt)


def nme(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    v = nme_per_face(pred, gt, mask)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def per_keypoint(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """RMSE (pixels of the frame given) and NME for each named keypoint."""
    d, m = _err(pred, gt, mask)
    iod = interocular(gt)
    out = {}
    for k, name in enumerate(KEYPOINT_NAMES):
        mk = m[:, k]
        ok = mk & np.isfinite(iod) & (iod > 0)
        out[name] = {
            "rmse": float(np.sqrt((d[mk, k] ** 2).mean() / 2)) if mk.any() else float("nan"),
            "nme": float((d[ok, k] / iod[ok]).mean()) if ok.any() else float("nan"),
            "count": int(mk.sum()),
        }
    return out


def summary(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict:
    v = nme_per_face(pred, gt, mask)
    v = v[np.isfinite(v)]
    return {
        "faces": int(len(gt)),
        "rmse": rmse(pred, gt, mask),
        "nme": float(v.mean()) if len(v) else float("nan"),
        "nme_median": float(np.median(v)) if len(v) else float("nan"),
        "failure_rate_10pct": float((v > 0.10).mean()) if len(v) else float("nan"),
        "per_keypoint": per_keypoint(pred, gt, mask),
    }
