"""Multi-process training helpers (torch.distributed), used by ``fkp train`` under torchrun.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK (and MASTER_ADDR / MASTER_PORT); without them,
or with WORLD_SIZE=1, everything here is a no-op and training runs exactly as in one process.
The split keeps the single-process maths: every rank draws the same seeded permutation and
the same global batches of ``batch_size``; each global batch is dealt out across the ranks,
so one optimiser step still sees ``batch_size`` faces and the LR schedule is unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from ..errors import FkpError

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job; ``world == 1`` means a plain single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # setup() joined the group, so teardown() leaves it

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` = CUDA when available; under torchrun each process takes GPU ``LOCAL_RANK``."""
    if name not in ("auto", "cpu", "cuda"):
        raise FkpError(f"--device must be auto, cpu or cuda, not {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise FkpError("--device cuda: no CUDA device is available to torch here")
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise FkpError(f"LOCAL_RANK {local_rank} but only {n} CUDA device(s): use --nproc_per_node <= {n}")
    return torch.device("cuda", local_rank)


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    try:
        return int(v) if v not in (None, "") else default
    except ValueError:
        raise FkpError(f"environment variable {name}={v!r} is not an integer") from None


def setup(device: str = "auto") -> DistEnv:
    """Read torchrun's environment, pick the device and (for WORLD_SIZE > 1) join the process
    group: NCCL for CUDA, gloo for CPU."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device, local_rank if world > 1 else 0)
    if world <= 1:
        return DistEnv(device=dev)
    import torch.distributed as dist

    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistEnv(rank=rank, world=world, local_rank=local_rank, device=dev, owns_group=owns)


def teardown(env: DistEnv) -> None:
    if env.owns_group:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        if env.device.type == "cuda":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()


def staged(env: DistEnv, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 first, then on each node's first process, then on the rest, so a
    file cache is written by one process and read by the others (no two writers at once)."""
    result: T | None = None
    for turn in (env.rank == 0, env.rank != 0 and env.local_rank == 0, env.local_rank != 0):
        if turn:
            result = fn()
        barrier(env)
    return result  # type: ignore[return-value]


def broadcast_object(env: DistEnv, obj: T) -> T:
    """Rank 0's ``obj`` on every rank (pickled; for checkpoints and small results)."""
    if not env.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, device=env.device if env.device.type == "cuda" else None)
    return box[0]


def gather_rows(env: DistEnv, part: np.ndarray) -> np.ndarray:
    """Concatenate every rank's rows in rank order (each rank holds one contiguous shard)."""
    if not env.distributed:
        return part
    import torch.distributed as dist

    parts: list = [None] * env.world
    dist.all_gather_object(parts, part)
    return np.concatenate(parts)


def all_sum(env: DistEnv, values: list[float]) -> list[float]:
    """Element-wise sum of a few floats over the ranks (float64)."""
    if not env.distributed:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return t.cpu().tolist()


def broadcast_buffers(env: DistEnv, module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics drift apart per rank,
    and the checkpoint holds rank 0's), so validation scores the model that is saved."""
    if not env.distributed:
        return
    import torch.distributed as dist

    for b in module.buffers():
        dist.broadcast(b.data, src=0)


def shard_batches(order: np.ndarray, batch_size: int, rank: int, world: int) -> list[np.ndarray]:
    """This rank's share of each global batch ``order[i*bs:(i+1)*bs]``: every ``world``-th face
    from position ``rank``. The ranks' shares are disjoint and together are the whole epoch,
    each rank gets the same number of steps, and per-rank batches are ``ceil(bs / world)`` or
    one fewer. A share can be empty only in a last batch smaller than ``world``."""
    n = len(order)
    return [order[i:i + batch_size][rank::world] for i in range(0, n, batch_size)]


def rank_seed(seed: int, rank: int, epoch: int) -> int:
    """A 63-bit seed for (seed, rank, epoch): independent streams per rank, and a resumed epoch
    redraws exactly what it drew before without saving every rank's generator."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DistributedDataParallel (state_dict keys without ``module.``)."""
    return model.module if hasattr(model, "module") else model


def to_cpu(obj):
    """The checkpoint with every tensor on the CPU (loads on any machine); CPU tensors and the
    state_dict's type and ``_metadata`` are kept as they are."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.device.type == "cpu" else obj.detach().cpu()
    if isinstance(obj, dict):
        new = type(obj)((k, to_cpu(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            new._metadata = obj._metadata
        return new
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(v) for v in obj)
    return obj
