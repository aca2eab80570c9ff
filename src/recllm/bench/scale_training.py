"""The training section of ``recllm bench scale``: samples/s on the SYNTHETIC
ML-20M-shaped data with 1 and with N processes (``torchrun``, DDP over gloo, one thread
each), peak memory per process, and the scaling efficiency.

Two models train: RecLLM-Adapter (the defaults of :class:`TrainConfig`: the default
frozen backbone and adapter; ``--set`` changes them) and the distillation student built
from it with the default student
(:func:`recllm.distill.student.student_train_config`; its L_rec step, the teacher's
terms left out as they read a cache). Each run is a fresh set of processes that builds
the whole pipeline (load, split, item encodings from the cache), trains ``warmup``
steps untimed, then ``steps`` timed ones, each on one global batch of
``trainer.batch_size`` sequences split across the processes. Samples/s counts the
sequences of the timed global batches over the slowest rank's wall time.

One process runs as ``python -m recllm.bench.scale_training`` (no process group, as a
plain ``recllm train``); N processes as ``torchrun --nproc-per-node N -m ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from recllm.config import apply_overrides, from_dict, to_dict
from recllm.recipes.train import TrainConfig

log = logging.getLogger(__name__)

MODELS = ("recllm-adapter", "student")


def model_configs(
    data: Path,
    cache_dir: Path,
    work: Path,
    batch_size: int,
    overrides: list[str] | None = None,
) -> dict[str, TrainConfig]:
    """RecLLM-Adapter's config on ``data`` and its student's (see the module docstring);
    ``overrides`` (``KEY=VALUE``, as ``recllm train --set``) change the adapter's config
    before the student is derived from it (tests shrink the backbone this way)."""
    from recllm.distill.config import DistillConfig
    from recllm.distill.student import student_train_config

    raw: dict[str, Any] = {
        "output_dir": str(work / "recllm-adapter"),
        "data": {"dataset": str(data), "cache_dir": str(cache_dir)},
        "trainer": {
            "batch_size": batch_size,
            "num_threads": 1,
            "progress": False,
            "tensorboard": False,
        },
    }
    teacher = from_dict(TrainConfig, apply_overrides(raw, overrides or []))
    distill = DistillConfig(
        teacher="(none: bench)", output_dir=str(work / "student"), trainer=teacher.trainer
    )
    return {"recllm-adapter": teacher, "student": student_train_config(teacher, distill)}


def run_training(
    configs: dict[str, TrainConfig],
    processes: list[int],
    steps: int,
    warmup: int,
    work: Path,
) -> dict[str, Any]:
    """Time every model at every process count (each a fresh set of processes)."""
    figures: dict[str, Any] = {"steps": steps, "warmup_steps": warmup, "models": {}}
    for name, config in configs.items():
        rows = {}
        for n in processes:
            config_path = work / f"{name}-{n}.json"
            raw = to_dict(config)
            raw["output_dir"] = str(work / "runs" / f"{name}-{n}")
            config_path.write_text(json.dumps(raw))
            rows[str(n)] = launch(config_path, n, steps, warmup, work / f"{name}-{n}.result.json")
        figures["models"][name] = with_scaling(rows)
    return figures


def with_scaling(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``rows`` (by process count) with each one's speedup over one process and its
    scaling efficiency (speedup / processes: 1.0 is linear); unchanged without a
    one-process row to compare with."""
    base = rows.get("1")
    if base is None:
        return rows
    for n, row in rows.items():
        row["speedup"] = round(row["samples_per_second"] / base["samples_per_second"], 3)
        row["scaling_efficiency"] = round(row["speedup"] / int(n), 3)
    return rows


def launch(config: Path, processes: int, steps: int, warmup: int, out: Path) -> dict[str, Any]:
    """Run the timed steps in ``processes`` fresh processes; their figures."""
    worker = ["-m", "recllm.bench.scale_training", str(config), str(out)]
    worker += ["--steps", str(steps), "--warmup", str(warmup)]
    if processes == 1:
        command = [sys.executable, *worker]
    else:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
            "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *worker,
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(
            f"training benchmark failed (exit status {done.returncode}): {' '.join(command)}"
        )
    return {"command": " ".join(command), **json.loads(out.read_text())}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(config: TrainConfig, steps: int, warmup: int) -> dict[str, Any] | None:
    """This process's part of one timed run; rank 0 returns the figures of all."""
    import torch

    from recllm import distributed
    from recllm.bench.scale import process_peak_rss_mb
    from recllm.recipes.train import TrainRecipe

    recipe = TrainRecipe(config, overwrite=True)
    recipe.setup()
    world = recipe.world
    recipe.model.train()
    batches = _endless(recipe)
    for _ in range(warmup):
        recipe.train_step(next(batches))
    distributed.barrier()
    started = time.perf_counter()
    samples = 0
    for _ in range(steps):
        batch = next(batches)
        samples += len(batch.users)
        recipe.train_step(batch)
    distributed.barrier()
    seconds = time.perf_counter() - started
    total = int(distributed.all_reduce_sum(torch.tensor(samples, device=world.device)))
    peaks = distributed.all_gather_objects(round(process_peak_rss_mb(), 1))
    recipe.cleanup()
    if not world.is_main:
        return None
    return {
        "processes": world.world_size,
        "threads_per_process": torch.get_num_threads(),
        "global_batch_size": config.trainer.batch_size,
        "samples": total,
        "seconds": round(seconds, 3),
        "samples_per_second": round(total / seconds, 2),
        "peak_rss_mb_per_process": peaks,
        "parameters": sum(p.numel() for p in recipe.model.parameters()),
        "trainable_parameters": sum(
            p.numel() for p in recipe.model.parameters() if p.requires_grad
        ),
        "train_sequences": len(recipe.train_data),
    }


def _endless(recipe: Any) -> Any:
    epoch = 0
    while True:
        recipe.sampler.set_epoch(epoch)
        yield from recipe.loader
        epoch += 1


def _worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m recllm.bench.scale_training")
    parser.add_argument("config", type=Path, help="TrainConfig as JSON")
    parser.add_argument("out", type=Path, help="where rank 0 writes the figures (JSON)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="recllm: %(message)s", stream=sys.stderr)
    from recllm import distributed

    config = from_dict(TrainConfig, json.loads(args.config.read_text()))
    try:
        figures = measure(config, args.steps, args.warmup)
    finally:
        distributed.shutdown()
    if figures is not None:
        args.out.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))


def project_epoch_seconds(rows: dict[str, dict[str, Any]], workers: list[int]) -> dict[str, Any]:
    """One model's epoch time on ``workers`` processes, projected from its measured rows
    (by process count) with Amdahl's law: the parallel fraction ``p`` is fitted to the
    largest measured speedup ``S`` on ``n`` processes, ``p = (1 - 1/S) / (1 - 1/n)``
    (clamped to [0, 1]), and an epoch of the run's training sequences takes
    ``T1 ((1 - p) + p / N)`` on ``N``, ``T1`` its measured time on one process. Each
    worker is as fast as one measured process: the projection scales this machine's
    figures, it does not know another device's speed."""
    if "1" not in rows:
        raise ValueError("the projection needs the one-process figures (processes 1)")
    base = rows["1"]
    t1 = base["train_sequences"] / base["samples_per_second"]
    n = max(int(k) for k in rows)
    if n == 1:
        raise ValueError("the projection needs a measured run on more than one process")
    speedup = rows[str(n)]["samples_per_second"] / base["samples_per_second"]
    p = min(max((1 - 1 / speedup) / (1 - 1 / n), 0.0), 1.0)
    return {
        "train_sequences": base["train_sequences"],
        "parallel_fraction": round(p, 4),
        "fitted_on_processes": n,
        "epoch_seconds": {str(w): round(t1 * ((1 - p) + p / w), 1) for w in workers},
    }
