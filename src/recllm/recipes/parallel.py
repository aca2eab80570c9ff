"""Data-parallel training on PyTorch's own engine: DDP, or FSDP2 for a backbone that
does not fit one device.

The recipes' losses call the model beyond its ``forward`` (``item_embeddings()``, the
explanation generator, the distillation terms), so the module that DDP or FSDP wraps is
:class:`TrainStep`, whose ``forward`` is the whole training loss. DDP's gradient hooks
then see every use of every weight, and FSDP's root keeps its weights gathered for the
whole loss.

Every rank trains on its share of the same global batch one process would train on
(see :class:`~recllm.data.batching.BucketBatchSampler`). Both engines average gradients
over ranks, so each rank scales its mean loss by its share of the global batch's loss
units (real positions, or pairs) times the world size: the averaged gradient is then
that of the global batch's mean loss, the same as one process computes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn

from recllm.data.batching import NextItemBatch, PairBatch
from recllm.distributed import World, all_reduce_sum

log = logging.getLogger(__name__)

STRATEGIES = ("ddp", "fsdp")
Strategy = Literal["ddp", "fsdp"]


class TrainStep(nn.Module):
    """The model and its training loss as one module: ``step(loss_fn, *args)`` returns
    ``loss_fn(*args)``, computed inside this module's ``forward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, loss_fn: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:
        return loss_fn(*args)


def wrap(model: nn.Module, strategy: str, world: World, bf16: bool = False) -> nn.Module:
    """``model`` on this rank's device inside a :class:`TrainStep`, wrapped by DDP or
    sharded by FSDP2 when the world has several processes (one process: unwrapped).

    FSDP shards every block of every ``nn.ModuleList`` (the transformer layers) and then
    the rest at the root, with bf16 weights and fp32 gradient reduction when ``bf16``.
    Build the optimiser after this: FSDP replaces the parameters with sharded ones."""
    step = TrainStep(model.to(world.device))
    if not world.distributed:
        return step
    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if bf16
            else MixedPrecisionPolicy()
        )
        blocks = [
            block
            for module in model.modules()
            if isinstance(module, nn.ModuleList)
            for block in module
        ]
        # FSDP shards no 0-dim weight (the aggregator's beta): those stay whole on every
        # rank, and a hook averages their gradients as FSDP does for the rest
        scalars = {p for p in step.parameters() if p.dim() == 0}
        for param in scalars:
            if param.requires_grad:
                param.register_post_accumulate_grad_hook(_average_gradient)
        for block in blocks:
            fully_shard(block, mp_policy=policy, ignored_params=scalars)
        fully_shard(step, mp_policy=policy, ignored_params=scalars)
        log.info("FSDP: %d blocks sharded over %d ranks", len(blocks), world.world_size)
        return step
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.device.index] if world.device.type == "cuda" else None
    # Some trainable weights sit out a step (a fine-tuned backbone's pooler, its word
    # embeddings when only adapter tokens go in): DDP must not wait for their gradients.
    return DistributedDataParallel(step, device_ids=device_ids, find_unused_parameters=True)


def _average_gradient(param: torch.Tensor) -> None:
    import torch.distributed as dist

    assert param.grad is not None
    dist.all_reduce(
        param.grad, op=dist.ReduceOp.AVG if dist.get_backend() == "nccl" else dist.ReduceOp.SUM
    )
    if dist.get_backend() != "nccl":  # gloo has no AVG
        param.grad /= dist.get_world_size()


def unwrap(step: nn.Module) -> TrainStep:
    """The :class:`TrainStep` inside a DDP wrapper (FSDP2 shards in place)."""
    inner = getattr(step, "module", step)
    assert isinstance(inner, TrainStep)
    return inner


def is_sharded(step: nn.Module) -> bool:
    """Whether FSDP sharded the weights (so checkpoints are written by every rank)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(step, FSDPModule)


def loss_units(batch: Any) -> int:
    """What a batch's mean loss averages over: its real positions (sequence models)
    or its pairs (user-embedding models)."""
    if isinstance(batch, NextItemBatch):
        return int(batch.mask.sum())
    if isinstance(batch, PairBatch):
        return len(batch.users)
    raise TypeError(f"no loss units for a {type(batch).__name__}")


def share_of(batch: Any, world: World) -> float:
    """This rank's share of the global batch's loss units (1.0 for one process).

    Exact for the losses averaged over item positions (L_rec, the distillation KL);
    the explanation generator's token loss is weighted by the same share."""
    if not world.distributed:
        return 1.0
    units = torch.tensor(float(loss_units(batch)), dtype=torch.float64, device=world.device)
    return float(units / all_reduce_sum(units))


def full_trainable_state(step: nn.Module) -> dict[str, torch.Tensor]:
    """The model's trainable weights and buffers, whole, on rank 0 (CPU), by the model's
    own names; every rank must call it (FSDP gathers the shards)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    state = get_model_state_dict(step, options=options)
    return {k.removeprefix("model."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


@contextmanager
def gathered_weights(step: nn.Module) -> Iterator[None]:
    """Inside: every weight of an FSDP-sharded step is whole on every rank, and stays so
    through forward passes (no collective), so that ranks may evaluate different numbers
    of batches. Without FSDP: nothing to do."""
    from torch.distributed.fsdp import FSDPModule

    sharded = [m for m in step.modules() if isinstance(m, FSDPModule)]
    for module in sharded:
        module.set_reshard_after_forward(False)
        module.unshard()
    try:
        yield
    finally:
        for module in sharded:
            module.reshard()
            module.set_reshard_after_forward(True)
