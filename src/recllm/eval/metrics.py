"""Top-K ranking metrics as pure tensor functions.

Ties: a target's rank is computed as if items with *equal* score were put in a
uniformly random order, and every metric is the exact expectation over that order.
A constant scorer therefore gets the metrics of a random ranking, not a perfect one
(as optimistic tie-breaking would give) nor zero (as pessimistic would). For a target
with ``g`` strictly higher-scored items and ``e`` other items of equal score, its rank
is uniform on ``g+1 .. g+e+1``.

Definitions, for a user with target set ``T`` and cut-off ``K``:

* ``recall@K`` = E[# targets in the top K] / |T|
* ``ndcg@K``   = E[sum over targets in the top K of 1/log2(rank+1)] / IDCG, where
  IDCG = sum_{r=1}^{min(|T|,K)} 1/log2(r+1)
* ``hit@K``    = P(the best target is in the top K)
* ``mrr@K``    = E[1/rank of the best target, 0 if below K]

"Best target" is the target with the fewest strictly higher-scored items; with one
target per user (leave-one-out) all four are exact expectations; with several targets
tied *with each other*, hit and MRR use the best target alone (recall and NDCG stay
exact by linearity of expectation).
"""

from __future__ import annotations

import torch

METRIC_NAMES = ("recall", "ndcg", "hit", "mrr")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Count, for every target, the items scored strictly higher and equally.

    Args:
        scores: (B, N) scores; excluded items should already be ``-inf``.
        targets: (B, T) item indices, ``-1`` for padding.

    Returns:
        ``(greater, ties)``, each (B, T) int64: items with a strictly higher score, and
        *other* items with an equal score. Padding entries are 0.
    """
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; the scorer must return finite values or -inf")
    valid = targets >= 0
    target_scores = scores.gather(1, targets.clamp(min=0))  # (B, T)
    if targets.shape[1] <= 8:
        # Few targets per user: one pass of comparisons per target beats sorting.
        greater = torch.stack(
            [
                (scores > target_scores[:, t : t + 1]).sum(1, dtype=torch.int64)
                for t in range(targets.shape[1])
            ],
            1,
        )
        equal = torch.stack(
            [
                (scores == target_scores[:, t : t + 1]).sum(1, dtype=torch.int64)
                for t in range(targets.shape[1])
            ],
            1,
        )
    else:
        ascending = scores.sort(dim=1).values
        at_most = torch.searchsorted(ascending, target_scores, right=True)
        below = torch.searchsorted(ascending, target_scores, right=False)
        greater = scores.shape[1] - at_most
        equal = at_most - below
    zero = torch.zeros_like(greater)
    return torch.where(valid, greater, zero), torch.where(valid, equal - 1, zero)


def _prefix(k: int, fn) -> torch.Tensor:
    positions = torch.arange(1, k + 1, dtype=torch.float64)
    return torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(fn(positions), 0)])


def ranking_metrics(
    greater: torch.Tensor, ties: torch.Tensor, targets_mask: torch.Tensor, k: int
) -> dict[str, torch.Tensor]:
    """Per-user expected metrics at cut-off ``k`` from :func:`target_ranks` output.

    Args:
        greater: (B, T) items scored above each target, from :func:`target_ranks`.
        ties: (B, T) items tied with each target, from :func:`target_ranks`.
        targets_mask: (B, T) bool, True for real targets; rows need at least one.

    Returns:
        name -> (B,) float64 tensor, names as in :data:`METRIC_NAMES`.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_targets = targets_mask.sum(1)
    if (n_targets == 0).any():
        raise ValueError("every evaluated user needs at least one target")
    dcg = _prefix(k, lambda r: 1.0 / torch.log2(r + 1.0))
    harmonic = _prefix(k, lambda r: 1.0 / r)
    g = greater.clamp(max=k)
    last = (greater + ties + 1).clamp(max=k)
    width = (ties + 1).to(torch.float64)
    inside = (greater < k) & targets_mask
    p_hit = torch.where(inside, (last - g).to(torch.float64) / width, 0.0)
    gain = torch.where(inside, (dcg[last] - dcg[g]) / width, 0.0)
    rr = torch.where(inside, (harmonic[last] - harmonic[g]) / width, 0.0)
    ideal = dcg[n_targets.clamp(max=k)]
    # The best target: fewest strictly greater items, then fewest ties.
    order_key = torch.where(
        targets_mask, greater * (ties.max() + 2) + ties, torch.iinfo(torch.int64).max
    )
    best = order_key.argmin(1, keepdim=True)
    return {
        "recall": p_hit.sum(1) / n_targets,
        "ndcg": gain.sum(1) / ideal,
        "hit": p_hit.gather(1, best).squeeze(1),
        "mrr": rr.gather(1, best).squeeze(1),
    }
