"""fkp train: train a keypoint model on 300-W, LFPW, MTFL, Udacity and/or Kaggle data.

Runs as is under torchrun for several processes or machines, e.g.
``torchrun --nproc_per_node=2 -m facekeypoints.cli train ...`` (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import os

from ..schema import IBUG68_REGIONS
from .options import decay, fraction, non_negative_int, positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a keypoint model", description=__doc__)
    p.add_argument("--data", nargs="+", required=True,
                   help="data sets: 300-W or LFPW folders, MTFL landmarks.txt, Udacity *_frames_keypoints.csv, "
                        "Kaggle training.csv, or folders holding them")
    p.add_argument("--out", default="runs/default", help="run folder: last.pt, best.pt, history.json, curves.png")
    p.add_argument("--arch", default="integral",
                   choices=["integral", "integral68", "integral-wide", "integral68-wide", "integral48", "compact", "seed"],
                   help="integral (default): heatmaps + soft-argmax; integral68: the same with the 68 iBUG landmarks, "
                        "the 15 derived from them; integral-wide, integral68-wide: the same with wider middle "
                        "stages; integral48: an ablation (48x48 heatmaps); compact: dense-layer regression; "
                        "seed: the original write-up")
    p.add_argument("--epochs", type=non_negative_int, default=70,
                   help="main-phase epochs (the focus phase comes after them; 0 = focus phase only)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="faces per optimisation step")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default=None,
                   help="default: sgd with Nesterov momentum for seed (as the original write-up), adamw otherwise")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default: 2e-3 with AdamW, 0.01 with SGD)")
    p.add_argument("--val-fraction", type=fraction, default=0.15,
                   help="share held out for validation: by photo (300-W), by person (Udacity), by row (Kaggle)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation split, the weights and the augmentation")
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--limit", type=non_negative_int, default=0, help="train on at most N faces (quick runs; 0 = all)")
    p.add_argument("--cache-dir", default=None, help="cache decoded face crops here (faster repeated runs)")
    p.add_argument("--ema", type=decay, default=0.998,
                   help="decay of the weight average that is validated, kept and exported (0 = plain weights)")
    p.add_argument("--harmonise", action=argparse.BooleanOptionalAction, default=True,
                   help="move Udacity's and MTFL's labels onto the 300-W convention for training (data/harmonise.py)")
    p.add_argument("--oversample", nargs="*", default=["300w=3", "lfpw=3", "mtfl=0"], metavar="SOURCE=K",
                   help="draw each face of SOURCE (300w, lfpw, mtfl, udacity, kaggle) K times per epoch (a fraction: that share, "
                        "a new subset each epoch; default: "
                        "300w=3 lfpw=3, the human-labelled 68-point photos, and mtfl=0: validated on, not drawn; "
                        "give the option without values for none)")
    p.add_argument("--focus", default="300w,lfpw", metavar="SOURCE[,SOURCE]",
                   help="after the main epochs, train on these sources' faces alone at a low learning rate "
                        "(default: 300w,lfpw; skipped when the data has none)")
    p.add_argument("--focus-epochs", type=non_negative_int, default=20, help="length of the focus phase (0 = none)")
    p.add_argument("--init", default=None, metavar="MODEL.onnx",
                   help="start from an exported 'integral' model's weights, e.g. src/facekeypoints/models/default.onnx "
                        "(integral68: each landmark's heatmap starts as its keypoint's; a wider model, e.g. integral68-wide "
                        "from integral, starts computing the narrower one's function, its extra channels "
                        "unread at first; a 68-point model, e.g. points68.onnx, continues from it; default: random weights)")
    p.add_argument("--derived-loss", choices=["missing", "all"], default="missing",
                   help="integral68 and integral68-wide: train the 15 derived keypoints on faces without 68 labels only, or on all faces")
    p.add_argument("--loss", choices=["mse", "l1", "smoothl1"], default=None,
                   help="error on the coordinates: mse, l1, or smoothl1 (squared within 1 px, L1 beyond); "
                        "default: l1 for integral, integral48 and integral-wide, mse for the others "
                        "(seed: the original write-up's)")
    p.add_argument("--region-weight", nargs="*", default=[], metavar="REGION=W",
                   help="integral68: weight of an iBUG region's landmarks in the loss, e.g. jaw=2 "
                        "(regions: " + ", ".join(IBUG68_REGIONS) + "; the others weigh 1)")
    p.add_argument("--crop-zoom", type=float, default=1.0,
                   help="integral68 models: crop this many Kaggle-frame sides wide, so the jaw fits (the sidecar "
                        "records it and the photo pipeline cuts its crops so; 1 = the Kaggle framing)")
    p.add_argument("--crop-down", type=float, default=0.0,
                   help="integral68 models: move the crop's centre this many Kaggle-frame sides down the face")
    p.add_argument("--augment", nargs="*", default=[], metavar="NAME=VALUE",
                   help="override augmentation settings (training/data/augment.py AugmentConfig), "
                        "e.g. detector_jitter=1.2 occlude=0.3")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pt (--epochs, --focus and --focus-epochs may extend a finished run)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto = CUDA when available (under torchrun: GPU LOCAL_RANK)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="mixed precision on CUDA (bf16, else fp16 with loss scaling); the CPU always uses float32")
    p.set_defaults(func=run)


def _name_number(item: str) -> tuple[str, float | None]:
    """``NAME=VALUE`` -> (NAME, VALUE as a float, or None when it is not a number)."""
    name, _, v = item.partition("=")
    try:
        return name, float(v)
    except ValueError:
        return name, None


def _oversample(items: list[str]) -> dict[str, float]:
    from ..errors import FkpError

    out: dict[str, float] = {}
    for it in items:
        name, v = _name_number(it)
        if not name or v is None or not (0 <= v < 1000):
            raise FkpError(f"--oversample {it!r}: expected SOURCE=K with K a number >= 0, e.g. 300w=3 or mtfl=0.25")
        out[name] = int(v) if v == int(v) else v
    return out


def _region_weight(items: list[str]) -> dict[str, float]:
    from ..errors import FkpError

    out = {}
    for it in items:
        name, w = _name_number(it)
        if name not in IBUG68_REGIONS or w is None or not 0 <= w < 1000:
            raise FkpError(f"--region-weight {it!r}: expected REGION=W with W a number >= 0 and REGION one of "
                           f"{', '.join(IBUG68_REGIONS)}, e.g. jaw=2")
        out[name] = w
    return out


def _augment(items: list[str]) -> dict[str, float]:
    from ..errors import FkpError

    out = {}
    for it in items:
        name, v = _name_number(it)
        if v is None:
            raise FkpError(f"--augment {it!r}: expected NAME=VALUE with a number, e.g. occlude=0.3")
        if not name or not v >= 0 or v == float("inf"):
            raise FkpError(f"--augment {it!r}: expected NAME=VALUE with a number >= 0, e.g. occlude=0.3")
        out[name] = v
    return out


def run(args: argparse.Namespace) -> int:
    from ..fileio import check_output_dir

    check_output_dir(args.out, "run folder (--out)")  # before torch loads and data is read
    from ..training.train import TrainConfig, train

    cfg = TrainConfig(data=args.data, out=args.out, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, optimizer=args.optimizer, val_fraction=args.val_fraction, seed=args.seed, threads=args.threads,
                      limit=args.limit, cache_dir=args.cache_dir, ema=args.ema, harmonise=args.harmonise,
                      oversample=_oversample(args.oversample), focus=args.focus, focus_epochs=args.focus_epochs,
                      init=args.init, derived_loss=args.derived_loss, loss=args.loss, augment=_augment(args.augment),
                      region_weight=_region_weight(args.region_weight), crop_zoom=args.crop_zoom,
                      crop_down=args.crop_down)
    best = train(cfg, resume=args.resume, device=args.device, amp=args.amp)
    if os.environ.get("RANK", "0") not in ("", "0"):
        return 0  # under torchrun only rank 0 reports
    key = "300w" if "300w" in best else "all"
    print(f"best validation ({key}): NME {100 * best[key]['nme']:.2f}%  RMSE {best[key]['rmse']:.3f}px -> {args.out}/best.pt")
    return 0
