"""Who the attacks ask about: members, non-members and the attacker's auxiliary users.

Members are training interactions. Non-members are interactions of users held out of
training entirely (``data.split.holdout_users``), so both come from one distribution.
The held-out users are divided, seeded, into two disjoint halves: the attacker's
auxiliary data (users he knows from elsewhere, the shadow model's training queries) and
the non-members the attacks are scored on. Each pair carries the history before its item
(the last ``max_len`` items, oldest first): the attacker knows which items the user had
before, not the ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recllm.data.sequences import UserSequences


@dataclass(frozen=True)
class Pairs:
    """(user, item) pairs with the history before each item, and which are members.

    Shapes: ``users``, ``items``, ``member`` (n,); ``prefixes``: n arrays of item codes.
    """

    users: np.ndarray
    items: np.ndarray
    prefixes: list[np.ndarray]
    member: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    def __post_init__(self) -> None:
        n = len(self.items)
        if not (len(self.users) == len(self.prefixes) == len(self.member) == n):
            raise ValueError("users, items, prefixes and member must have one entry per pair")


def divide_users(users: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(auxiliary users, non-member users): a seeded half of ``users`` each."""
    users = np.unique(users)
    shuffled = np.random.default_rng([seed, 2]).permutation(users)
    half = len(shuffled) // 2
    return np.sort(shuffled[:half]), np.sort(shuffled[half:])


def interactions(
    sequences: UserSequences, users: np.ndarray, n: int | None, max_len: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(users, items, prefixes) of up to ``n`` interactions of ``users`` in random order
    (all when ``n`` is None), each at a position with at least one item before it."""
    users = np.asarray(users, dtype=np.int64)
    counts = sequences.lengths[users]
    owners = np.repeat(users, counts)  # (total,)
    position = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    index = sequences.indptr[owners] + position  # into sequences.items
    eligible = np.random.default_rng([seed, 3]).permutation(np.flatnonzero(position >= 1))
    if n is not None:
        eligible = eligible[:n]
    prefixes = [
        sequences.items[max(index[j] - max_len, index[j] - position[j]) : index[j]].astype(np.int64)
        for j in eligible
    ]
    return owners[eligible], sequences.items[index[eligible]].astype(np.int64), prefixes


def membership_pairs(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    n_users: int,
    n_per_side: int,
    max_len: int,
    seed: int,
) -> tuple[Pairs, np.ndarray]:
    """Members (``n_per_side`` training interactions) and as many non-members (held-out
    interactions of the non-member half), in a seeded random order; also the auxiliary
    users (the other half)."""
    aux, outsiders = divide_users(holdout["user"].to_numpy(), seed)
    trained = UserSequences.from_frame(train, n_users)
    held = UserSequences.from_frame(holdout, n_users)
    in_users = trained.users_with_items()
    mu, mi, mp = interactions(trained, in_users, n_per_side, max_len, seed)
    nu, ni, np_ = interactions(held, outsiders, n_per_side, max_len, seed + 1)
    n = min(len(mi), len(ni))  # equal sides: AUC and TPR read the same either way
    member = np.r_[np.ones(n, dtype=bool), np.zeros(n, dtype=bool)]
    prefixes = mp[:n] + np_[:n]
    # a random order: an attacker cut short by a budget has asked about both sides alike
    order = np.random.default_rng([seed, 8]).permutation(2 * n)
    pairs = Pairs(
        np.r_[mu[:n], nu[:n]][order],
        np.r_[mi[:n], ni[:n]][order],
        [prefixes[j] for j in order],
        member[order],
    )
    return pairs, aux


def exclusion_pairs(
    known: UserSequences, holdout: pd.DataFrame, n_per_side: int, seed: int
) -> Pairs:
    """Pairs for the exclusion attack, about users the service knows (``known``: every
    interaction it holds per user). Members: ``n_per_side`` (u, i) with i in u's history.
    Non-members: the same users each paired with an item of a random held-out
    interaction that is not in u's history, so both sides' items follow one popularity
    distribution and only u's history tells them apart. Prefixes are empty: the attack
    names the user, not a history."""
    rng = np.random.default_rng([seed, 6])
    users = known.users_with_items()
    owners = np.repeat(users, known.lengths[users])
    picked = rng.permutation(len(owners))[:n_per_side]
    member_users = owners[picked]
    member_items = np.concatenate([known.items_of(u) for u in users])[picked].astype(np.int64)
    pool = holdout["item"].to_numpy(dtype=np.int64)
    other_items = np.empty(len(picked), dtype=np.int64)
    for j, user in enumerate(member_users):
        history = set(known.items_of(int(user)).tolist())
        for _ in range(1000):
            item = int(pool[rng.integers(len(pool))])
            if item not in history:
                break
        else:
            raise ValueError(f"user {user} has nearly every held-out item in his history")
        other_items[j] = item
    n = len(picked)
    return Pairs(
        np.r_[member_users, member_users],
        np.r_[member_items, other_items],
        [np.zeros(0, dtype=np.int64)] * (2 * n),
        np.r_[np.ones(n, dtype=bool), np.zeros(n, dtype=bool)],
    )
