"""Zero-shot LM baseline: ranks by text similarity to the recent history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recllm.data.sequences import UserSequences
from recllm.models.zero_shot import ZeroShotLM


def test_items_like_the_recent_history_rank_first() -> None:
    # Items 0-2 point one way, 3-5 another; user 0 saw 0 long ago, then 3 and 4.
    pooled = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3) + 0.01 * torch.arange(6)[:, None]
    history = UserSequences(
        np.array([0, 3, 3]), np.array([0, 3, 4], dtype=np.int32), np.ones(3, np.float32)
    )
    scores = ZeroShotLM(pooled, n_recent=2)(np.array([0, 1]), history)
    assert scores.shape == (2, 6)
    assert scores[0, 5] > scores[0, 1]  # like the two most recent items, not the old one
    assert torch.all(scores[1] == 0)  # user 1 has no history: all items tie


def test_bad_n_recent() -> None:
    with pytest.raises(ValueError, match="n_recent"):
        ZeroShotLM(torch.zeros(3, 2), n_recent=0)
