"""Train the face detector on one CPU thread and export it to ONNX.

    fkp train-detector --data ../shared/data --teacher DIR --out runs/detector

does everything: teacher labels for the unlabelled people (cached), synthetic canvases
(single photos at random scale, 2x2-4x4 mosaics), CenterNet-style training, whole-photo
validation every ``eval_every`` steps (history JSON + curves PNG), ONNX export with its
sha256 sidecar. See docs/detector.md.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ...detection.base import box_iou
from ...detection.learned import box_from_points, decode, letterbox, nms_indices
from ...fileio import write_json_atomic
from .data import Photo, SynthConfig, load_photos, pools_of, synthesize, targets
from .model import STRIDE, FaceDetNet


@dataclass
class DetTrainConfig:
    steps: int = 4000
    minutes: float = 0.0          # > 0: also stop after this many minutes of training (the LR schedule follows)
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    ema: float = 0.995
    eval_every: int = 400
    val_per_source: int = 250
    seed: int = 0
    threads: int = 1
    size: int = 192
    max_side: int = 320


class Deployed(nn.Module):
    """What ships: peak-picked face probabilities (3x3 max-pool) in channel 0, raw regression after."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        p = torch.sigmoid(y[:, :1])
        peak = p * (F.max_pool2d(p, 3, 1, 1) == p).float()
        return torch.cat([peak, y[:, 1:]], 1)


def detection_loss(pred: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor, reg: torch.Tensor,
                   rmask: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Focal loss on the centre heatmap (CenterNet: alpha 2, beta 4) + L1 on offset and log side
    + smooth L1 on the 5 points, all at the face-centre cells, normalised by the number of faces."""
    logit = pred[:, 0]
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = (heat >= 0.999).float()
    npos = pos.sum().clamp(min=1.0)
    pos_l = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_l = -(torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos) * weight).sum()
    hl = (pos_l + neg_l) / npos
    m = rmask.unsqueeze(1)
    off = (F.l1_loss(pred[:, 1:3], reg[:, 0:2], reduction="none") * m).sum() / npos
    size = (F.l1_loss(pred[:, 3:4], reg[:, 2:3], reduction="none") * m).sum() / npos
    pts = (F.smooth_l1_loss(pred[:, 4:14], reg[:, 3:13], reduction="none", beta=0.05) * m).sum() / npos
    total = hl + off + size + pts
    return total, {"heat": hl.item(), "offset": off.item(), "size": size.item(), "points": pts.item()}


def make_batch(pools, rng, cfg: DetTrainConfig, synth: SynthConfig):
    xs, hs, ws, rs, ms = [], [], [], [], []
    for _ in range(cfg.batch):
        img, faces, ignore = synthesize(pools, rng, synth)
        h, w, r, m = targets(faces, ignore, cfg.size, STRIDE)
        xs.append(img)
        hs.append(h)
        ws.append(w)
        rs.append(r)
        ms.append(m)
    x = torch.from_numpy(np.stack(xs)).float().div_(255).unsqueeze(1)
    return x, *(torch.from_numpy(np.stack(a)) for a in (hs, ws, rs, ms))


def detect_torch(deployed: nn.Module, gray: np.ndarray, max_side: int, threshold: float = 0.3):
    x, f = letterbox(gray, max_side)
    with torch.no_grad():
        out = deployed(torch.from_numpy(x))[0].numpy()
    scores, boxes, pts = decode(out, threshold)
    if len(scores):
        keep = nms_indices(boxes, scores, 0.4)
        scores, boxes, pts = scores[keep], boxes[keep] / f, pts[keep] / f
    return scores, boxes, pts


def evaluate(deployed: nn.Module, photos: list[Photo], max_side: int, thresholds=(0.3, 0.5, 0.7)) -> dict:
    """Whole-photo validation: a labelled face is found when a detection overlaps its box by
    IoU >= 0.5; a false alarm is a detection that overlaps no face (labelled or teacher's) nor
    ignore region by IoU >= 0.3."""
    deployed.eval()
    res = {t: {"found": 0, "faces": 0, "false": 0, "iou": [], "nme5": []} for t in thresholds}
    for ph in photos:
        scores, boxes, pts = detect_torch(deployed, ph.gray, max_side, min(thresholds))
        lab = ph.faces[: ph.labelled]
        lbox = box_from_points(lab)
        known = [tuple(b) for b in box_from_points(ph.faces)] + [tuple(b) for b in ph.ignore]
        for t in thresholds:
            k = scores >= t
            b, p = boxes[k], pts[k]
            r = res[t]
            for lb, lp in zip(lbox, lab):
                r["faces"] += 1
                ious = [box_iou(tuple(lb), tuple(d)) for d in b]
                if ious and max(ious) >= 0.5:
                    r["found"] += 1
                    j = int(np.argmax(ious))
                    r["iou"].append(max(ious))
                    iod = float(np.linalg.norm(lp[0] - lp[1]))
                    r["nme5"].append(float(np.linalg.norm(p[j] - lp, axis=1).mean() / max(iod, 1e-6)))
            for d in b:
                if not any(box_iou(tuple(d), kb) >= 0.3 for kb in known):
                    r["false"] += 1
    out = {}
    for t, r in res.items():
        out[f"{t:g}"] = {"recall": r["found"] / max(r["faces"], 1), "false_per_photo": r["false"] / max(len(photos), 1),
                         "median_iou": float(np.median(r["iou"])) if r["iou"] else 0.0,
                         "median_nme5_iod": float(np.median(r["nme5"])) if r["nme5"] else 0.0, "faces": r["faces"]}
    return out


def _val_sets(val: list[Photo], n: int, seed: int) -> dict[str, list[Photo]]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, srcs in (("300w+lfpw", ("300w", "lfpw")), ("udacity", ("udacity",)), ("mtfl", ("mtfl",))):
        ph = [p for p in val if p.source in srcs]
        if len(ph) > n:
            ph = [ph[i] for i in sorted(rng.choice(len(ph), n, replace=False))]
        out[name] = ph
    return out


def train_detector(data: str, out: str, teacher: str | None, cache: str, cfg: DetTrainConfig) -> dict:
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    train, val = load_photos(data, cache, teacher)
    counts = {s: sum(p.source == s for p in train) for s in ("300w", "lfpw", "udacity", "mtfl")}
    print(f"detector: {len(train)} training pictures {counts}, {len(val)} validation; prepared in {time.time() - t0:.0f} s",
          flush=True)
    pools = pools_of(train)
    vsets = _val_sets(val, cfg.val_per_source, cfg.seed)
    synth = SynthConfig(size=cfg.size)
    net = FaceDetNet()
    ema = copy.deepcopy(net).eval()  # the weight average that is validated and exported
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: dict = {"config": asdict(cfg), "train": [], "val": [], "prep_s": time.time() - t0,
                     "train_pictures": counts, "teacher_faces": int(sum(len(p.faces) - p.labelled for p in train))}
    run = {"loss": [], "parts": []}
    bar = tqdm(range(1, cfg.steps + 1), desc="train-detector", unit="step", mininterval=10)
    t_train = time.time()
    last = False
    for step in bar:
        # progress through the cosine schedule: by steps, or by the time budget when that comes first
        progress = step / cfg.steps
        if cfg.minutes > 0:
            progress = max(progress, (time.time() - t_train) / (cfg.minutes * 60))
        last = progress >= 1.0 or step == cfg.steps
        lr = cfg.lr * min(1.0, step / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        net.train()
        x, h, w, r, m = make_batch(pools, rng, cfg, synth)
        loss, parts = detection_loss(net(x), h, w, r, m)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema, (1 + step) / (10 + step))
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.mul_(d).add_(pn.detach(), alpha=1 - d)
            for be, bn in zip(ema.buffers(), net.buffers()):
                be.copy_(bn)
        run["loss"].append(loss.item())
        run["parts"].append(parts)
        if step % 50 == 0:
            pm = {k: float(np.mean([p[k] for p in run["parts"]])) for k in run["parts"][0]}
            history["train"].append({"step": step, "loss": float(np.mean(run["loss"])), **pm, "lr": lr,
                                     "elapsed_s": time.time() - t0})
            bar.set_postfix(loss=f"{np.mean(run['loss']):.3f}")
            run = {"loss": [], "parts": []}
        if step % cfg.eval_every == 0 or last or step == 25:  # 25: an early check that the path works
            dep = Deployed(ema).eval()
            ev = {name: evaluate(dep, ph, cfg.max_side) for name, ph in vsets.items()}
            history["val"].append({"step": step, "elapsed_s": time.time() - t0, **ev})
            print(f"step {step}: " + ", ".join(f"{k} recall {v['0.5']['recall']:.3f} fa/photo {v['0.5']['false_per_photo']:.3f}"
                                               for k, v in ev.items()), flush=True)
            torch.save({"state_dict": ema.state_dict(), "step": step, "config": asdict(cfg)}, outdir / "detector.pt")
            export_onnx(ema, outdir / "detector.onnx", {"step": step, "validation": ev})
            history["wall_s"] = time.time() - t0
            history["steps_done"] = step
            write_json_atomic(outdir / "history.json", history)
        if last:
            break
    history["wall_s"] = time.time() - t0
    write_json_atomic(outdir / "history.json", history)
    try:
        plot_history(history, outdir / "curves.png")
    except Exception as e:  # noqa: BLE001 - a missing matplotlib must not lose the model
        print(f"no curves ({e})")
    return history


def export_onnx(net: nn.Module, path: str | os.PathLike, info: dict) -> dict:
    """Fold BatchNorm, export with dynamic height/width, check onnxruntime against torch, write the sidecar."""
    import onnxruntime as ort

    from ... import __version__
    from ..export import _fuse_bn, sha256

    deployed = Deployed(_fuse_bn(copy.deepcopy(net).eval())).eval()
    p = Path(path)
    tmp = p.with_name(f".{p.stem}.tmp.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(deployed, (torch.rand(1, 1, 256, 320),), str(tmp), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "rows", 3: "cols"}},
                          opset_version=17, dynamo=False)
    x = np.random.default_rng(0).random((1, 1, 224, 288)).astype(np.float32)
    with torch.no_grad():
        want = deployed(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got[:, 1:] - want[:, 1:]).max() < 1e-3, "onnxruntime differs from torch"
    os.replace(tmp, p)
    meta = {"format": "facekeypoints-detector-onnx/1", "version": __version__, "stride": STRIDE,
            "input": {"name": "input", "shape": [1, 1, "H (multiple of 32)", "W (multiple of 32)"], "range": [0.0, 1.0],
                      "channels": "grey"},
            "output": {"name": "output", "channels": ["peak face probability", "offset x", "offset y", "log side / stride",
                                                      *[f"point {i} {a}" for i in range(5) for a in "xy"]]},
            "box_convention": "facekeypoints.detection.learned.box_from_points", **info, "sha256": sha256(p)}
    write_json_atomic(p.with_suffix(".json"), meta)
    return meta


def plot_history(history: dict, path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    tr = history["train"]
    s = [r["step"] for r in tr]
    for k in ("loss", "heat", "size", "points"):
        ax[0].plot(s, [r[k] for r in tr], label=k)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("step")
    ax[0].set_title("training loss")
    ax[0].legend()
    va = history["val"]
    vs = [r["step"] for r in va]
    for name in ("300w+lfpw", "udacity", "mtfl"):
        ax[1].plot(vs, [r[name]["0.5"]["recall"] for r in va], marker="o", label=name)
        ax[2].plot(vs, [r[name]["0.5"]["false_per_photo"] for r in va], marker="o", label=name)
    ax[1].set_title("validation faces found (IoU >= 0.5, score >= 0.5)")
    ax[2].set_title("validation false alarms per photo")
    for a in ax[1:]:
        a.set_xlabel("step")
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--teacher", default=None)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "fkp-detector"))
    ap.add_argument("--out", default="runs/detector")
    ap.add_argument("--steps", type=int, default=DetTrainConfig.steps)
    ap.add_argument("--minutes", type=float, default=50.0)
    ap.add_argument("--eval-every", type=int, default=DetTrainConfig.eval_every)
    args = ap.parse_args(argv)
    cfg = DetTrainConfig(steps=args.steps, minutes=args.minutes, eval_every=args.eval_every)
    h = train_detector(args.data, args.out, args.teacher, args.cache, cfg)
    print(json.dumps(h["val"][-1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
