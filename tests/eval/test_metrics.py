"""Metrics against a brute-force reference that enumerates every tie-breaking order."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from recllm.eval.metrics import ranking_metrics, target_ranks


def brute_force(scores: np.ndarray, targets: list[int], k: int) -> dict[str, float]:
    """Average metrics over all orderings of the items consistent with the scores."""
    n = len(scores)
    totals = {"recall": 0.0, "ndcg": 0.0, "hit": 0.0, "mrr": 0.0}
    count = 0
    idcg = sum(1 / math.log2(r + 1) for r in range(1, min(len(targets), k) + 1))
    for perm in itertools.permutations(range(n)):
        if any(scores[perm[i]] < scores[perm[i + 1]] for i in range(n - 1)):
            continue
        ranks = [perm.index(t) + 1 for t in targets]
        hits = [r for r in ranks if r <= k]
        best = min(ranks)
        totals["recall"] += len(hits) / len(targets)
        totals["ndcg"] += sum(1 / math.log2(r + 1) for r in hits) / idcg
        totals["hit"] += float(best <= k)
        totals["mrr"] += 1 / best if best <= k else 0.0
        count += 1
    return {key: value / count for key, value in totals.items()}


def compute(scores: np.ndarray, targets: list[int], k: int) -> dict[str, float]:
    s = torch.tensor(scores, dtype=torch.float32).unsqueeze(0)
    t = torch.tensor([targets])
    greater, ties = target_ranks(s, t)
    out = ranking_metrics(greater, ties, torch.ones_like(t, dtype=torch.bool), k)
    return {name: float(v[0]) for name, v in out.items()}


@pytest.mark.parametrize("seed", range(40))
def test_single_target_with_ties_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 8))
    scores = rng.integers(0, 3, size=n).astype(float)  # few distinct values: many ties
    target = int(rng.integers(0, n))
    k = int(rng.integers(1, n + 1))
    expected = brute_force(scores, [target], k)
    got = compute(scores, [target], k)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], abs=1e-9), name


@pytest.mark.parametrize("seed", range(40))
def test_multi_target_recall_ndcg_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 8))
    scores = rng.integers(0, 4, size=n).astype(float)
    targets = sorted(rng.choice(n, size=int(rng.integers(2, 4)), replace=False).tolist())
    k = int(rng.integers(1, n + 1))
    expected = brute_force(scores, targets, k)
    got = compute(scores, targets, k)
    assert got["recall"] == pytest.approx(expected["recall"], abs=1e-9)
    assert got["ndcg"] == pytest.approx(expected["ndcg"], abs=1e-9)
    # hit/MRR are exact when no two targets share a score (documented limitation).
    if len({scores[t] for t in targets}) == len(targets):
        assert got["hit"] == pytest.approx(expected["hit"], abs=1e-9)
        assert got["mrr"] == pytest.approx(expected["mrr"], abs=1e-9)


def test_distinct_scores_match_direct_sort_on_large_catalogue() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(64, 500)).astype(np.float32)
    targets = np.stack([rng.choice(500, 12, replace=False) for _ in range(64)])  # > 8: sort path
    greater, ties = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets))
    assert int(ties.max()) == 0
    order = np.argsort(-scores, axis=1)
    ranks = np.argsort(order, axis=1)
    expected_greater = np.take_along_axis(ranks, targets, 1)
    np.testing.assert_array_equal(greater.numpy(), expected_greater)
    out = ranking_metrics(greater, ties, torch.ones(64, 12, dtype=torch.bool), 10)
    top10 = order[:, :10]
    recall = np.array([len(set(top10[b]) & set(targets[b])) / 12 for b in range(64)])
    np.testing.assert_allclose(out["recall"].numpy(), recall, atol=1e-12)


def test_constant_scorer_gets_random_ranking_metrics() -> None:
    scores = torch.zeros(1, 100)
    greater, ties = target_ranks(scores, torch.tensor([[7]]))
    out = ranking_metrics(greater, ties, torch.ones(1, 1, dtype=torch.bool), 10)
    assert float(out["hit"][0]) == pytest.approx(0.10)
    assert float(out["recall"][0]) == pytest.approx(0.10)


def test_padding_targets_are_ignored() -> None:
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    padded = ranking_metrics(
        *target_ranks(scores, torch.tensor([[1, -1]])), torch.tensor([[True, False]]), 2
    )
    single = ranking_metrics(*target_ranks(scores, torch.tensor([[1]])), torch.tensor([[True]]), 2)
    for name in single:
        assert float(padded[name][0]) == pytest.approx(float(single[name][0]))


def test_nan_scores_and_bad_k_raise() -> None:
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(torch.tensor([[float("nan"), 1.0]]), torch.tensor([[0]]))
    greater, ties = target_ranks(torch.tensor([[1.0, 0.0]]), torch.tensor([[0]]))
    with pytest.raises(ValueError, match="k must be"):
        ranking_metrics(greater, ties, torch.ones(1, 1, dtype=torch.bool), 0)
    with pytest.raises(ValueError, match="at least one target"):
        ranking_metrics(greater, ties, torch.zeros(1, 1, dtype=torch.bool), 1)
