"""What the student learns from: the teacher's outputs for a batch, live or cached.

:class:`LiveTeacher` runs the teacher on the batch (every position, padding included).
:class:`CachedTeacher` holds the same outputs for the real positions of every training
sequence, computed once by :func:`build_cache` and kept as safetensors shards, so the
teacher does not run again for every student epoch (and a second student, e.g. an
ablation, reuses them). Both return a :class:`~recllm.distill.losses.TeacherBatch`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from recllm.data.batching import NextItemBatch, NextItemDataset, SequenceCollator, to_device
from recllm.distill.losses import TeacherBatch, head_averaged_item_block
from recllm.distributed import World, shard, shared_atomic_folder
from recllm.errors import RecLLMError
from recllm.models.recllm import RecLLMModel
from recllm.progress import progress_bar

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
META_NAME = "cache.json"


@dataclass(frozen=True)
class TeacherSpec:
    """Which teacher outputs the student needs: K logits per position (0: all), the
    temperature of the log-normaliser, and the teacher layers whose maps are kept."""

    top_k: int
    temperature: float
    layers: tuple[int, ...]


class LiveTeacher:
    """Runs the teacher (eval mode, no gradient) on each batch."""

    def __init__(self, model: RecLLMModel, spec: TeacherSpec) -> None:
        self.model = model.eval()
        self.spec = spec
        if spec.layers:
            model.backbone.use_eager_attention()

    @torch.no_grad()
    def __call__(self, batch: NextItemBatch) -> TeacherBatch:
        model, spec = self.model, self.spec
        output = model(batch.inputs, batch.weights, batch.mask, output_attentions=bool(spec.layers))
        logits = output.queries @ model.item_embeddings().T  # (B, L, N)
        lse = torch.logsumexp(logits / spec.temperature, dim=-1)
        indices = None
        if 0 < spec.top_k < logits.shape[-1]:
            logits, indices = logits.topk(spec.top_k, dim=-1)
        maps = []
        if spec.layers:
            assert output.backbone_attentions is not None
            n_prompt = len(model.prompt_ids)
            maps = [
                head_averaged_item_block(output.backbone_attentions[layer], n_prompt)
                for layer in spec.layers
            ]
        return TeacherBatch(logits=logits, indices=indices, lse=lse, maps=maps)


def _batches(
    dataset: NextItemDataset, pad_id: int, batch_size: int, start: int = 0, stop: int | None = None
) -> Iterator[NextItemBatch]:
    """Batches of sequences ``start..stop`` (default: all), in order."""
    collate = SequenceCollator(pad_id)
    stop = len(dataset) if stop is None else stop
    for begin in range(start, stop, batch_size):
        yield collate([dataset[i] for i in range(begin, min(begin + batch_size, stop))])


def cache_key(teacher_id: str, dataset: NextItemDataset, spec: TeacherSpec) -> str:
    """Identity of a cache: the teacher, the exact sequences, and what is kept."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [
                CACHE_FORMAT,
                teacher_id,
                spec.top_k,
                spec.temperature,
                list(spec.layers),
                dataset.max_len,
            ]
        ).encode()
    )
    digest.update(np.ascontiguousarray(dataset.users).tobytes())
    digest.update(np.ascontiguousarray(dataset.ends).tobytes())
    digest.update(np.ascontiguousarray(dataset.sequences.items).tobytes())
    digest.update(np.ascontiguousarray(dataset.sequences.weights).tobytes())
    return digest.hexdigest()[:20]


def build_cache(
    teacher: LiveTeacher,
    dataset: NextItemDataset,
    folder: Path,
    batch_size: int = 64,
    shard_sequences: int = 2048,
    progress: bool = True,
    world: World | None = None,
) -> None:
    """Run the teacher once over every sequence of ``dataset`` and write its outputs at
    real positions to ``folder/shard-*.safetensors`` (atomically: a half-built cache is
    never read).

    Shard k holds sequences ``k * shard_sequences`` onwards whatever the world size;
    under ``torchrun`` rank r writes every ``world_size``-th shard from r, so the cache
    is the same files as one process writes, and any world size reads it."""
    world = world or World()
    # whole batches per shard, so that shards hold what one pass over the data makes
    batch_size = min(batch_size, shard_sequences)
    shard_sequences = shard_sequences // batch_size * batch_size
    n_shards = -(-len(dataset) // shard_sequences)
    mine = shard(n_shards, world)
    with shared_atomic_folder(folder, world) as tmp:
        bar = progress_bar(total=len(dataset), desc="teacher outputs", unit="seq", enabled=progress)
        for index in mine:
            start = int(index) * shard_sequences
            stop = min(start + shard_sequences, len(dataset))
            parts: dict[str, list[torch.Tensor]] = {}
            for batch in _batches(dataset, teacher.model.pad_id, batch_size, start, stop):
                for key, value in _cached_outputs(teacher, batch).items():
                    parts.setdefault(key, []).append(value)
                bar.update(len(batch.users))
            tensors = {k: torch.cat(v).contiguous() for k, v in parts.items()}
            save_file(tensors, str(tmp / f"shard-{int(index):05d}.safetensors"))
        bar.close()
        if world.is_main:
            meta = {
                "format": CACHE_FORMAT,
                "sequences": len(dataset),
                "shards": n_shards,
                "top_k": teacher.spec.top_k,
                "temperature": teacher.spec.temperature,
                "layers": list(teacher.spec.layers),
            }
            (tmp / META_NAME).write_text(json.dumps(meta, indent=1))


def _cached_outputs(teacher: LiveTeacher, batch: NextItemBatch) -> dict[str, torch.Tensor]:
    """What the cache keeps of the teacher's outputs on a batch: its real positions."""
    device = next(teacher.model.parameters()).device
    out = teacher(to_device(batch, device))
    real = batch.mask
    lengths = real.sum(1)
    parts = {
        "users": batch.users,
        "lengths": lengths,
        "logits": out.logits.cpu()[real].half(),
        "lse": out.lse.cpu()[real].float(),
    }
    if out.indices is not None:
        parts["indices"] = out.indices.cpu()[real].int()
    for j, maps in enumerate(out.maps):
        # each sequence's (n, n) block of real rows and keys, flattened
        parts[f"maps.{j}"] = torch.cat(
            [m[:n, :n].reshape(-1) for m, n in zip(maps.cpu(), lengths.tolist(), strict=True)]
        ).half()
    return parts


class CachedTeacher:
    """Teacher outputs read from a cache folder, looked up by the batch's users."""

    def __init__(self, folder: Path, n_users: int) -> None:
        meta_path = folder / META_NAME
        if not meta_path.is_file():
            raise RecLLMError(f"{folder} is not a teacher cache (no {META_NAME})")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        shards = [load_file(str(p)) for p in sorted(folder.glob("shard-*.safetensors"))]
        if len(shards) != self.meta["shards"]:
            raise RecLLMError(
                f"teacher cache {folder}: {len(shards)} of {self.meta['shards']} shards found"
            )
        data = {k: torch.cat([s[k] for s in shards]) for k in shards[0]}
        users, lengths = data["users"].long(), data["lengths"].long()
        self.logits, self.lse = data["logits"], data["lse"]
        self.indices = data.get("indices")
        n_layers = len(self.meta["layers"])
        self.maps = [data[f"maps.{j}"] for j in range(n_layers)]
        # per user: where its positions start, how many, and where its maps start
        self.start = torch.full((n_users,), -1, dtype=torch.long)
        self.length = torch.zeros(n_users, dtype=torch.long)
        self.map_start = torch.zeros(n_users, dtype=torch.long)
        self.start[users] = torch.cumsum(lengths, 0) - lengths
        self.length[users] = lengths
        squares = lengths**2
        self.map_start[users] = torch.cumsum(squares, 0) - squares

    def __call__(self, batch: NextItemBatch) -> TeacherBatch:
        """The cached outputs for ``batch`` (looked up on the CPU, returned on the
        batch's device)."""
        device = batch.mask.device
        users, real = batch.users.cpu(), batch.mask.cpu()
        lengths = real.sum(1)
        missing = self.start[users] < 0
        if missing.any() or (self.length[users] != lengths).any():
            raise RecLLMError(
                "the teacher cache does not hold these sequences (built for other data?); "
                "delete it to rebuild"
            )
        batch_size, width = real.shape
        rows = self.start[users].unsqueeze(1) + torch.arange(width)  # (B, L)
        rows = torch.where(real, rows, 0)
        logits = self.logits[rows]  # (B, L, K); padding rows hold row 0, masked later
        indices = self.indices[rows] if self.indices is not None else None
        lse = self.lse[rows]
        maps = []
        for flat in self.maps:
            full = torch.zeros(batch_size, width, width)
            for b, (user, n) in enumerate(zip(users.tolist(), lengths.tolist(), strict=True)):
                start = int(self.map_start[user])
                full[b, :n, :n] = flat[start : start + n * n].reshape(n, n).float()
            maps.append(full)
        return TeacherBatch(
            logits=logits.to(device),
            indices=indices.to(device) if indices is not None else None,
            lse=lse.to(device),
            maps=[m.to(device) for m in maps],
        )
