"""Losses: values, masking, the all-masked case, the weighted total."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recllm.errors import ConfigError
from recllm.models.losses import (
    LossWeights,
    bce_loss,
    bpr_loss,
    cross_entropy_loss,
    recommendation_loss,
    sampled_cross_entropy_loss,
    total_loss,
)


def test_cross_entropy_matches_manual_on_real_positions() -> None:
    torch.manual_seed(0)
    queries, items = torch.randn(2, 3, 4), torch.randn(6, 4)
    targets = torch.tensor([[1, 2, 6], [0, 6, 6]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    expected = F.cross_entropy(
        torch.stack([queries[0, 0], queries[0, 1], queries[1, 0]]) @ items.T,
        torch.tensor([1, 2, 0]),
    )
    assert cross_entropy_loss(queries, items, targets, mask) == pytest.approx(float(expected))


def test_bpr_is_low_when_target_scores_highest() -> None:
    items = torch.eye(5) * 10
    queries = items[torch.tensor([[1, 2]])]  # each query equals its target's embedding
    mask = torch.ones(1, 2, dtype=torch.bool)
    good = bpr_loss(
        queries,
        items,
        torch.tensor([[1, 2]]),
        mask,
        n_negatives=8,
        generator=torch.Generator().manual_seed(0),
    )
    bad = bpr_loss(
        queries,
        items,
        torch.tensor([[3, 4]]),
        mask,
        n_negatives=8,
        generator=torch.Generator().manual_seed(0),
    )
    assert float(good) < 0.01 < 1.0 < float(bad)


def test_padding_does_not_change_losses() -> None:
    torch.manual_seed(1)
    queries, items = torch.randn(1, 4, 8), torch.randn(10, 8)
    targets, mask = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[True, True, False, False]])
    other = queries.clone()
    other[0, 2:] = 100.0  # garbage in padded positions
    for fn in (cross_entropy_loss,):
        assert fn(queries, items, targets, mask) == pytest.approx(
            float(fn(other, items, targets, mask))
        )
    for sampled in (bpr_loss, bce_loss):
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        assert sampled(queries, items, targets, mask, 4, g1) == pytest.approx(
            float(sampled(other, items, targets, mask, 4, g2))
        )


def test_bce_matches_manual_with_one_negative() -> None:
    torch.manual_seed(2)
    queries, items = torch.randn(1, 2, 4), torch.randn(7, 4)
    targets, mask = torch.tensor([[3, 5]]), torch.tensor([[True, True]])
    loss = bce_loss(queries, items, targets, mask, 1, torch.Generator().manual_seed(0))
    # Same generator state -> the same negatives the loss drew.
    negatives = torch.randint(0, 7, (1, 2, 1), generator=torch.Generator().manual_seed(0))
    assert not (negatives.squeeze(-1) == targets).any(), "pick a seed without clashes"
    pos = (queries * items[targets]).sum(-1)
    neg = (queries * items[negatives.squeeze(-1)]).sum(-1)
    expected = (-F.logsigmoid(pos) - F.logsigmoid(-neg)).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_recommendation_loss_dispatches_and_rejects_unknown_names() -> None:
    queries, items = torch.randn(1, 2, 4), torch.randn(5, 4)
    targets, mask = torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool)
    assert recommendation_loss("ce", queries, items, targets, mask) == pytest.approx(
        float(cross_entropy_loss(queries, items, targets, mask))
    )
    with pytest.raises(ConfigError, match="loss must be one of"):
        recommendation_loss("hinge", queries, items, targets, mask)


@pytest.mark.parametrize("name", ["ce", "bpr", "bce", "sampled_ce"])
def test_all_masked_is_zero_with_gradient(name: str) -> None:
    queries = torch.randn(1, 2, 4, requires_grad=True)
    loss = recommendation_loss(
        name,
        queries,
        torch.randn(5, 4),
        torch.zeros(1, 2, dtype=torch.long),
        torch.zeros(1, 2, dtype=torch.bool),
        n_negatives=3,
    )
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert queries.grad is not None and (queries.grad == 0).all()


def test_total_loss_weights_and_absent_terms() -> None:
    rec, gen, distill = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)
    assert float(total_loss(rec)) == pytest.approx(1.0)
    assert float(total_loss(rec, gen, distill)) == pytest.approx(1.0 + 0.3 * 2 + 0.5 * 4)
    assert float(
        total_loss(rec, distill=distill, weights=LossWeights(rec=2.0, distill=1.0))
    ) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="at least one"):
        total_loss()
    with pytest.raises(ConfigError):
        LossWeights(gen=-1.0)


@pytest.mark.parametrize("name", ["ce", "bpr", "bce", "sampled_ce"])
def test_items_outside_the_pool_get_no_gradient(name: str) -> None:
    """A cold-start split's held-out items stay out of training: no softmax mass, never
    a sampled negative, so their embeddings receive no gradient at all."""
    torch.manual_seed(0)
    queries = torch.randn(4, 5, 8)
    items = torch.randn(10, 8, requires_grad=True)
    targets = torch.randint(0, 7, (4, 5))  # held-out items 7, 8, 9 are never targets
    mask = torch.ones(4, 5, dtype=torch.bool)
    pool = torch.arange(7)
    loss = recommendation_loss(
        name, queries, items, targets, mask, 20, torch.Generator().manual_seed(0), pool
    )
    loss.backward()
    assert items.grad is not None
    assert torch.all(items.grad[7:] == 0) and items.grad[:7].abs().sum() > 0
    items.grad = None
    recommendation_loss(
        name, queries, items, targets, mask, 20, torch.Generator().manual_seed(0)
    ).backward()
    assert items.grad is not None and items.grad[7:].abs().sum() > 0  # without the pool they do


def test_pool_ce_is_the_softmax_over_the_pool() -> None:
    torch.manual_seed(1)
    queries, items = torch.randn(1, 2, 4), torch.randn(5, 4)
    targets, mask = torch.tensor([[0, 2]]), torch.ones(1, 2, dtype=torch.bool)
    pool = torch.tensor([0, 1, 2])
    expected = F.cross_entropy(queries[0] @ items[:3].T, targets[0])
    assert cross_entropy_loss(queries, items, targets, mask, pool) == pytest.approx(float(expected))


def test_sampled_ce_is_the_softmax_over_target_and_shared_negatives() -> None:
    torch.manual_seed(2)
    queries, items = torch.randn(2, 3, 4), torch.randn(9, 4)
    targets = torch.tensor([[1, 2, 9], [4, 9, 9]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss = sampled_cross_entropy_loss(
        queries, items, targets, mask, 5, torch.Generator().manual_seed(7)
    )
    negatives = torch.randint(0, 9, (5,), generator=torch.Generator().manual_seed(7))
    expected = []
    for query, target in ((queries[0, 0], 1), (queries[0, 1], 2), (queries[1, 0], 4)):
        others = [int(n) for n in negatives if int(n) != target]  # a clash is left out
        logits = query @ items[[target, *others]].T
        expected.append(-F.log_softmax(logits, -1)[0])
    assert float(loss) == pytest.approx(float(torch.stack(expected).mean()), rel=1e-5)
