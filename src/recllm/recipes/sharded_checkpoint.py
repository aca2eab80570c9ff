"""Sharded training checkpoints through ``torch.distributed.checkpoint`` (DCP).

Under FSDP no rank holds the whole model, so every rank writes its shards of the
trainable weights and of the optimiser state (``sharded/``, safetensors files written by
DCP's Hugging Face storage: nothing pickled); rank 0 adds the JSON loop state, the
scheduler and every rank's RNG states, as in :mod:`recllm.recipes.checkpoint`. DCP
reshards on load, so a checkpoint resumes at any world size, one process included
(no process group: DCP reads it whole).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recllm.distributed import World, shared_atomic_folder
from recllm.errors import RecLLMError
from recllm.fsutil import damaged_file_errors
from recllm.recipes.checkpoint import RNG_NAME, STATE_NAME, restore_rng, rng_states

SHARDED_DIR = "sharded"


def is_sharded_checkpoint(folder: Path) -> bool:
    return (folder / SHARDED_DIR).is_dir()


def _state_dicts(step: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Trainable weights and optimiser tensors keyed by the model's own names (the same
    under DDP, FSDP and one process), which DCP fills in place on load."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(ignore_frozen_params=True, flatten_optimizer_state_dict=True)
    weights, optim = get_state_dict(step, optimizer, options=options)
    optim_flat: dict[str, Any] = dict(optim)  # flattened: "state.NAME.exp_avg" -> tensor
    trainable = {
        name.removeprefix("module.")
        for name, param in step.named_parameters()
        if param.requires_grad
    }
    tensors: dict[str, torch.Tensor] = {
        f"model.{k}": v
        for k, v in weights.items()
        if k in trainable and isinstance(v, torch.Tensor)
    }
    tensors.update(
        {f"optimizer.{k}": v for k, v in optim_flat.items() if isinstance(v, torch.Tensor)}
    )
    return tensors


def save_sharded(
    folder: Path,
    step: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    state: dict[str, Any],
    world: World,
) -> None:
    """Every rank writes its shards into one folder that rank 0 renames into place when
    all are done (a half-written checkpoint is never found)."""
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import save_file

    tensors = _state_dicts(step, optimizer)
    rng = rng_states(generator, world)
    with shared_atomic_folder(folder, world) as tmp:
        writer = dcp.HuggingFaceStorageWriter(str(tmp / SHARDED_DIR), save_distributed=True)
        dcp.save(tensors, storage_writer=writer)
        if world.is_main:
            save_file(rng, str(tmp / RNG_NAME))
            sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
            groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
            payload = {"loop": state, "param_groups": groups, "scheduler": sched}
            (tmp / STATE_NAME).write_text(json.dumps(payload, indent=1, default=str))


def load_sharded(
    folder: Path,
    step: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    world: World,
) -> dict[str, Any]:
    """Restore what :func:`save_sharded` wrote, resharded to this world; returns the
    loop state. A checkpoint of another model is a :class:`RecLLMError`."""
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    for name in (STATE_NAME, RNG_NAME):
        if not (folder / name).is_file():
            raise RecLLMError(f"{folder} is not a complete checkpoint: {name} is missing")
    with damaged_file_errors(folder):
        payload = json.loads((folder / STATE_NAME).read_text())
        rng = load_file(str(folder / RNG_NAME))
    tensors = _state_dicts(step, optimizer)
    reader = dcp.HuggingFaceStorageReader(str(folder / SHARDED_DIR))
    try:
        saved = set(reader.read_metadata().state_dict_metadata)
        missing = sorted(k for k in tensors if k.startswith("model.") and k not in saved)
        if missing:
            raise RecLLMError(f"weights missing: {missing[:5]}")
        # a weight that never had a gradient before the checkpoint has no optimiser state
        tensors = {k: v for k, v in tensors.items() if k in saved}
        with warnings.catch_warnings():  # one process reads it whole: that is the intent
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(tensors, storage_reader=reader)
    except Exception as exc:  # DCP raises CheckpointException, RuntimeError, KeyError...
        raise RecLLMError(
            f"checkpoint {folder} does not fit this model ({str(exc).splitlines()[0][:200]}); "
            "was it made with another config?"
        ) from exc
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    options = StateDictOptions(strict=False, flatten_optimizer_state_dict=True)
    optim: dict[str, Any] = dict(get_optimizer_state_dict(step, optimizer, options=options))
    optim.update(
        {k.removeprefix("optimizer."): v for k, v in tensors.items() if k.startswith("optimizer.")}
    )
    weights: dict[str, Any] = {
        k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")
    }
    set_state_dict(
        step, optimizer, model_state_dict=weights, optim_state_dict=optim, options=options
    )
    saved_groups = payload["param_groups"]
    if len(saved_groups) != len(optimizer.param_groups):
        raise RecLLMError(f"checkpoint {folder}: the optimiser's parameter groups differ")
    for group, saved in zip(optimizer.param_groups, saved_groups, strict=True):
        group.update(saved)
    scheduler.load_state_dict(
        {**payload["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)}
    )
    restore_rng(rng, generator, world, int(payload["loop"].get("step", 0)))
    return dict(payload["loop"])
