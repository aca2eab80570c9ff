"""AUC and TPR at low FPR against brute-force references on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from recllm.privacy.metrics import attack_figures, roc_auc, tpr_at_fpr


def brute_auc(signal: np.ndarray, member: np.ndarray) -> float:
    pos, neg = signal[member], signal[~member]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def brute_tpr(signal: np.ndarray, member: np.ndarray, fpr: float) -> float:
    best = 0.0
    for t in np.unique(signal):
        claimed = signal >= t
        if claimed[~member].mean() <= fpr:
            best = max(best, float(claimed[member].mean()))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_against_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    member = rng.random(n) < 0.4
    member[:2] = [True, False]
    signal = np.round(rng.normal(size=n) + member * rng.random(), int(rng.integers(0, 3)))
    assert roc_auc(signal, member) == pytest.approx(brute_auc(signal, member))
    for fpr in (0.01, 0.1, 0.5):
        assert tpr_at_fpr(signal, member, fpr) == pytest.approx(brute_tpr(signal, member, fpr))


def test_perfect_chance_and_inverted_signals() -> None:
    member = np.array([True] * 50 + [False] * 50)
    assert roc_auc(member.astype(float), member) == 1.0
    assert tpr_at_fpr(member.astype(float), member, 0.01) == 1.0
    assert roc_auc(np.zeros(100), member) == 0.5  # all tied: no information
    assert tpr_at_fpr(np.zeros(100), member, 0.1) == 0.0  # claiming all costs FPR 1
    assert roc_auc(-member.astype(float), member) == 0.0
    figures = attack_figures(member.astype(float), member)
    assert figures == {
        "auc": 1.0,
        "tpr@0.01fpr": 1.0,
        "tpr@0.1fpr": 1.0,
        "members": 50,
        "non_members": 50,
    }


@pytest.mark.parametrize(
    ("signal", "member", "problem"),
    [
        ([1.0, 2.0], [True, True], "non-member"),
        ([1.0, np.inf], [True, False], "finite"),
        ([1.0], [True, False], "equal"),
    ],
)
def test_bad_inputs_are_refused(signal: list[float], member: list[bool], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        roc_auc(np.array(signal), np.array(member))


def test_known_values_by_hand() -> None:
    """Members at 0.9, 0.7, 0.6; non-members at 0.8, 0.5, 0.4: members win 3 + 2 + 2 of
    the 9 pairs; with no false positive allowed only 0.9 is claimed (1 of 3 members); one
    false positive (0.8) lets all of 0.9..0.6 be claimed (3 of 3)."""
    signal = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    member = np.array([True, False, True, True, False, False])
    assert roc_auc(signal, member) == pytest.approx(7 / 9)
    assert tpr_at_fpr(signal, member, 0.01) == pytest.approx(1 / 3)
    assert tpr_at_fpr(signal, member, 0.1) == pytest.approx(1 / 3)
    assert tpr_at_fpr(signal, member, 1 / 3) == 1.0
    tied = np.array([1.0, 1.0, 0.0, 0.0])  # one member and one non-member tied on top
    assert roc_auc(tied, np.array([True, False, True, False])) == 0.5
    assert tpr_at_fpr(tied, np.array([True, False, True, False]), 0.4) == 0.0
