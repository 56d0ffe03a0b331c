"""Training loop: masked MSE, group-wise validation split, best-by-NME checkpoints,
atomic saves every epoch and ``--resume`` that loses at most the running epoch.

Runs as one process, or as several under torchrun (see ``distributed.py`` and
docs/scaling.md): one process per CPU group or GPU, each taking its share of every
global batch, rank 0 alone writing files.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import FkpError
from ..fileio import write_json_atomic
from ..geometry import KAGGLE_FRAMING, Framing
from ..schema import IBUG68_REGIONS, KEYPOINT_NAMES
from . import distributed as ddp
from .checkpoint import load_checkpoint, predict_crops  # noqa: F401 - re-exported for callers of train
from .data.augment import AugmentConfig, make_batch
from .data.dataset import FaceSet, load, split
from .data.harmonise import harmonise
from .evaluate import predict_faces, set_metrics
from .model import build, count_parameters, n_points, normalise, to_keypoints


@dataclass
class TrainConfig:
    data: list[str]
    out: str = "runs/default"
    arch: str = "integral"
    epochs: int = 70  # main-phase epochs; each draws every 300-W and LFPW face three times (oversample)
    batch_size: int = 64
    lr: float | None = None  # default per optimizer
    optimizer: str | None = None  # "sgd" (Nesterov) or "adamw"; default: sgd for seed, adamw otherwise
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    seed: int = 0
    threads: int = 0  # 0 = torch default
    limit: int = 0  # use at most this many training faces (quick runs, tests)
    cache_dir: str | None = None
    augment: dict = field(default_factory=dict)
    ema: float = 0.998  # decay of the weight average that is validated and saved (0 = off)
    harmonise: bool = True  # move other sets' labels onto the 300-W convention (data/harmonise.py)
    # source -> draws of each face per epoch; MTFL (5 points) is validated on but not drawn: in the
    # same short runs it cost 300-W + LFPW accuracy at full or quarter weight (docs/training/ablation/)
    oversample: dict = field(default_factory=lambda: {"300w": 3, "lfpw": 3, "mtfl": 0})
    focus: str | None = "300w,lfpw"  # after the main epochs, train on these sources' faces alone (comma-separated) ...
    focus_epochs: int = 20  # ... for this many epochs (0 = no focus phase) ...
    focus_lr: float = 0.15  # ... from this fraction of the peak learning rate, cosine to zero
    init: str | None = None  # start from this exported ONNX model's weights (training/warmstart.py)
    derived_loss: str = "missing"  # integral68: train the derived 15 on faces without 68 labels, or "all"
    loss: str | None = None  # "mse", "l1" or "smoothl1" (L1 beyond 1 px) on the coordinates; default per arch
    region_weight: dict = field(default_factory=dict)  # integral68: iBUG region -> weight of its points in the loss
    crop_zoom: float = 1.0  # the model's crop: this many Kaggle-frame sides wide (geometry.Framing) ...
    crop_down: float = 0.0  # ... its centre this many sides lower on the face (1, 0: the Kaggle framing)

    @property
    def framing(self) -> Framing:
        return Framing(self.crop_zoom, self.crop_down)


FOCUS_EMA = 0.99  # the focus phase is a few hundred steps: the average must forget faster


#: The loss each architecture trains with unless told: L1 for ``integral`` (14 % lower 300-W NME than
#: MSE in the same short run, docs/training/ablation/), MSE elsewhere (the seed's baseline, and what
#: the other architectures were measured with); ``integral48`` and ``integral-wide``, ablations of
#: ``integral``, as ``integral``.
DEFAULT_LOSS = {"integral": "l1", "integral48": "l1", "integral-wide": "l1"}


def loss_name(cfg: TrainConfig) -> str:
    return cfg.loss or DEFAULT_LOSS.get(cfg.arch, "mse")


def _optimizer_name(cfg: TrainConfig) -> str:
    return cfg.optimizer or ("sgd" if cfg.arch == "seed" else "adamw")


def _default_lr(optimizer: str) -> float:
    return 0.01 if optimizer == "sgd" else 2e-3


LOSSES = ("mse", "l1", "smoothl1")
#: ``smoothl1``'s switch from squared to absolute error: 1 px of the 96x96 crop, in normalised units
SMOOTH_L1_BETA = 1.0 / (96 / 2)


def _pointwise(diff: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return diff**2
    if loss == "l1":
        return diff.abs()
    if loss == "smoothl1":
        a = diff.abs()
        return torch.where(a < SMOOTH_L1_BETA, 0.5 * a**2 / SMOOTH_L1_BETA, a - 0.5 * SMOOTH_L1_BETA)
    raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")


def masked_sse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """Sum of per-coordinate errors (squared for ``mse``) over present keypoints, each times its
    weight in ``mask`` (0/1, or :func:`loss_weights`): a rank's part of the global batch's mean."""
    m = mask.repeat_interleave(2, dim=1).to(pred.dtype)
    return (_pointwise(torch.where(m > 0, pred - target, torch.zeros_like(pred)), loss) * m).sum()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """Mean error over present keypoints only (MSE by default, or ``loss``): rows with
    missing points still teach the rest."""
    m = mask.repeat_interleave(2, dim=1).to(pred.dtype)
    return masked_sse(pred, target, mask, loss) / m.sum().clamp_min(1.0)


def loss_mask(m15: np.ndarray, m68: np.ndarray | None, derived: str = "missing") -> np.ndarray:
    """Which targets a 68-landmark model trains on: (N, 68 + 15), the labelled landmarks, and
    the 15 derived keypoints only on faces that lack the 68 (Kaggle rows, MTFL), so a face is
    never counted twice; ``derived="all"``: the derived 15 on every face that labels them (the
    15 then weigh twice on 68-point faces). ``m68`` None: a 15-point model, the 15 as they are."""
    if m68 is None:
        return m15
    if derived == "all":
        return np.concatenate([m68, m15], axis=1)
    return np.concatenate([m68, m15 & ~m68.any(axis=1, keepdims=True)], axis=1)


def point_weights(region_weight: dict, with68: bool) -> np.ndarray | None:
    """Per-target loss weights laid out like :func:`loss_mask` (68 landmarks, then the derived 15):
    ``region_weight`` maps iBUG regions (``schema.IBUG68_REGIONS``, e.g. ``{"jaw": 2}``) to the
    weight of their landmarks; the rest weigh 1. None when every weight is 1."""
    if not region_weight:
        return None
    bad = sorted(set(region_weight) - set(IBUG68_REGIONS))
    if bad:
        raise FkpError(f"unknown region {bad[0]!r} in --region-weight; choose from {', '.join(IBUG68_REGIONS)}")
    if not with68:
        raise FkpError("--region-weight needs a 68-landmark model (--arch integral68 or integral68-wide)")
    w = np.ones(68 + len(KEYPOINT_NAMES), np.float32)
    for name, v in region_weight.items():
        w[list(IBUG68_REGIONS[name])] = float(v)
    return w


def loss_weights(m15: np.ndarray, m68: np.ndarray | None, derived: str, weights: np.ndarray | None) -> np.ndarray:
    """:func:`loss_mask` as float weights: each present target's :func:`point_weights` (1 without them).
    The loss is the weighted mean, so the weights move emphasis between regions, not the scale."""
    m = loss_mask(m15, m68, derived)
    return m if weights is None else m * weights


def model_targets(pred: torch.Tensor, y15: torch.Tensor, y68: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, target) laid out like :func:`loss_mask`: a 68-landmark model's 68 points
    followed by the 15 derived from them."""
    if y68 is None:
        return pred, y15
    return torch.cat([pred, to_keypoints(pred)], dim=1), torch.cat([y68, y15], dim=1)


def shard_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, global_count: float, world: int,
               weight: float = 1.0, loss: str = "mse") -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to backpropagate, this rank's share of the global batch's masked MSE).

    ``global_count``: present coordinates in the whole global batch. DDP averages gradients over
    the ``world`` ranks, so the loss is scaled by ``world``: the averaged gradient is then exactly
    the gradient of the global batch's masked MSE, however unevenly the faces and missing points
    fall across the ranks. ``weight`` 0 marks a stand-in face on a rank whose share is empty."""
    part = masked_sse(pred, target, mask, loss) * (weight / max(global_count, 1.0))
    return part * world, part


def validate(model: torch.nn.Module, val: FaceSet, seed: int, env: ddp.DistEnv | None = None, refine: int = 1,
             framing: Framing = KAGGLE_FRAMING) -> dict:
    """Metrics on the validation faces, measured the way ``fkp evaluate`` and the photo pipeline
    see them: a detector-like crop (in the model's ``framing``), then ``refine`` re-centred passes. Under torchrun each rank
    predicts a contiguous shard and the predictions are gathered, so every rank computes the
    same numbers as one process would."""

    def predict(imgs: np.ndarray) -> np.ndarray:
        if env is None or (not env.distributed and env.device.type == "cpu"):
            return predict_crops(model, imgs)
        part = np.array_split(np.arange(len(imgs)), env.world)[env.rank]
        return ddp.gather_rows(env, predict_crops(model, imgs[part], device=env.device))

    _, pred, kps, msk, p68, m68 = predict_faces(predict, val, refine, seed, with68=True, framing=framing)
    return set_metrics(pred, kps, msk, p68, m68, val.sources)


def _score_key(val: FaceSet) -> str:
    return "300w" if "300w" in val.sources else "all"


def _score_metric(val: FaceSet) -> str:
    """What picks the best epoch: NME, or for Kaggle rows alone Kaggle's own metric, RMSE in the
    96x96 frame (most Kaggle rows lack the eye corners that NME divides by)."""
    return "rmse" if val.sources and all(s == "kaggle" for s in val.sources) else "nme"


def _nothing_to_train(epochs: int, focus_epochs: int, why: str = "--focus-epochs 0") -> str | None:
    if epochs + focus_epochs <= 0:
        return f"nothing to train: --epochs {epochs} and {why}; give --epochs N"
    return None


def _atomic_torch_save(obj: dict, path: Path) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # unique: no two writers share it
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(ep, [h["train_loss"] for h in history], label="train (masked loss)")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("epoch")
    ax[0].set_title("training loss")
    ax[1].plot(ep, [100 * h["val_nme"] for h in history], label="validation NME", color="C1")
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("NME (% of outer-eye distance)")
    ax[1].set_title(f"validation NME (best {100 * min(h['val_nme'] for h in history):.2f}%)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


class _Prefetch:
    """Builds augmented batches in a background thread (OpenCV releases the GIL)."""

    def __init__(self, faces: FaceSet, batches: list[np.ndarray], rng: np.random.Generator, cfg: AugmentConfig,
                 with68: bool = False, framing: Framing = KAGGLE_FRAMING):
        self.q: queue.Queue = queue.Queue(maxsize=4)
        self.n = len(batches)

        def work() -> None:
            for idx in batches:
                if with68:
                    self.q.put(make_batch(faces.contexts[idx], faces.keypoints[idx], faces.mask[idx], rng, cfg,
                                          faces.points68[idx], faces.mask68[idx], framing=framing))
                else:
                    self.q.put(make_batch(faces.contexts[idx], faces.keypoints[idx], faces.mask[idx], rng, cfg,
                                          framing=framing) + (None, None))

        self.t = threading.Thread(target=work, daemon=True)
        self.t.start()

    def __iter__(self):
        for _ in range(self.n):
            yield self.q.get()


class _Ema:
    """Exponential moving average of the weights (and BatchNorm statistics).

    The averaged copy is what is validated, kept as best and exported: late in training
    single-epoch checkpoints wander by several per cent of validation NME, and the
    average sits at the bottom of that wander instead of at a random point of it.
    The decay ramps up from 0 so that the average does not remember the random start.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        import copy

        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        src = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(src[k].detach(), alpha=1 - d)
            else:
                v.copy_(src[k])


def _grad_scaler():
    """Loss scaling for fp16 on CUDA (torch.amp.GradScaler from torch 2.3, torch.cuda.amp before)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def _quiet(*_args, **_kw) -> None:
    pass


def sampling_index(sources: list[str], oversample: dict, rng: np.random.Generator | None = None) -> np.ndarray:
    """Face indices for one epoch: each face once, or ``oversample[source]`` times.

    Extra draws of the human-labelled set shift the balance towards its convention and
    its harder faces, without dropping the other sets' variety. A fractional part (e.g.
    ``mtfl=0.25``) draws that share of the source's faces, a different subset each epoch
    (``rng``; without it the first ones), so every epoch has the same length."""
    src = np.asarray(sources)
    reps = np.array([max(int(oversample.get(s, 1)), 0) for s in sources], dtype=np.int64)
    parts = [np.repeat(np.arange(len(sources)), reps)]
    for name, k in oversample.items():
        frac = float(k) - int(k)
        if frac > 0:
            idx = np.flatnonzero(src == name)
            n = int(round(frac * len(idx)))
            parts.append(np.sort(idx[rng.permutation(len(idx))[:n]] if rng is not None else idx[:n]))
    return np.sort(np.concatenate(parts), kind="stable")


def lr_factor(step: int, main_total: int, warm: int, focus_total: int, focus_lr: float) -> float:
    """Learning-rate multiplier: warm-up then cosine to 2% over the main phase; then, for a
    focus phase, a second cosine from ``focus_lr`` to zero."""
    if step < main_total or focus_total <= 0:
        return min(1.0, (step + 1) / warm) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(step / main_total, 1.0))))
    f = min((step - main_total) / focus_total, 1.0)
    return focus_lr * 0.5 * (1 + math.cos(math.pi * f))


def train(cfg: TrainConfig, resume: bool = False, log=print, device: str = "auto", amp: bool = True) -> dict:
    """Train a model; returns the best validation metrics. Writes to ``cfg.out``:
    ``last.pt`` (every epoch), ``best.pt``, ``history.json``, ``curves.png``.

    ``device``: auto (CUDA if available), cpu or cuda. ``amp``: mixed precision on CUDA (bf16 where
    supported, else fp16 with loss scaling); the CPU always trains in float32. Under torchrun
    (WORLD_SIZE > 1) the processes train one model together; only rank 0 logs and writes."""
    if (msg := _nothing_to_train(cfg.epochs, cfg.focus_epochs if cfg.focus else 0,
                                 "--focus-epochs 0" if cfg.focus else "no --focus set")) is not None:
        raise FkpError(msg)
    if cfg.loss is not None and cfg.loss not in LOSSES:
        raise FkpError(f"unknown loss {cfg.loss!r}; choose from {', '.join(LOSSES)}")
    point_weights(cfg.region_weight, cfg.arch.startswith("integral68"))  # refuses unknown regions before any data is read
    bad = sorted(set(cfg.augment) - set(AugmentConfig.__dataclass_fields__))
    if bad:
        raise FkpError(f"unknown augmentation setting {bad[0]!r}; choose from {', '.join(AugmentConfig.__dataclass_fields__)}")
    if not cfg.framing.in_range:
        raise FkpError(f"crop framing out of range: --crop-zoom {cfg.crop_zoom} ({Framing.ZOOM_TEXT}), "
                       f"--crop-down {cfg.crop_down} ({Framing.DOWN_TEXT})")
    if not cfg.framing.identity and not cfg.arch.startswith("integral68"):
        # the photo pipeline's refinement, gates and tracker frame faces with the 15-point model's own crops
        raise FkpError(f"--crop-zoom/--crop-down are for 68-point models (--arch integral68...), not {cfg.arch}")
    env = ddp.setup(device)
    try:
        return _train(cfg, resume, log if env.main else _quiet, env, amp)
    finally:
        ddp.teardown(env)


def _load_resume_state(path: Path, env: ddp.DistEnv) -> dict:
    """Rank 0 reads ``last.pt`` and hands it to every rank (no shared file system needed)."""
    state: dict | str | None = None
    if env.main:
        if not path.exists():
            state = f"{path}: nothing to resume (no checkpoint written yet)"
        else:
            state = torch.load(path, map_location="cpu", weights_only=False)
    state = ddp.broadcast_object(env, state)
    if isinstance(state, str):
        raise FkpError(state)
    return state


def _train(cfg: TrainConfig, resume: bool, log, env: ddp.DistEnv, amp: bool) -> dict:
    out = Path(cfg.out)  # made once the data is known good: bad data leaves no empty run folder
    last_path, best_path = out / "last.pt", out / "best.pt"
    state = None
    if resume:
        state = _load_resume_state(last_path, env)
        saved = state["config"]
        saved["epochs"] = cfg.epochs  # allow extending a finished run
        saved.setdefault("ema", 0.0)  # runs from before these options had neither
        saved.setdefault("harmonise", False)
        saved["focus"], saved["focus_epochs"] = cfg.focus, cfg.focus_epochs  # a finished run may gain a focus phase
        saved.setdefault("oversample", {})
        saved.setdefault("loss", "mse")
        saved.setdefault("region_weight", {})
        cfg = TrainConfig(**saved)
    cfg.loss = loss_name(cfg)  # recorded in the checkpoints and history
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    # with a cache, one process fills it and the others read it
    faces = ddp.staged(env, lambda: load(cfg.data, cfg.cache_dir)) if cfg.cache_dir else load(cfg.data, cfg.cache_dir)
    tr_idx, va_idx = split(faces, cfg.val_fraction, cfg.seed)
    if cfg.limit:
        tr_idx = np.random.default_rng(cfg.seed).permutation(tr_idx)[: cfg.limit]
    if len(tr_idx) == 0:
        raise FkpError("no training faces after the validation split")
    train_set, val_set = faces.subset(tr_idx), faces.subset(va_idx)
    if cfg.harmonise:
        train_set = harmonise(train_set)  # validation keeps every set's own labels
    if len(val_set) == 0:
        raise FkpError("validation split is empty: use more data or a larger --val-fraction")
    focus_set = None
    if cfg.focus and cfg.focus_epochs > 0:
        focus_sources = set(cfg.focus.split(","))
        fidx = [i for i, s in enumerate(train_set.sources) if s in focus_sources]
        if fidx:
            focus_set = train_set.subset(fidx)
        else:
            log(f"focus phase skipped: no '{cfg.focus}' faces in the training data")
    focus_epochs = cfg.focus_epochs if focus_set is not None else 0
    if (msg := _nothing_to_train(cfg.epochs, focus_epochs, f"no focus phase (no '{cfg.focus}' faces in the data)")):
        raise FkpError(msg)
    main_index = sampling_index(train_set.sources, cfg.oversample)
    main_index_fixed = all(float(k) == int(k) for k in cfg.oversample.values())  # else redrawn each epoch
    if cfg.epochs and not len(main_index):
        raise FkpError(f"--oversample {' '.join(f'{k}={v}' for k, v in cfg.oversample.items())} draws none of the "
                       f"training faces ({', '.join(sorted(set(train_set.sources)))}); give e.g. --oversample mtfl=1")
    key, metric = _score_key(val_set), _score_metric(val_set)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
    log(f"faces: {len(train_set)} train, {len(val_set)} validation "
        f"({len(set(val_set.groups))} photos/people/rows held out; best model chosen on '{key}' {metric.upper()})")

    model = build(cfg.arch)
    with68 = n_points(model) != len(KEYPOINT_NAMES)
    pw = point_weights(cfg.region_weight, with68)
    if cfg.init and state is None:
        from .warmstart import init_from_onnx

        calib_idx = np.random.default_rng(cfg.seed + 1).permutation(len(train_set))[:256]
        calib = make_batch(train_set.contexts[calib_idx], train_set.keypoints[calib_idx], train_set.mask[calib_idx],
                           np.random.default_rng(cfg.seed + 1), AugmentConfig(**cfg.augment), framing=cfg.framing)[0]
        full = train_set.mask68.all(axis=1)
        mean68 = train_set.points68[full].mean(axis=0) if full.any() else None
        n = init_from_onnx(model, cfg.init, calib, mean68)
        log(f"started from {cfg.init} ({n} convolutions)")
    model = model.to(env.device)
    opt_name = _optimizer_name(cfg)
    lr = cfg.lr or _default_lr(opt_name)
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(main_index) / cfg.batch_size)
    focus_steps = math.ceil(len(focus_set) / cfg.batch_size) if focus_set is not None else 0
    total = max(cfg.epochs * steps_per_epoch, 1)
    warm = min(steps_per_epoch * 2, total // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, warm, focus_epochs * focus_steps, cfg.focus_lr))
    log(f"model {cfg.arch}: {count_parameters(model):,} weights; {cfg.loss} loss, lr {lr}, {cfg.epochs} epochs of {steps_per_epoch} steps"
        + (f", then {focus_epochs} on '{cfg.focus}' alone ({focus_steps} steps, lr {cfg.focus_lr * lr:g})" if focus_epochs else ""))
    amp_dtype = None
    if env.device.type == "cuda" and amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = _grad_scaler() if amp_dtype == torch.float16 else None
    if env.distributed or env.device.type != "cpu":
        log(f"{env.world} process(es) on {env.device.type}"
            f"{'' if amp_dtype is None else ', mixed precision ' + str(amp_dtype).removeprefix('torch.')}; "
            f"global batch {cfg.batch_size} = about {math.ceil(cfg.batch_size / env.world)} per process")

    history: list[dict] = []
    best = math.inf
    start_epoch = 0
    rng = np.random.default_rng(cfg.seed)
    if state is not None:
        model.load_state_dict(state.get("train_model", state["model"]))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = state["history"]
        best = state["best"]
        start_epoch = state["epoch"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        log(f"resumed from {last_path} after epoch {start_epoch}")
    ema = _Ema(model, cfg.ema) if cfg.ema else None
    if ema is not None and state is not None:
        ema.model.load_state_dict(state["model"])
        ema.updates = state.get("ema_updates", start_epoch * steps_per_epoch)
    net: torch.nn.Module = model
    if env.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)

    aug = AugmentConfig(**cfg.augment)
    best_metrics: dict = state.get("best_metrics", {}) if state else {}
    debug_shards = os.environ.get("FKP_DEBUG_SHARDS") == "1"
    for epoch in range(start_epoch, cfg.epochs + focus_epochs):
        net.train()
        in_focus = epoch >= cfg.epochs
        cur = focus_set if in_focus else train_set
        index = (np.arange(len(cur)) if in_focus else
                 main_index if main_index_fixed else sampling_index(train_set.sources, cfg.oversample, rng))
        if in_focus and ema is not None:
            ema.decay = min(cfg.ema, FOCUS_EMA)
        order = index[rng.permutation(len(index))]
        n_steps = focus_steps if in_focus else steps_per_epoch
        t0 = time.time()
        losses = []
        if env.distributed:
            # same permutation everywhere; own augmentation/dropout streams per rank
            shares = ddp.shard_batches(order, cfg.batch_size, env.rank, env.world)
            counts = [2.0 * float(loss_weights(cur.mask[b], cur.mask68[b] if with68 else None, cfg.derived_loss, pw).sum())
                      for b in (order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size))]
            weights = [1.0 if len(s) else 0.0 for s in shares]  # an empty share runs one face at weight 0
            batches = [np.sort(s if len(s) else order[i * cfg.batch_size:][:1]) for i, s in enumerate(shares)]
            aug_rng = np.random.default_rng(ddp.rank_seed(cfg.seed, env.rank, epoch))
            torch.manual_seed(ddp.rank_seed(cfg.seed, env.rank, epoch))
        else:
            batches = [np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size]) for i in range(n_steps)]
            aug_rng = rng
        if debug_shards:
            seen = np.concatenate([b for b, w in zip(batches, weights if env.distributed else [1.0] * len(batches))
                                   if w]).tolist()
            write_json_atomic(out / "debug-shards" / f"epoch{epoch + 1}-rank{env.rank}.json",
                        {"epoch": epoch + 1, "rank": env.rank, "world": env.world, "train_size": len(cur),
                         "indices": seen})
        bar = tqdm(_Prefetch(cur, batches, aug_rng, aug, with68, cfg.framing), total=len(batches),
                   desc=f"epoch {epoch + 1}/{cfg.epochs + focus_epochs}", leave=False, dynamic_ncols=True, disable=not env.main)
        for step, (imgs, kps, msk, k68, m68) in enumerate(bar):
            x = torch.from_numpy(imgs).to(env.device).float().div_(255).unsqueeze(1)
            y = normalise(torch.from_numpy(np.nan_to_num(kps)).reshape(len(kps), -1)).to(env.device)
            y68 = None if k68 is None else normalise(torch.from_numpy(np.nan_to_num(k68)).reshape(len(k68), -1)).to(env.device)
            m = torch.from_numpy(loss_weights(msk, m68, cfg.derived_loss, pw)).to(env.device)
            with torch.autocast(env.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
                pred, y = model_targets(net(x).float(), y, y68)
            if env.distributed:
                # DDP averages gradients over the ranks: scale so they add up to the global batch's MSE
                loss, part = shard_loss(pred.float(), y, m, counts[step], env.world, weights[step], cfg.loss)
                losses.append(part.item())
            else:
                loss = masked_mse(pred.float(), y, m, cfg.loss)
                losses.append(loss.item())
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            sched.step()
            if ema is not None:
                ema.update(model)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]) * env.world:.4f}")
        judged = model if ema is None else ema.model  # the weights that are validated and saved as best
        if env.distributed:
            train_loss = ddp.all_sum(env, [float(np.sum(losses))])[0] / len(batches)
            ddp.broadcast_buffers(env, model)
            if ema is not None:
                ddp.broadcast_buffers(env, ema.model)
            val = validate(judged, val_set, cfg.seed, env, framing=cfg.framing)
        else:
            train_loss = float(np.mean(losses))
            val = validate(judged, val_set, cfg.seed, env if env.device.type != "cpu" else None, framing=cfg.framing)
        score = val[key][metric]
        if not math.isfinite(score):  # no validation face has the points NME needs
            score = val[key]["rmse"]
        h = {"epoch": epoch + 1, "train_loss": train_loss, "val_nme": val[key]["nme"],
             "val_rmse": val[key]["rmse"], "lr": sched.get_last_lr()[0], "seconds": time.time() - t0}
        if "nme68" in val[key]:
            h["val_nme68"] = val[key]["nme68"]
        for src in val:
            if src not in ("all", key):
                h[f"val_nme_{src}"] = val[src]["nme"] if np.isfinite(val[src]["nme"]) else val[src].get("nme_eye_centres")
        history.append(h)
        improved = score < best
        if improved:
            best = score
            best_metrics = val
        if env.main:
            ckpt = {"arch": cfg.arch, "model": ddp.to_cpu(judged.state_dict()), "keypoints": list(KEYPOINT_NAMES),
                    "config": asdict(cfg), "epoch": epoch + 1, "history": history, "best": best,
                    "best_metrics": best_metrics, "metrics": val, "world_size": env.world,
                    "device": env.device.type}
            if improved:
                _atomic_torch_save(ckpt, best_path)
            if ema is not None:  # "model" holds the average; resuming needs the raw weights too
                ckpt.update(train_model=ddp.to_cpu(model.state_dict()), ema_updates=ema.updates)
            ckpt.update(optimizer=ddp.to_cpu(opt.state_dict()), scheduler=sched.state_dict(),
                        rng=rng.bit_generator.state, torch_rng=torch.get_rng_state())
            if scaler is not None:
                ckpt["scaler"] = scaler.state_dict()
            _atomic_torch_save(ckpt, last_path)
            write_json_atomic(out / "history.json", {"config": asdict(cfg), "history": history, "best": best_metrics})
            _plot_curves(history, out / "curves.png")
        ddp.barrier(env)
        log(f"epoch {epoch + 1:3d}/{cfg.epochs + focus_epochs}{' focus' if in_focus else ''}  loss {h['train_loss']:.5f}  val NME {100 * h['val_nme']:.2f}%  "
            f"RMSE {h['val_rmse']:.3f}px" + (f"  NME68 {100 * h['val_nme68']:.2f}%" if "val_nme68" in h else "")
            + f"  {h['seconds']:.0f}s{'  *best' if improved else ''}")
    return best_metrics
