"""Run a function in N processes joined by a gloo process group, as ``torchrun`` would
start them (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT`` on loopback)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(fn: Callable[..., Any], world_size: int, *args: Any) -> None:
    """``fn(rank, *args)`` in ``world_size`` fresh processes; raises if any fails."""
    mp.start_processes(
        _entry,
        args=(fn, world_size, free_port(), args),
        nprocs=world_size,
        join=True,
        start_method="spawn",
    )


def _entry(rank: int, fn: Callable[..., Any], world_size: int, port: int, args: tuple) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        HF_HUB_OFFLINE="1",
    )
    torch.set_num_threads(1)
    from recllm import distributed

    try:
        fn(rank, *args)
    finally:
        distributed.shutdown()
