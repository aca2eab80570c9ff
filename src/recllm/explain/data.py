"""(user, item, history, reason) examples from a split, for training and held-out scoring.

Training pairs are the last few items of each user's training sequence, each with the
history before it; held-out pairs are each user's validation and test targets with the
history the evaluator gives them. Reasons are sentences realised from the pair's facts, so
they are true; several pairs per user give the generator varied targets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recllm.data.splits import Split
from recllm.explain.facts import facts_for
from recllm.explain.phrasing import Claim, realise
from recllm.routing.catalog import Catalog

MIN_HISTORY = 3  # a reason needs some history to point at


@dataclass(frozen=True)
class Example:
    user: int
    item: int
    history: np.ndarray  # item codes, oldest first
    ratings: np.ndarray  # the history's ratings
    text: str  # a true reason sentence
    claims: tuple[Claim, ...]


def user_sequences(frame: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each user's items and ratings, in the frame's (chronological) order."""
    ratings = frame["rating"] if "rating" in frame.columns else pd.Series(1.0, index=frame.index)
    grouped = pd.DataFrame({"user": frame["user"], "item": frame["item"], "rating": ratings})
    return {
        int(user): (rows["item"].to_numpy(), rows["rating"].to_numpy(dtype=float))
        for user, rows in grouped.groupby("user", sort=True)
    }


def training_examples(
    split: Split, catalog: Catalog, per_user: int = 5, seed: int = 0
) -> list[Example]:
    """Up to ``per_user`` pairs from the end of each training sequence."""
    rng = random.Random(seed)
    examples = []
    for user, (items, ratings) in user_sequences(split.train).items():
        for position in range(max(MIN_HISTORY, len(items) - per_user), len(items)):
            examples.append(
                _example(
                    catalog, user, items[:position], ratings[:position], int(items[position]), rng
                )
            )
    return examples


def held_out_examples(split: Split, catalog: Catalog, seed: int = 1) -> list[Example]:
    """One pair per user and stage (validation, test), with the evaluator's history."""
    rng = random.Random(seed)
    examples = []
    for stage in ("valid", "test"):
        histories = user_sequences(split.history(stage))
        for row in split.targets(stage).itertuples(index=False):
            items, ratings = histories.get(int(row.user), (np.zeros(0, int), np.zeros(0)))
            if len(items) >= MIN_HISTORY:
                examples.append(
                    _example(catalog, int(row.user), items, ratings, int(row.item), rng)
                )
    return examples


def _example(
    catalog: Catalog,
    user: int,
    history: np.ndarray,
    ratings: np.ndarray,
    item: int,
    rng: random.Random,
) -> Example:
    reason = realise(facts_for(catalog, history, item, ratings), rng)
    return Example(user, item, history, ratings, reason.text, reason.claims)
