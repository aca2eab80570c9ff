"""Zero-shot LM baseline: the pretrained backbone with no training at all.

A user's profile is the mean of the (L2-normalised) text embeddings of their most
recent items; every catalogue item is scored by cosine similarity to it. This is the
"language model without adaptation" row: what the backbone knows about items from
their text alone, with no behaviour data learned.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from recllm.data.sequences import UserSequences


class ZeroShotLM:
    """Scores by text-embedding similarity to the recent history.

    Args:
        pooled: (N, H) pooled text embeddings of the catalogue (from the backbone).
        n_recent: how many of the most recent history items form the profile.
    """

    def __init__(self, pooled: torch.Tensor, n_recent: int = 10) -> None:
        if n_recent < 1:
            raise ValueError(f"n_recent must be >= 1, got {n_recent}")
        self.items = F.normalize(pooled.float(), dim=-1)
        self.n_recent = n_recent

    def __call__(self, users: np.ndarray, history: UserSequences) -> torch.Tensor:
        profiles = torch.zeros(len(users), self.items.shape[1])
        for row, user in enumerate(users):
            recent = history.items_of(int(user))[-self.n_recent :]
            if len(recent):  # no history: a zero profile scores every item 0 (ties)
                profiles[row] = self.items[torch.from_numpy(recent.astype(np.int64))].mean(0)
        return F.normalize(profiles, dim=-1) @ self.items.T
