"""Most-popular baseline: every user gets the catalogue ranked by training counts."""

from __future__ import annotations

import numpy as np
import torch

from recllm.data.sequences import UserSequences


class Popularity:
    """Scores each item by how often it occurs in the training interactions.

    The simplest non-personalised baseline; any useful model must beat it.
    """

    def __init__(self, train_items: np.ndarray, n_items: int) -> None:
        counts = np.bincount(np.asarray(train_items, dtype=np.int64), minlength=n_items)
        self.scores = torch.from_numpy(counts.astype(np.float32))

    def __call__(self, users: np.ndarray, history: UserSequences) -> torch.Tensor:
        return self.scores.unsqueeze(0).expand(len(users), -1)
