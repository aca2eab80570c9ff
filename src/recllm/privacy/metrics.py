"""How well a membership signal separates members from non-members.

A signal is one number per (user, item) pair, higher meaning "more likely a member".
ROC AUC is the chance that a random member scores above a random non-member (ties count
one half); TPR at a low FPR is what matters to an attacker who must be right when he
claims membership (Carlini et al., 2022), so both are reported, with the sample sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FPRS = (0.01, 0.1)


def _checked(signal: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    signal = np.asarray(signal, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if signal.shape != member.shape or signal.ndim != 1:
        raise ValueError(f"signal {signal.shape} and member {member.shape} must be equal 1-D")
    if not member.any() or member.all():
        raise ValueError("need at least one member and one non-member")
    if not np.isfinite(signal).all():
        raise ValueError("signals must be finite (map 'absent' to a finite value)")
    return signal, member


def roc_auc(signal: np.ndarray, member: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    signal, member = _checked(signal, member)
    ranks = pd.Series(signal).rank(method="average").to_numpy()  # (n,) 1-based
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    u = ranks[member].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def tpr_at_fpr(signal: np.ndarray, member: np.ndarray, fpr: float) -> float:
    """The best true-positive rate of a rule "member if signal >= t" whose false-positive
    rate is at most ``fpr``. Tied signals are claimed together, so ties cannot buy a
    lower FPR than the data allows."""
    signal, member = _checked(signal, member)
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    order = np.argsort(-signal, kind="stable")
    values, hits = signal[order], member[order]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    # only cut after the last of a run of equal values
    last = np.r_[values[1:] != values[:-1], True]
    ok = last & (fp <= fpr * n_neg)
    return float(tp[ok].max() / n_pos) if ok.any() else 0.0


def attack_figures(signal: np.ndarray, member: np.ndarray) -> dict[str, Any]:
    """ROC AUC, TPR at 1 % and 10 % FPR, and the numbers of members and non-members."""
    signal, member = _checked(signal, member)
    figures: dict[str, Any] = {"auc": round(roc_auc(signal, member), 4)}
    for fpr in FPRS:
        figures[f"tpr@{fpr:g}fpr"] = round(tpr_at_fpr(signal, member, fpr), 4)
    figures["members"] = int(member.sum())
    figures["non_members"] = int((~member).sum())
    return figures
