"""Length-bucketed vs random batching: padding fraction and training samples/s.

Both samplers feed the *same* model step (a small causal Transformer over item ids with
a full-softmax next-item loss, forward + backward + AdamW) on the same data, in one
process, alternating, so the ratio is a like-for-like comparison.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from recllm.data.batching import (
    BucketBatchSampler,
    NextItemDataset,
    RandomBatchSampler,
    SequenceCollator,
)
from recllm.data.preprocess import preprocess
from recllm.data.registry import load_dataset
from recllm.data.splits import split

DEFAULT_DATASETS = ["amazon-beauty", "ml-100k"]
MAX_LEN = 50
BATCH_SIZE = 128
ROUNDS = 2


class _StepModel(nn.Module):
    """A stand-in sequential recommender (d=256, 8 heads, 2 layers, as the design's adapter),
    only here to give both samplers the same work."""

    def __init__(self, n_items: int, dim: int = 256, heads: int = 8) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.positions = nn.Embedding(MAX_LEN, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.n_items = n_items

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = inputs.shape[1]
        hidden = self.items(inputs) + self.positions.weight[:length]  # (B, L, D)
        causal = torch.ones(length, length, dtype=torch.bool).triu(1)  # True = masked
        hidden = self.encoder(hidden, mask=causal, src_key_padding_mask=~mask, is_causal=True)
        logits = hidden[mask] @ self.items.weight[: self.n_items].T  # (N, n_items)
        return nn.functional.cross_entropy(logits, targets[mask])


def _epoch(
    model: _StepModel, loader: DataLoader, optimizer: torch.optim.Optimizer
) -> dict[str, float]:
    padded = total = samples = 0
    start = time.perf_counter()
    for batch in loader:
        optimizer.zero_grad()
        model.loss(batch.inputs, batch.targets, batch.mask).backward()
        optimizer.step()
        padded += int((~batch.mask).sum())
        total += batch.mask.numel()
        samples += len(batch.users)
    seconds = time.perf_counter() - start
    return {
        "samples_per_s": samples / seconds,
        "padding_fraction": padded / total,
        "seconds": seconds,
    }


def measure(name: str, data_dir) -> dict[str, Any]:
    data_split = split(preprocess(load_dataset(name, data_dir)))
    dataset = NextItemDataset(data_split.sequences("train"), MAX_LEN)
    collate = SequenceCollator(pad_id=data_split.n_items)
    samplers = {
        "bucketed": BucketBatchSampler(dataset.lengths, BATCH_SIZE, seed=0),
        "random": RandomBatchSampler(dataset.lengths, BATCH_SIZE, seed=0),
    }
    torch.manual_seed(0)
    model = _StepModel(data_split.n_items)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in samplers}
    for epoch in range(ROUNDS):
        for kind, sampler in samplers.items():
            sampler.set_epoch(epoch)
            loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
            runs[kind].append(_epoch(model, loader, optimizer))
    best = {k: max(r, key=lambda x: x["samples_per_s"]) for k, r in runs.items()}
    return {
        "sequences": len(dataset),
        "bucketed": {k: round(v, 4) for k, v in best["bucketed"].items()},
        "random": {k: round(v, 4) for k, v in best["random"].items()},
        "speedup": round(best["bucketed"]["samples_per_s"] / best["random"]["samples_per_s"], 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = {name: measure(name, args.data_dir) for name in (args.datasets or DEFAULT_DATASETS)}
    print(f"{'dataset':<16} {'sampler':<9} {'padding':>8} {'samples/s':>10}")
    for name, row in rows.items():
        for kind in ("random", "bucketed"):
            print(
                f"{name:<16} {kind:<9} {row[kind]['padding_fraction']:>8.3f} {row[kind]['samples_per_s']:>10.0f}"
            )
        print(f"{name:<16} speedup {row['speedup']:.2f}x")
    return {
        "what": "one training epoch per sampler and round (best of "
        f"{ROUNDS}), same model step, max_len {MAX_LEN}, batch {BATCH_SIZE}, 5-core leave-one-out train split",
        "threads": torch.get_num_threads(),
        "datasets": rows,
    }
