"""Pre-distillation data: behaviour sequences sampled from the teacher itself.

Each sequence starts from an item drawn by training popularity; every next item is
drawn from the teacher's softmax over the catalogue after the prefix (items already in
the sequence excluded, as a user rarely consumes an item twice). Behaviour weights are
drawn from the training weights. The student first learns the teacher's behaviour on
these, then on the real data.
"""

from __future__ import annotations

import numpy as np
import torch

from recllm.data.sequences import UserSequences
from recllm.models.recllm import RecLLMModel
from recllm.progress import progress_bar


@torch.no_grad()
def sample_sequences(
    teacher: RecLLMModel,
    train: UserSequences,
    n_sequences: int,
    length: int,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = True,
) -> UserSequences:
    """``n_sequences`` sequences of ``length`` items sampled from ``teacher``."""
    teacher.eval()
    device = next(teacher.parameters()).device
    length = min(length, teacher.max_len + 1)
    rng = torch.Generator().manual_seed(seed)
    popularity = torch.from_numpy(np.bincount(train.items, minlength=teacher.n_items)).double()
    train_weights = torch.from_numpy(train.weights.astype(np.float32))
    items = torch.empty(n_sequences, length, dtype=torch.long)
    picks = torch.randint(len(train_weights), (n_sequences, length), generator=rng)
    weights = train_weights[picks]  # (S, length)
    window = teacher.max_len
    bar = progress_bar(
        total=n_sequences * (length - 1),
        desc="synthetic sequences",
        unit="step",
        enabled=progress,
    )
    for start in range(0, n_sequences, batch_size):
        rows = slice(start, min(start + batch_size, n_sequences))
        count = rows.stop - rows.start
        items[rows, 0] = torch.multinomial(popularity, count, replacement=True, generator=rng)
        for step in range(1, length):
            prefix = items[rows, :step]
            recent = slice(max(0, step - window), step)
            scores = teacher.score_last(
                items[rows, recent].to(device),
                weights[rows, recent].to(device),
                torch.ones(count, recent.stop - recent.start, dtype=torch.bool, device=device),
            ).cpu()
            scores = scores / temperature
            scores.scatter_(1, prefix, float("-inf"))
            probs = torch.softmax(scores.double(), dim=-1)
            items[rows, step] = torch.multinomial(probs, 1, generator=rng).squeeze(1)
            bar.update(count)
    bar.close()
    indptr = np.arange(n_sequences + 1, dtype=np.int64) * length
    return UserSequences(
        indptr, items.reshape(-1).numpy().astype(np.int32), weights.reshape(-1).numpy()
    )
