"""Losses of the multi-task objective L_total = L_rec + 0.3 L_gen + 0.5 L_distill.

All recommendation losses take per-position queries and count only real positions;
when no position is real (an all-padding batch) they return 0 with a gradient path
rather than NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recllm.errors import ConfigError


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum()
    if count == 0:
        return values.sum() * 0.0
    return (values * mask).sum() / count


def sample_negatives(
    targets: torch.Tensor,
    n_items: int,
    n_negatives: int,
    generator: torch.Generator | None,
    pool: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, n) uniform negatives and a mask of those still equal to the target.

    ``pool``: the item ids negatives may be (default: all ``n_items``); a cold-start split
    passes the items seen in training, so held-out items stay out of training entirely.
    A negative that hits the target is re-drawn once; the rare second hit is masked out
    rather than re-drawn again, so the cost stays fixed."""
    size = n_items if pool is None else len(pool)

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        index = torch.randint(0, size, shape, generator=generator, device=targets.device)
        return index if pool is None else pool.to(targets.device)[index]

    negatives = draw((*targets.shape, n_negatives))
    clash = negatives == targets.unsqueeze(-1)
    if clash.any():
        negatives[clash] = draw((int(clash.sum()),))
        clash = negatives == targets.unsqueeze(-1)
    return negatives, clash


def _positive_and_negative_scores(
    queries: torch.Tensor,
    item_embeddings: torch.Tensor,
    targets: torch.Tensor,
    n_negatives: int,
    generator: torch.Generator | None,
    pool: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores of the targets (B, L, 1) and of sampled negatives (B, L, n), and the clash mask."""
    n_items = item_embeddings.shape[0]
    safe_targets = targets.clamp(max=n_items - 1)
    positive = (queries * item_embeddings[safe_targets]).sum(-1, keepdim=True)
    negatives, clash = sample_negatives(safe_targets, n_items, n_negatives, generator, pool)
    negative = torch.einsum("bld,blnd->bln", queries, item_embeddings[negatives])
    return positive, negative, clash


def bpr_loss(
    queries: torch.Tensor,
    item_embeddings: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    n_negatives: int = 1,
    generator: torch.Generator | None = None,
    pool: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bayesian personalised ranking with uniformly sampled negatives.

    Args:
        queries: (B, L, d) ranking queries.
        item_embeddings: (N, d) catalogue embeddings (no padding row).
        targets: (B, L) next items; mask: (B, L) bool, True at real positions.
        n_negatives: negatives per position; a negative equal to the target is
            re-drawn once and otherwise masked out.
        pool: item ids negatives may be (see :func:`sample_negatives`).

    Returns:
        scalar mean of ``-log sigmoid(s_pos - s_neg)`` over real positions and negatives.
    """
    positive, negative, clash = _positive_and_negative_scores(
        queries, item_embeddings, targets, n_negatives, generator, pool
    )
    losses = -F.logsigmoid(positive - negative)
    valid = mask.unsqueeze(-1) & ~clash
    return _masked_mean(losses, valid.to(losses.dtype))


def bce_loss(
    queries: torch.Tensor,
    item_embeddings: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    n_negatives: int = 1,
    generator: torch.Generator | None = None,
    pool: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy with sampled negatives (the original SASRec objective).

    Shapes as in :func:`bpr_loss`. Per real position: ``-log sigmoid(s_pos)`` plus the
    mean over negatives of ``-log sigmoid(-s_neg)``.
    """
    positive, negative, clash = _positive_and_negative_scores(
        queries, item_embeddings, targets, n_negatives, generator, pool
    )
    real = mask.to(positive.dtype)
    keep = (mask.unsqueeze(-1) & ~clash).to(negative.dtype)
    negative_term = (-F.logsigmoid(-negative) * keep).sum(-1) / keep.sum(-1).clamp(min=1)
    return _masked_mean(-F.logsigmoid(positive.squeeze(-1)) + negative_term, real)


def cross_entropy_loss(
    queries: torch.Tensor,
    item_embeddings: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    pool: torch.Tensor | None = None,
) -> torch.Tensor:
    """Full-softmax cross-entropy over the catalogue at every real position.

    Shapes as in :func:`bpr_loss`. Only real positions are scored, so memory is
    (real positions x N), not (B x L x N). With ``pool`` the softmax runs over those
    item ids only (the others get no probability and no gradient).
    """
    if not mask.any():
        return queries.sum() * 0.0
    logits = queries[mask] @ item_embeddings.T  # (P, N)
    if pool is not None:
        outside = torch.ones(logits.shape[1], dtype=torch.bool, device=logits.device)
        outside[pool.to(logits.device)] = False
        logits = logits.masked_fill(outside, float("-inf"))
    return F.cross_entropy(logits, targets[mask])


def sampled_cross_entropy_loss(
    queries: torch.Tensor,
    item_embeddings: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    n_negatives: int,
    generator: torch.Generator | None = None,
    pool: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sampled softmax: cross-entropy of each target against ``n_negatives`` uniform
    negatives drawn once per batch and shared by every position (as in SASRec with
    sampled softmax), instead of the whole catalogue.

    Shapes as in :func:`bpr_loss`. Sharing keeps the cost one (P x n) product; a negative
    equal to a position's target is masked out of that position's softmax only.
    """
    if not mask.any():
        return queries.sum() * 0.0
    size = item_embeddings.shape[0] if pool is None else len(pool)
    index = torch.randint(0, size, (n_negatives,), generator=generator, device=queries.device)
    negatives = index if pool is None else pool.to(queries.device)[index]  # (n,)
    real_queries, real_targets = queries[mask], targets[mask]  # (P, d), (P,)
    positive = (real_queries * item_embeddings[real_targets]).sum(-1, keepdim=True)  # (P, 1)
    negative = real_queries @ item_embeddings[negatives].T  # (P, n)
    negative = negative.masked_fill(negatives == real_targets.unsqueeze(-1), float("-inf"))
    logits = torch.cat([positive, negative], dim=-1)
    return -F.log_softmax(logits, dim=-1)[:, 0].mean()


REC_LOSSES = ("bpr", "ce", "bce", "sampled_ce")


def recommendation_loss(
    name: str,
    queries: torch.Tensor,
    item_embeddings: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    n_negatives: int = 1,
    generator: torch.Generator | None = None,
    pool: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_rec by name: ``bpr`` and ``bce`` (sampled negatives), ``ce`` (full softmax) or
    ``sampled_ce`` (softmax over ``n_negatives`` shared negatives); ``pool``: the item ids
    training may score (default: the whole catalogue)."""
    if name == "ce":
        return cross_entropy_loss(queries, item_embeddings, targets, mask, pool)
    if name == "sampled_ce":
        return sampled_cross_entropy_loss(
            queries, item_embeddings, targets, mask, n_negatives, generator, pool
        )
    if name == "bpr":
        return bpr_loss(queries, item_embeddings, targets, mask, n_negatives, generator, pool)
    if name == "bce":
        return bce_loss(queries, item_embeddings, targets, mask, n_negatives, generator, pool)
    raise ConfigError(f"loss must be one of {REC_LOSSES}, got {name!r}")


@dataclass
class LossWeights:
    """Weights of the objective's terms (the design's 1, 0.3, 0.5)."""

    rec: float = 1.0
    gen: float = 0.3
    distill: float = 0.5

    def __post_init__(self) -> None:
        bad = [f"{k} must be >= 0, got {v}" for k, v in vars(self).items() if v < 0]
        ConfigError.collect("loss weights", bad)


def total_loss(
    rec: torch.Tensor | None = None,
    gen: torch.Tensor | None = None,
    distill: torch.Tensor | None = None,
    weights: LossWeights | None = None,
) -> torch.Tensor:
    """L_total = w_rec L_rec + w_gen L_gen + w_distill L_distill; absent terms count 0."""
    weights = weights or LossWeights()
    terms = [(rec, weights.rec), (gen, weights.gen), (distill, weights.distill)]
    present = [w * t for t, w in terms if t is not None]
    if not present:
        raise ValueError("total_loss needs at least one loss term")
    return torch.stack(present).sum()
