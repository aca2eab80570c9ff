"""Tiny random interaction data and two SASRec targets for the attack tests: one
overfitted on the members, one trained on other users only (it never saw the members).

The sequences have no structure, so nothing a model learns generalises: an attack can
only beat chance on the overfitted model through what it memorised."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

from recllm.models.sasrec import SASRec, SASRecConfig
from recllm.privacy.pairs import Pairs, membership_pairs

N_ITEMS = 60
LENGTH = 15
MAX_LEN = 20


def random_users(first: int, n: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = [
        (user, item, t)
        for user in range(first, first + n)
        for t, item in enumerate(rng.choice(N_ITEMS, size=LENGTH, replace=False))
    ]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def fitted(frame: pd.DataFrame, epochs: int, seed: int) -> SASRec:
    """SASRec trained (no dropout, full softmax) on every sequence of ``frame``."""
    torch.manual_seed(seed)
    model = SASRec(
        SASRecConfig(d_model=48, n_layers=1, n_heads=2, max_len=MAX_LEN, dropout=0.0), N_ITEMS
    )
    seqs = np.stack([g["item"].to_numpy() for _, g in frame.groupby("user")])  # (U, LENGTH)
    items = torch.from_numpy(seqs[:, :-1]).long()
    targets = torch.from_numpy(seqs[:, 1:]).long()
    mask = torch.ones(items.shape, dtype=torch.bool)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(epochs):
        loss = model(items, torch.ones(items.shape), mask, targets=targets, loss="ce").loss
        assert loss is not None
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@dataclass
class World:
    members: pd.DataFrame
    holdout: pd.DataFrame
    overfitted: SASRec
    never_saw: SASRec
    never_saw_frame: pd.DataFrame  # what never_saw was trained on (users 120-159)
    n_users: int


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: more threads only contend (the shadow models trained 40x slower with
    the default threads on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def world() -> World:
    return _world()


def _world() -> World:
    rng = np.random.default_rng(0)
    members = random_users(0, 40, rng)
    holdout = random_users(40, 80, rng)
    others = random_users(120, 40, rng)  # neither members nor held out
    return World(
        members,
        holdout,
        overfitted=fitted(members, epochs=300, seed=0),
        never_saw=fitted(others, epochs=300, seed=0),
        never_saw_frame=others,
        n_users=160,
    )


PairsAndAux = tuple[Pairs, np.ndarray]


@pytest.fixture(scope="session")
def pairs_and_aux(world: World) -> PairsAndAux:
    return membership_pairs(world.members, world.holdout, world.n_users, 400, MAX_LEN, seed=0)
