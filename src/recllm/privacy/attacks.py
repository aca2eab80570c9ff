"""The three membership attacks; each turns a target's answers into signals per pair.

1. ``threshold``: ask for the top k after the user's history before item i; the signal
   is i's rank in the answer (``rank``) or its shown score (``score``), lowest when i
   is absent. Members were training targets after exactly that history.
2. ``shadow``: distil the target into a shadow SASRec through its answers to auxiliary
   users' histories (:mod:`recllm.privacy.shadow`); the signal is the shadow's rank of i
   (``shadow-rank``), and that rank against the target's (``shadow-calibrated``: a pair
   the target ranks far better than the shadow, which generalises, was likely seen).
3. ``exclusion``: the service leaves a known user's own items out of his list; paging
   through the list (``filters.exclude`` with what was already listed) shows which items
   never come: the signal is 1 for an item never listed, 0 for one listed.

Pairs a target refused to answer get a random signal (the attacker can only guess), so a
defence that refuses lowers the AUC towards 0.5 in proportion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from recllm.privacy.defences import Answer
from recllm.privacy.pairs import Pairs
from recllm.privacy.shadow import ShadowConfig, train_shadow
from recllm.privacy.targets import Target, history_scores

UserLister = Callable[[str, int, list[str]], list[str] | None]
"""``lister(user_id, k, exclude) -> item ids`` of a known user's list (None: refused)."""


@dataclass
class Signals:
    """Membership signals per pair (higher: more likely a member), by signal name; which
    pairs were answered (the shadow scores every pair itself); how many requests the
    attack sent, and how many of them were answered."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    answered: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    queries: int = 0
    answered_queries: int = 0


def guessed(values: np.ndarray, answered: np.ndarray, seed: int) -> np.ndarray:
    """``values`` with unanswered (and absent, -inf) entries made finite: -inf becomes
    just below the lowest finite value; unanswered pairs get uniform random values over
    the answered range."""
    values = np.asarray(values, dtype=np.float64).copy()
    finite = np.isfinite(values) & answered
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    values[answered & ~np.isfinite(values)] = low - 1.0
    rng = np.random.default_rng([seed, 4])
    values[~answered] = rng.uniform(low - 1.0, high, size=int((~answered).sum()))
    return values


def threshold(target: Target, pairs: Pairs, k: int, seed: int = 0) -> Signals:
    """Attack 1 (see the module docstring): one request per pair."""
    answers = target.answer(pairs.prefixes, k)
    answered = np.array([a is not None for a in answers], dtype=bool)
    rank = np.full(len(pairs), -np.inf)
    score = np.full(len(pairs), -np.inf)
    shows_scores = False
    for j, answer in enumerate(answers):
        if answer is None:
            continue
        hit = np.flatnonzero(answer.items == pairs.items[j])
        if len(hit):
            rank[j] = -float(hit[0] + 1)
            if answer.scores is not None:
                score[j] = float(answer.scores[hit[0]])
        else:
            rank[j] = -float(len(answer.items) + 1)  # beyond the list: all absent tie
        shows_scores = shows_scores or answer.scores is not None
    values = {"threshold-rank": guessed(rank, answered, seed)}
    if shows_scores:
        values["threshold-score"] = guessed(score, answered, seed)
    return Signals(values, answered, len(answers), int(answered.sum()))


def catalogue_ranks(scores: torch.Tensor, pairs: Pairs) -> np.ndarray:
    """(n,) 1-based rank of each pair's item in its row of ``scores`` (n, N), the
    items of its history left out; ties count in the item's favour."""
    ranks = np.empty(len(pairs), dtype=np.float64)
    for j, prefix in enumerate(pairs.prefixes):
        row = scores[j].clone()
        row[torch.from_numpy(np.asarray(prefix, dtype=np.int64))] = float("-inf")
        ranks[j] = 1 + int((row > row[int(pairs.items[j])]).sum())
    return ranks


def shadow(
    target: Target,
    pairs: Pairs,
    aux_queries: Sequence[np.ndarray],
    k: int,
    config: ShadowConfig,
    target_rank: np.ndarray | None = None,
    seed: int = 0,
) -> Signals:
    """Attack 2: ``len(aux_queries)`` requests to distil the shadow, none about the pairs.
    ``target_rank``: the threshold attack's ``threshold-rank`` signal (negated ranks), for
    the calibrated signal."""
    answers = target.answer(aux_queries, k)
    taught = [(q, a) for q, a in zip(aux_queries, answers, strict=True) if a is not None]
    answered = np.ones(len(pairs), dtype=bool)
    if not taught:  # every request refused: nothing learnt, a pure guess
        rng = np.random.default_rng([seed, 5])
        return Signals({"shadow-rank": rng.random(len(pairs))}, ~answered, len(answers), 0)
    model = train_shadow(
        target.n_items, [q for q, _ in taught], [_answer(a) for _, a in taught], config
    )
    ranks = catalogue_ranks(history_scores(model, pairs.prefixes), pairs)
    values = {"shadow-rank": -np.log(ranks)}
    if target_rank is not None:
        # guessed (unanswered) target ranks can fall below 1: clip to a rank
        values["shadow-calibrated"] = np.log(ranks) - np.log(np.maximum(-target_rank, 1.0))
    return Signals(values, answered, len(answers), len(taught))


def _answer(answer: Answer | None) -> Answer:
    assert answer is not None
    return answer


def exclusion(
    lister: UserLister,
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    page_k: int,
    pages: int,
    seed: int = 0,
    max_exclude: int | None = None,
) -> Signals:
    """Attack 3: up to ``pages`` requests per distinct user, each excluding what earlier
    pages listed; an item never listed is claimed a member. ``max_exclude``: the most
    items a request may exclude (the service's cap); paging stops there, and items the
    listing never reached are claimed members too (the attacker cannot tell them apart)."""
    listed: dict[str, set[str] | None] = {}
    queries = answered_queries = 0
    for user in dict.fromkeys(user_ids):  # distinct, in first-seen order
        seen: list[str] = []
        got_any = False
        for _ in range(pages):
            if max_exclude is not None and len(seen) > max_exclude:
                break  # the service would refuse this page's request
            page = lister(user, page_k, list(seen))
            queries += 1
            if page is None:
                break
            answered_queries += 1
            got_any = True
            seen.extend(page)
            if len(page) < page_k:  # the catalogue is exhausted
                break
        listed[user] = set(seen) if got_any else None
    answered = np.array([listed[u] is not None for u in user_ids], dtype=bool)
    never = np.array(
        [
            float(i not in shown) if (shown := listed[u]) is not None else np.nan
            for u, i in zip(user_ids, item_ids, strict=True)
        ]
    )
    return Signals(
        {"exclusion": guessed(never, answered, seed)}, answered, queries, answered_queries
    )
