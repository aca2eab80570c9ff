"""Dynamic batching: sequences of similar length share a batch, so padding stays small.

:class:`BucketBatchSampler` shuffles all sequences, cuts the shuffled order into pools
of ``pool_batches x batch_size``, sorts each pool by length, cuts it into batches, and
shuffles the batches. Every sequence appears exactly once per epoch, and the order is a
pure function of ``(seed, epoch)``. :class:`SequenceCollator` then pads each batch only
to its own longest sequence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler

from recllm.data.sequences import UserSequences
from recllm.errors import ConfigError

WINDOW_MODES = ("last", "all")
B = TypeVar("B")


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of indices of sequences of similar length.

    Args:
        lengths: length of every sequence (after truncation to the model's maximum).
        batch_size: sequences per batch (128 by default, as in the design).
        pool_batches: batches per sorting pool; larger pools give less padding but
            less randomness in which sequences meet in a batch.
        shuffle: shuffle sequences and batches (False: sorted by length, for inference).
        drop_last: drop the last incomplete batch of each pool.
        seed: base seed; call :meth:`set_epoch` for a new order each epoch.
        rank, world_size: under ``torch.distributed``, this process's share: every
            global batch (the batch one process would train on) is split across the
            ranks, each taking every ``world_size``-th sequence of it from ``rank``, so
            the ranks step together on the same global batches as one process would,
            with gradients averaged by DDP (see ``recllm.recipes.parallel``).
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int = 128,
        pool_batches: int = 50,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ConfigError(
                f"batch_size and pool_batches must be >= 1, got {batch_size}, {pool_batches}"
            )
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.pool_batches = pool_batches
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.rank = rank
        self.world_size = world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.lengths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        pool_size = self.batch_size * self.pool_batches
        batches: list[np.ndarray] = []
        for start in range(0, n, pool_size if self.shuffle else max(n, 1)):
            pool = order[start : start + pool_size] if self.shuffle else order
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            for b in range(0, len(pool), self.batch_size):
                chunk = pool[b : b + self.batch_size]
                if self.drop_last and len(chunk) < self.batch_size:
                    continue
                batches.append(chunk)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def global_batches(self) -> list[np.ndarray]:
        """The epoch's batches as one process trains on them, whatever the world size.

        With several ranks, a batch with fewer sequences than ranks (the last of a pool)
        joins the batch before it (the first batch: the one after it), so that every
        rank has a share of every step."""
        batches = self._batches()
        if self.world_size == 1:
            return batches
        if len(self.lengths) < self.world_size:
            raise ConfigError(
                f"{len(self.lengths)} sequences cannot be shared by {self.world_size} "
                "processes; use fewer processes"
            )
        merged: list[np.ndarray] = []
        carry = np.empty(0, dtype=np.int64)
        for batch in batches:
            if len(batch) < self.world_size and merged:
                merged[-1] = np.concatenate([merged[-1], batch])
            elif len(carry) + len(batch) < self.world_size:
                carry = np.concatenate([carry, batch])
            else:
                merged.append(np.concatenate([carry, batch]))
                carry = carry[:0]
        return merged

    def _shard(self) -> list[np.ndarray]:
        # Every rank computes the same batch order (same seed and epoch) and takes its
        # strided share of each batch: shares are disjoint, of near-equal size and of
        # similar lengths (a batch is sorted by length).
        return [batch[self.rank :: self.world_size] for batch in self.global_batches()]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._shard():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self._shard())


class RandomBatchSampler(BucketBatchSampler):
    """Plain shuffled batches, the baseline that bucketing is measured against."""

    def _batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        return [
            order[b : b + self.batch_size]
            for b in range(0, len(order), self.batch_size)
            if not (self.drop_last and len(order) - b < self.batch_size)
        ]


class NextItemDataset(TorchDataset):
    """Training examples for next-item prediction, as windows of ``max_len + 1`` items.

    ``windows="last"``: one example per user, their last ``max_len + 1`` items (what
    SASRec's reference code trains on). ``windows="all"``: the whole sequence cut from
    the end into windows of ``max_len + 1`` items that overlap by one, so every
    transition of a long history is a target exactly once. The collator shifts each
    window into inputs and next-item targets. Users with fewer than two items have
    nothing to predict and are left out.
    """

    def __init__(self, sequences: UserSequences, max_len: int = 50, windows: str = "last") -> None:
        if max_len < 1:
            raise ConfigError(f"max_len must be >= 1, got {max_len}")
        if windows not in WINDOW_MODES:
            raise ConfigError(f"windows must be one of {WINDOW_MODES}, got {windows!r}")
        self.sequences = sequences
        self.max_len = max_len
        users = np.flatnonzero(sequences.lengths >= 2)
        ends = sequences.lengths[users].astype(np.int64)
        if windows == "all":
            # Window k of a user ends k * max_len items before the sequence's end.
            counts = np.ceil((ends - 1) / max_len).astype(np.int64)
            users = np.repeat(users, counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            ends = np.repeat(ends, counts) - offsets * max_len
        self.users = users
        self.ends = ends  # exclusive end of each window within its user's sequence

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        """Input length of every example (targets are one shorter than the window)."""
        return np.minimum(self.ends - 1, self.max_len)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray, np.ndarray]:
        user, end = int(self.users[index]), int(self.ends[index])
        start = max(0, end - self.max_len - 1)
        items = self.sequences.items_of(user)[start:end]
        weights = self.sequences.weights_of(user)[start:end]
        return user, items, weights


@dataclass
class NextItemBatch:
    """A padded batch; padding is on the right, marked by ``mask == False``.

    Shapes: ``users`` (B,), all others (B, L) with L the longest input in the batch.
    ``targets[b, t]`` is the item that follows ``inputs[b, t]``.
    """

    users: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    mask: torch.Tensor

    @property
    def padding_fraction(self) -> float:
        return 1.0 - float(self.mask.float().mean())


class SequenceCollator:
    """Pads a list of ``NextItemDataset`` examples to the batch's longest sequence.

    Args:
        pad_id: item id written into padded positions (models keep a padding row for
            it, usually ``n_items``); padded positions are also ``mask == False``.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: list[tuple[int, np.ndarray, np.ndarray]]) -> NextItemBatch:
        width = max(len(items) - 1 for _, items, _ in examples)
        batch = len(examples)
        inputs = np.full((batch, width), self.pad_id, dtype=np.int64)
        targets = np.full((batch, width), self.pad_id, dtype=np.int64)
        weights = np.zeros((batch, width), dtype=np.float32)
        mask = np.zeros((batch, width), dtype=bool)
        for row, (_, items, w) in enumerate(examples):
            n = len(items) - 1
            inputs[row, :n] = items[:-1]
            targets[row, :n] = items[1:]
            weights[row, :n] = w[:-1]
            mask[row, :n] = True
        return NextItemBatch(
            users=torch.tensor([u for u, _, _ in examples], dtype=torch.int64),
            inputs=torch.from_numpy(inputs),
            targets=torch.from_numpy(targets),
            weights=torch.from_numpy(weights),
            mask=torch.from_numpy(mask),
        )


class InteractionDataset(TorchDataset):
    """Training (user, item) pairs for models that learn user embeddings (BPR-MF,
    LightGCN). Every pair has length 1, so :class:`BucketBatchSampler` over
    :attr:`lengths` is a seeded, rank-aware shuffle."""

    def __init__(self, users: np.ndarray, items: np.ndarray) -> None:
        if len(users) != len(items):
            raise ValueError(f"{len(users)} users but {len(items)} items")
        self.users = np.asarray(users, dtype=np.int64)
        self.items = np.asarray(items, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        return np.ones(len(self.users), dtype=np.int64)

    def __getitem__(self, index: int) -> tuple[int, int]:
        return int(self.users[index]), int(self.items[index])


@dataclass
class PairBatch:
    """A batch of (user, positive item) pairs; shapes (B,)."""

    users: torch.Tensor
    items: torch.Tensor


def collate_pairs(examples: list[tuple[int, int]]) -> PairBatch:
    users, items = zip(*examples, strict=True)
    return PairBatch(torch.tensor(users), torch.tensor(items))


def to_device(batch: B, device: torch.device) -> B:
    """A batch dataclass with its tensors on ``device`` (itself on the CPU)."""
    if device.type == "cpu" or not dataclasses.is_dataclass(batch):
        return batch
    moved = {
        f.name: getattr(batch, f.name).to(device)
        for f in dataclasses.fields(batch)
        if isinstance(getattr(batch, f.name), torch.Tensor)
    }
    return dataclasses.replace(batch, **moved)  # type: ignore[type-var]
