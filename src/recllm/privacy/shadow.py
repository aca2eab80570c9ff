"""The shadow model of the distillation attack: a small SASRec taught by the target's answers.

The attacker sends the histories of users he knows (auxiliary data, disjoint from the
users he asks about) and keeps the top-k lists. A SASRec learns to reproduce them: its
next-item distribution after each query is pulled towards the answer (the softmax of the
shown scores, or a rank-discounted distribution when only ranks are shown). What the
target memorised about item-to-item transitions reaches the shadow through its answers,
and the shadow then scores pairs the attacker never sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recllm.errors import ConfigError
from recllm.models.sasrec import SASRec, SASRecConfig
from recllm.privacy.defences import Answer


@dataclass
class ShadowConfig:
    """The shadow recommender and how long it learns.

    Attributes:
        d_model: SASRec width.
        n_layers: SASRec blocks.
        max_len: most recent items of a query it reads.
        epochs: passes over the answered queries.
        batch_size: queries per step.
        lr: AdamW learning rate.
        temperature: softmax temperature over shown scores (ranks-only answers use
            1 / log2(rank + 1) weights instead).
        seed: initialisation and shuffling.
    """

    d_model: int = 64
    n_layers: int = 2
    max_len: int = 20
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("d_model", "n_layers", "max_len", "epochs", "batch_size")
            if getattr(self, name) < 1
        ]
        if self.lr <= 0 or self.temperature <= 0:
            problems.append("lr and temperature must be > 0")
        ConfigError.collect("shadow", problems)


def answer_distribution(answer: Answer, temperature: float) -> torch.Tensor:
    """(k,) weights over the answer's items, summing to 1."""
    if answer.scores is not None and len(answer.scores):
        return torch.softmax(torch.from_numpy(answer.scores).float() / temperature, dim=0)
    weights = 1.0 / torch.log2(torch.arange(len(answer.items), dtype=torch.float32) + 2.0)
    return weights / weights.sum()


def train_shadow(
    n_items: int, queries: Sequence[np.ndarray], answers: Sequence[Answer], config: ShadowConfig
) -> SASRec:
    """A SASRec fitted to reproduce ``answers`` (one per query; empty answers skipped)."""
    torch.manual_seed(config.seed)
    heads = 2 if config.d_model % 2 == 0 else 1
    model = SASRec(
        SASRecConfig(config.d_model, config.n_layers, heads, config.max_len, 0.1), n_items
    )
    kept = [(q, a) for q, a in zip(queries, answers, strict=True) if len(q) and len(a.items)]
    if not kept:
        raise ValueError("no answered query to train the shadow on")
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    model.train()
    for _ in range(config.epochs):
        for start in range(0, len(kept), config.batch_size):
            batch = [kept[j] for j in rng.permutation(len(kept))[start : start + config.batch_size]]
            loss = _batch_loss(model, batch, config)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def _batch_loss(
    model: SASRec, batch: list[tuple[np.ndarray, Answer]], config: ShadowConfig
) -> torch.Tensor:
    """Cross-entropy of the shadow's last-position distribution against each answer's."""
    width = max(min(len(q), config.max_len) for q, _ in batch)
    items = torch.full((len(batch), width), model.pad_id, dtype=torch.long)  # (B, L)
    mask = torch.zeros(len(batch), width, dtype=torch.bool)
    for row, (query, _) in enumerate(batch):
        tail = torch.from_numpy(np.asarray(query[-config.max_len :], dtype=np.int64))
        items[row, : len(tail)] = tail
        mask[row, : len(tail)] = True
    queries = model(items, torch.ones(items.shape), mask).queries  # (B, L, d)
    last = queries[torch.arange(len(batch)), mask.sum(1) - 1]  # (B, d)
    log_p = torch.log_softmax(last @ model.item_embeddings().T, dim=1)  # (B, N)
    losses = [
        -(answer_distribution(answer, config.temperature) * log_p[row, answer.items]).sum()
        for row, (_, answer) in enumerate(batch)
    ]
    return torch.stack(losses).mean()
