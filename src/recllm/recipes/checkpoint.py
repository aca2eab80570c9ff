"""Training checkpoints as safetensors + JSON: model, optimizer, scheduler, RNG, loop state.

Nothing is pickled. Optimizer state tensors go to ``optimizer.safetensors`` under keys
``state.<param index>.<name>``; everything else (param groups, scheduler counters, loop
state) is JSON. Together with the RNG states this lets ``--resume`` continue a run so
that it ends with bit-identical weights to an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from recllm.distributed import World, all_gather_objects
from recllm.errors import RecLLMError
from recllm.fsutil import atomic_folder, damaged_file_errors

log = logging.getLogger(__name__)

STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.safetensors"
RNG_NAME = "rng.safetensors"
TRAINABLE_NAME = "trainable.safetensors"


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter that trains (adapter, and LoRA/full backbone weights if any)."""
    return {
        n: p.detach().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad
    }


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    state: dict[str, Any],
    rng: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write a checkpoint atomically (a half-written folder is never mistaken for one).

    ``rng``: every rank's RNG states (:func:`rng_states`) when several processes train;
    None: this process's."""
    with atomic_folder(folder) as tmp:
        save_file(trainable_state(model), str(tmp / TRAINABLE_NAME))
        opt = optimizer.state_dict()
        tensors = {
            f"state.{index}.{key}": value.contiguous()
            for index, entries in opt["state"].items()
            for key, value in entries.items()
            if isinstance(value, torch.Tensor)
        }
        save_file(tensors, str(tmp / OPTIMIZER_NAME))
        save_file(rng or rng_states(generator, World()), str(tmp / RNG_NAME))
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        payload = {"loop": state, "param_groups": opt["param_groups"], "scheduler": sched}
        (tmp / STATE_NAME).write_text(json.dumps(payload, indent=1, default=_jsonable))


def rng_states(generator: torch.Generator, world: World) -> dict[str, torch.Tensor]:
    """Every rank's torch and generator RNG states, on every rank (rank 0's under the
    plain names, rank r's as ``torch.r`` / ``generator.r``)."""
    mine = (torch.get_rng_state(), generator.get_state().cpu())
    gathered = all_gather_objects(mine) if world.distributed else [mine]
    states: dict[str, torch.Tensor] = {}
    for rank, (cpu, gen) in enumerate(gathered):
        suffix = f".{rank}" if rank else ""
        states[f"torch{suffix}"], states[f"generator{suffix}"] = cpu, gen
    return states


def restore_rng(
    rng: dict[str, torch.Tensor], generator: torch.Generator, world: World, step: int
) -> None:
    """This rank's RNG states from a checkpoint. A rank it holds none for (the run
    resumes with more processes) gets fresh states, distinct per rank, from the step."""
    suffix = f".{world.rank}" if world.rank else ""
    if f"torch{suffix}" in rng:
        torch.set_rng_state(rng[f"torch{suffix}"])
        generator.set_state(rng[f"generator{suffix}"].to(generator.device))
        return
    log.info("rank %d: no RNG state in the checkpoint; seeding afresh", world.rank)
    seed = 1_000_003 * (world.rank + 1) + step
    torch.manual_seed(seed)
    generator.manual_seed(seed + 1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return str(value)


def load_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    world: World | None = None,
) -> dict[str, Any]:
    """Restore everything :func:`save_checkpoint` wrote; returns the loop state.

    Every file is read and checked before anything is restored, so a damaged checkpoint
    raises :class:`RecLLMError` and leaves model and optimiser as they were."""
    weights, payload, tensors, rng = _read(folder)
    params = dict(model.named_parameters())
    unknown = sorted(set(weights) - set(params))
    missing = sorted(n for n, p in params.items() if p.requires_grad and n not in weights)
    if unknown or missing:
        raise RecLLMError(
            f"checkpoint {folder} does not match this model (unknown: {unknown[:5]}, missing: {missing[:5]}); "
            "was it made with another config?"
        )
    for name, value in weights.items():
        if params[name].shape != value.shape:
            raise RecLLMError(
                f"checkpoint {folder}: {name} has shape {tuple(value.shape)}, model has {tuple(params[name].shape)}"
            )
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    state: dict[int, dict[str, torch.Tensor]] = {}
    try:
        for key, value in tensors.items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": payload["param_groups"]})
        scheduler.load_state_dict(
            {**payload["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)}
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RecLLMError(
            f"checkpoint {folder}: the optimiser state does not fit this model ({exc})"
        ) from exc
    restore_rng(rng, generator, world or World(), int(payload["loop"].get("step", 0)))
    return dict(payload["loop"])


def _read(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict, dict]:
    """(weights, JSON state, optimiser tensors, RNG states) of a checkpoint; a missing,
    truncated or unparsable file is a :class:`RecLLMError` naming it."""
    for name in (STATE_NAME, OPTIMIZER_NAME, RNG_NAME, TRAINABLE_NAME):
        if not (folder / name).is_file():
            raise RecLLMError(f"{folder} is not a complete checkpoint: {name} is missing")
    with damaged_file_errors(folder):
        payload = json.loads((folder / STATE_NAME).read_text())
        if not isinstance(payload, dict) or not {"loop", "param_groups", "scheduler"} <= set(
            payload
        ):
            raise RecLLMError(f"{folder / STATE_NAME} is not a trainer state")
        tensors = load_file(str(folder / OPTIMIZER_NAME))
        if any(len(key.split(".", 2)) != 3 for key in tensors):
            raise RecLLMError(f"{folder / OPTIMIZER_NAME} holds no optimiser state")
        rng = load_file(str(folder / RNG_NAME))
        if not {"torch", "generator"} <= set(rng):
            raise RecLLMError(f"{folder / RNG_NAME} holds no RNG states")
        return load_file(str(folder / TRAINABLE_NAME)), payload, tensors, rng


def load_latest_intact(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    world: World | None = None,
    step: torch.nn.Module | None = None,
) -> tuple[Path, dict[str, Any]] | None:
    """Restore the newest checkpoint that loads, saying which damaged ones were passed
    over (a crash or a full disk may leave the newest truncated); None when there is none.

    A sharded (DCP) checkpoint loads into ``step``, the model as it trains (DDP- or
    FSDP-wrapped, or not), resharded to this ``world``."""
    from recllm.recipes.sharded_checkpoint import is_sharded_checkpoint, load_sharded

    folders = _checkpoints(run_dir)
    damaged: list[str] = []
    world = world or World()
    for folder in reversed(folders):
        try:
            if is_sharded_checkpoint(folder):
                state = load_sharded(folder, step or model, optimizer, scheduler, generator, world)
            else:
                state = load_checkpoint(folder, model, optimizer, scheduler, generator, world)
        except RecLLMError as exc:
            log.warning("checkpoint %s cannot be used: %s", folder.name, exc)
            damaged.append(folder.name)
            continue
        if damaged:
            log.warning(
                "resuming from %s instead (passed over %s)", folder.name, ", ".join(damaged)
            )
        return folder, state
    if damaged:
        raise RecLLMError(
            f"no checkpoint in {run_dir} can be loaded ({', '.join(damaged)} are damaged or "
            "were made with another config); start again with --overwrite"
        )
    return None


def _checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint folders of a run (complete or not: loading says), oldest epoch first."""
    return sorted(
        (
            p
            for p in (run_dir / "checkpoints").glob("epoch-*")
            if p.is_dir() and p.name.split("-")[1].isdigit()
        ),
        key=lambda p: int(p.name.split("-")[1]),
    )


def last_loop_state(run_dir: Path) -> dict[str, Any] | None:
    """The loop state (epochs done, stopped...) of the newest checkpoint whose state file
    reads, without loading any tensor; None when there is none."""
    for folder in reversed(_checkpoints(run_dir)):
        try:
            loop = json.loads((folder / STATE_NAME).read_text())["loop"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(loop, dict):
            return loop
    return None


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint folder with the highest epoch number, if any."""
    folders = _checkpoints(run_dir)
    return folders[-1] if folders else None


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (``keep == 0``: keep all).

    Resuming needs only the newest; the best weights live apart in ``best/``."""
    if keep < 1:
        return
    for folder in _checkpoints(run_dir)[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)
