"""The process group under ``torchrun``: who this process is, and the few collectives
the recipes, the evaluator, the teacher cache and the item encoder share.

Nothing here is a cluster of our own: ``torchrun`` starts the processes and sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``; :func:`init` joins
``torch.distributed``'s group with gloo on CPU and NCCL on GPU. Without ``WORLD_SIZE``
(a plain ``recllm train``) no group is made and every helper is a no-op, so a single
process runs exactly as it always did.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from recllm.errors import ConfigError, RecLLMError
from recllm.fsutil import atomic_folder

log = logging.getLogger(__name__)

T = TypeVar("T")
DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs, progress and results."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched() -> bool:
    """Whether ``torchrun`` (or another launcher that sets ``WORLD_SIZE``) started us."""
    return "WORLD_SIZE" in os.environ


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` (this process's GPU: ``cuda:LOCAL_RANK``) or ``auto`` (a GPU
    when there is one)."""
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RecLLMError("device 'cuda' was asked for but torch sees no GPU; use cpu or auto")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init(device: str = "cpu") -> World:
    """Join the process group when launched by ``torchrun`` (once; later calls return
    the same world); otherwise a world of one process on ``device``.

    The backend follows the device: NCCL for GPUs, gloo for CPUs."""
    if not launched():
        return World(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    where = resolve_device(device, local_rank)
    if not dist.is_initialized():
        if where.type == "cuda":
            torch.cuda.set_device(where)
        backend = "nccl" if where.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        log.debug("rank %d of %d joined (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, where)


def current() -> World:
    """The world as it is now (one process when no group was joined)."""
    if not dist.is_initialized():
        return World()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    backend = dist.get_backend()
    where = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    return World(dist.get_rank(), dist.get_world_size(), local_rank, where)


def shutdown() -> None:
    """Leave the process group (a no-op for one process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over every rank (the value itself for one process)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def all_gather_objects(obj: T) -> list[T]:
    """``obj`` of every rank, in rank order (JSON-like values; the group pickles them
    between our own processes only, never from disk)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shard(n: int, world: World | None = None) -> np.ndarray:
    """Indices ``0..n-1`` of this rank's share: every ``world_size``-th from ``rank``,
    so shares are disjoint, cover everything, and differ in size by at most one."""
    world = world or current()
    return np.arange(world.rank, n, world.world_size)


@contextmanager
def main_first(world: World | None = None) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds a cache), the others after it is done.

    An error on rank 0 reaches the others as a :class:`RecLLMError` instead of a hang."""
    world = world or current()
    if not world.distributed:
        yield
        return
    if world.is_main:
        try:
            yield
        except BaseException as exc:
            broadcast_object(f"{type(exc).__name__}: {exc}")
            raise
        broadcast_object(None)
    else:
        failed = broadcast_object(None)
        if failed is not None:
            raise RecLLMError(f"rank 0 failed: {failed}")
        yield


@contextmanager
def shared_atomic_folder(target: Path, world: World | None = None) -> Iterator[Path]:
    """A temporary folder that every rank writes into and that replaces ``target`` once
    all of them are done (:func:`recllm.fsutil.atomic_folder`, for several processes):
    rank 0 makes it and renames it; nobody leaves before the rename."""
    world = world or current()
    if not world.distributed:
        with atomic_folder(target) as tmp:
            yield tmp
        return
    if world.is_main:
        with atomic_folder(target) as tmp:
            broadcast_object(str(tmp))
            yield tmp
            barrier()  # every rank's files are written
    else:
        tmp = Path(broadcast_object(""))
        yield tmp
        barrier()
    barrier()  # the folder is in place for everyone
