"""Length-bucketed batch sampler and the next-item collator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recllm.data.batching import (
    BucketBatchSampler,
    NextItemDataset,
    RandomBatchSampler,
    SequenceCollator,
)
from recllm.data.sequences import UserSequences
from recllm.errors import ConfigError


def lengths(n: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 51, size=n)


@pytest.mark.parametrize("sampler_cls", [BucketBatchSampler, RandomBatchSampler])
@pytest.mark.parametrize("batch_size", [1, 7, 128])
def test_every_sequence_exactly_once(sampler_cls, batch_size: int) -> None:
    sampler = sampler_cls(lengths(), batch_size=batch_size, seed=1)
    seen = [i for batch in sampler for i in batch]
    assert sorted(seen) == list(range(1000))
    assert len(sampler) == -(-1000 // batch_size) or sampler_cls is BucketBatchSampler
    assert all(len(b) <= batch_size for b in sampler)


def test_deterministic_per_seed_and_epoch() -> None:
    a, b = BucketBatchSampler(lengths(), seed=5), BucketBatchSampler(lengths(), seed=5)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(BucketBatchSampler(lengths(), seed=6)) != list(a)


def test_buckets_cut_padding_and_batches_are_shuffled() -> None:
    lens = lengths(5000)

    def padding(sampler) -> float:
        total = sum(len(b) * lens[b].max() for b in map(np.array, sampler))
        return 1 - lens.sum() / total

    bucket, random = BucketBatchSampler(lens, 128, seed=0), RandomBatchSampler(lens, 128, seed=0)
    assert padding(bucket) < 0.05 < 0.3 < padding(random)
    maxima = [int(lens[b].max()) for b in map(np.array, bucket)]
    assert maxima != sorted(maxima)  # bucket order is shuffled, not short-to-long


def test_no_shuffle_sorts_by_length_and_drop_last() -> None:
    lens = np.array([5, 1, 3, 2, 4])
    assert [i for b in BucketBatchSampler(lens, 2, shuffle=False) for i in b] == [1, 3, 2, 4, 0]
    assert all(len(b) == 2 for b in BucketBatchSampler(lens, 2, shuffle=False, drop_last=True))
    with pytest.raises(ConfigError):
        BucketBatchSampler(lens, 0)


def test_dataset_and_collator_shift_and_pad() -> None:
    seqs = UserSequences(
        indptr=np.array([0, 4, 5, 8]),
        items=np.array([10, 11, 12, 13, 20, 30, 31, 32], dtype=np.int32),
        weights=np.array([1, 0.5, 1, 1, 1, 0.2, 0.4, 0.6], dtype=np.float32),
    )
    data = NextItemDataset(seqs, max_len=2)
    assert data.users.tolist() == [0, 2]  # user 1 has a single item: nothing to predict
    assert data.lengths.tolist() == [2, 2]
    batch = SequenceCollator(pad_id=99)([data[0], (5, np.array([1, 2]), np.array([1.0, 1.0]))])
    assert batch.inputs.tolist() == [[11, 12], [1, 99]]
    assert batch.targets.tolist() == [[12, 13], [2, 99]]
    assert batch.mask.tolist() == [[True, True], [True, False]]
    assert torch.allclose(batch.weights, torch.tensor([[0.5, 1.0], [1.0, 0.0]]))
    assert batch.padding_fraction == pytest.approx(0.25)


def test_all_windows_cover_every_transition_once() -> None:
    items = np.arange(100, 107, dtype=np.int32)  # user 0: 7 items -> 6 transitions
    seqs = UserSequences(np.array([0, 7, 8]), np.append(items, 200), np.ones(8, np.float32))
    data = NextItemDataset(seqs, max_len=4, windows="all")
    assert data.users.tolist() == [0, 0]  # ceil(6 / 4) windows; user 1 has nothing to predict
    windows = [data[i][1].tolist() for i in range(len(data))]
    assert windows == [[102, 103, 104, 105, 106], [100, 101, 102]]
    assert data.lengths.tolist() == [4, 2]
    pairs = [(w[t], w[t + 1]) for w in windows for t in range(len(w) - 1)]
    assert sorted(pairs) == [(100 + t, 101 + t) for t in range(6)]
    last = NextItemDataset(seqs, max_len=4)  # default: only the last window
    assert [last[i][1].tolist() for i in range(len(last))] == [windows[0]]
    with pytest.raises(ConfigError, match="windows must be one of"):
        NextItemDataset(seqs, windows="some")


def test_ranks_split_batches_without_overlap() -> None:
    lens = lengths(1000)
    shards = [list(BucketBatchSampler(lens, 32, seed=3, rank=r, world_size=3)) for r in range(3)]
    seen = [i for shard in shards for batch in shard for i in batch]
    assert sorted(seen) == list(range(1000))
    # every rank steps on every global batch: as many steps as one process takes
    assert {len(s) for s in shards} == {len(BucketBatchSampler(lens, 32, seed=3))}
    with pytest.raises(ConfigError, match="rank"):
        BucketBatchSampler(lens, 32, rank=2, world_size=2)


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("n", [1000, 97, 33])
def test_each_step_shares_the_global_batch_of_one_process(world_size: int, n: int) -> None:
    """Step k of every rank together is batch k of one process (a trailing batch smaller
    than the world joins the one before it), deterministically, for every epoch."""
    lens = lengths(n)
    one = BucketBatchSampler(lens, 16, pool_batches=3, seed=5)
    ranks = [
        BucketBatchSampler(lens, 16, pool_batches=3, seed=5, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    for epoch in (0, 1):
        for sampler in (one, *ranks):
            sampler.set_epoch(epoch)
        expected: list[list[int]] = []
        carry: list[int] = []
        for batch in one:  # one process's batches, a small one joined to its neighbour
            if len(batch) < world_size and expected:
                expected[-1] = sorted(expected[-1] + batch)
            elif len(carry + batch) < world_size:
                carry += batch
            else:
                expected.append(sorted(carry + batch))
                carry = []
        steps = [sorted(i for part in parts for i in part) for parts in zip(*ranks, strict=True)]
        assert steps == expected
        assert all(parts for step in zip(*ranks, strict=True) for parts in step)
        sizes = [[len(p) for p in step] for step in zip(*ranks, strict=True)]
        assert all(max(s) - min(s) <= 1 for s in sizes)  # balanced shares


def test_too_few_sequences_for_the_world_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot be shared by 4 processes"):
        list(BucketBatchSampler(lengths(3), 16, rank=0, world_size=4))
