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
        mean = np.where(m.any(-1), np.where(m, d, 0.0).sum(-1) / m.sum(-1), np.nan)
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


def interocular68(gt68: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance per face of (N, 68, 2) iBUG landmarks (points 36 and 45)."""
    gt68 = np.asarray(gt68, np.float64)
    return np.linalg.norm(gt68[..., 45, :] - gt68[..., 36, :], axis=-1)


def summary68(pred68: np.ndarray, gt68: np.ndarray, mask68: np.ndarray | None = None) -> dict:
    """The 300-W metric on (N, 68, 2) landmarks: mean point error per face over its labelled
    landmarks / the outer-eye-corner distance (faces lacking the 68 labels are left out),
    overall (mean, median, share of faces over 10 %) and per region of IBUG68_REGIONS."""
    from .schema import IBUG68_REGIONS

    d, m = _err(pred68, gt68, mask68)
    iod = interocular68(gt68)
    ok = m.all(-1) & np.isfinite(iod) & (iod > 0)
    d, iod = d[ok], iod[ok]
    if not len(d):
        return {"faces": 0, "nme": float("nan"), "nme_median": float("nan"), "failure_rate_10pct": float("nan"),
                "rmse": float("nan"), "per_region": {}}
    per_face = d.mean(-1) / iod
    return {
        "faces": int(len(d)),
        "nme": float(per_face.mean()),
        "nme_median": float(np.median(per_face)),
        "failure_rate_10pct": float((per_face > 0.10).mean()),
        "rmse": float(np.sqrt((d ** 2).mean() / 2)),
        "per_region": {r: float((d[:, list(idx)].mean(-1) / iod).mean()) for r, idx in IBUG68_REGIONS.items()},
    }


def nme_eye_centres(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean point error / eye-centre distance (for sets without eye corners, e.g. MTFL)."""
    from .schema import LEFT_EYE, RIGHT_EYE

    d, m = _err(pred, gt, mask)
    ipd = np.linalg.norm(np.asarray(gt, np.float64)[..., LEFT_EYE, :] - np.asarray(gt, np.float64)[..., RIGHT_EYE, :], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(m.any(-1), np.where(m, d, 0.0).sum(-1) / m.sum(-1), np.nan) / ipd
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")
