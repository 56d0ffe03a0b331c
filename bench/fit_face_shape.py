"""Fit the generic 3-D face of ``facekeypoints.pose.FACE_3D`` from the 300-W training labels.

Rigid factorisation (Tomasi & Kanade 1992, with the metric upgrade of scaled orthography) of the
68-point labels of every 300-W training face and its mirror image: the three leading singular
vectors give a 3-D mean shape up to an affine map, which the orthonormality of each face's camera
rows fixes up to rotation and scale. The shape is then put in the face's frame (x from the right
eye to the left, y down, z away from the camera), made exactly left/right symmetric, scaled to
63 mm between the eye centres, mapped to the 15 keypoints, and its depth scaled so the nose tip
stands ``--nose-depth`` mm in front of the eyes (factorisation of faces that turn little
overstates depth; 31 mm is adult anthropometry). Prints the table pasted into pose.py.

    python bench/fit_face_shape.py [--data ../shared/data] [--nose-depth 31]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facekeypoints.schema import IBUG68_FLIP_PERMUTATION, IBUG68_TO_15_MATRIX, INDEX, KEYPOINT_NAMES
from facekeypoints.training.data.landmarks import in_validation, read_pts

ROOT = Path(__file__).resolve().parents[1]


def _sym(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Coefficients of the 6 unknowns of a symmetric 3x3 L in a^T L b."""
    return np.array([a[0] * b[0], a[0] * b[1] + a[1] * b[0], a[0] * b[2] + a[2] * b[0], a[1] * b[1],
                     a[1] * b[2] + a[2] * b[1], a[2] * b[2]])


def factorise(points: np.ndarray) -> np.ndarray:
    """(F, P, 2) 2-D shapes -> (P, 3) rigid mean shape (metric up to rotation, scale, reflection)."""
    c = points - points.mean(1, keepdims=True)
    c /= np.sqrt((c**2).sum((1, 2)))[:, None, None]
    w = np.concatenate([c[:, :, 0], c[:, :, 1]], 0)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    m, shape = u[:, :3] * np.sqrt(s[:3]), np.sqrt(s[:3])[:, None] * vt[:3]
    f = len(points)
    mx, my = m[:f], m[f:]
    rows = [r for i in range(f) for r in (_sym(mx[i], mx[i]) - _sym(my[i], my[i]), _sym(mx[i], my[i]))]
    a = np.array([*rows, _sym(mx[0], mx[0])])
    rhs = np.zeros(len(a))
    rhs[-1] = 1.0
    x = np.linalg.lstsq(a, rhs, rcond=None)[0]
    lm = np.array([[x[0], x[1], x[2]], [x[1], x[3], x[4]], [x[2], x[4], x[5]]])
    ev, vec = np.linalg.eigh(lm)
    q = vec @ np.diag(np.sqrt(np.abs(ev)))
    return (np.linalg.inv(q) @ shape).T


def fit(data: Path, nose_depth: float = 31.0) -> tuple[np.ndarray, float, int]:
    """(15, 3) generic face in mm, the factorisation's own nose depth (mm) and the number of faces."""
    shapes = [read_pts(p).astype(np.float64) for p in sorted((data / "300w").rglob("*.pts"))
              if not in_validation("300w/" + p.stem.rsplit("_", 1)[0], 0.15, 0)]  # training photos only
    n = len(shapes)
    perm = IBUG68_FLIP_PERMUTATION
    shapes += [np.c_[-s[perm, 0], s[perm, 1]] for s in shapes]
    x = factorise(np.array(shapes))
    le, re = x[42:48].mean(0), x[36:42].mean(0)
    ex = (le - re) / np.linalg.norm(le - re)
    ey = (x[48] + x[54]) / 2 - (le + re) / 2
    ey -= ex * (ey @ ex)
    ey /= np.linalg.norm(ey)
    x = (x - x.mean(0)) @ np.stack([ex, ey, np.cross(ex, ey)]).T
    if x[30, 2] > x[36:48, 2].mean():  # the nose tip is nearest the camera
        x[:, 2] *= -1
    x = (x + np.c_[-x[perm, 0], x[perm, 1:]]) / 2
    x *= 63.0 / np.linalg.norm(x[42:48].mean(0) - x[36:42].mean(0))
    x -= x[36:48].mean(0)
    x15 = IBUG68_TO_15_MATRIX.astype(np.float64) @ x
    raw = float(-x15[INDEX["nose_tip"], 2])
    x15[:, 2] *= nose_depth / raw
    return x15, raw, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--nose-depth", type=float, default=31.0, help="mm the nose tip stands in front of the eyes")
    args = ap.parse_args()
    x15, raw, n = fit(args.data, args.nose_depth)
    print(f"# {n} training faces (and their mirror images); raw nose depth {raw:.1f} mm, scaled to {args.nose_depth}")
    for name, p in zip(KEYPOINT_NAMES, x15):
        print(f"    ({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f}),  # {name}")


if __name__ == "__main__":
    main()
