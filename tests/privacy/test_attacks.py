"""Each model-level attack beats chance on an overfitted model and sits near AUC 0.5 on a
model that never saw the members; refusals pull it to chance; defences change answers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from conftest import N_ITEMS, PairsAndAux, World

from recllm.data.sequences import UserSequences
from recllm.privacy import attacks
from recllm.privacy.defences import Answer, ResponsePolicy
from recllm.privacy.metrics import roc_auc
from recllm.privacy.pairs import Pairs, exclusion_pairs, interactions
from recllm.privacy.shadow import ShadowConfig
from recllm.privacy.targets import ModelTarget, ModelUserLister

OPEN = ResponsePolicy(max_k=N_ITEMS)


def aux_queries(world: World, aux: np.ndarray) -> list[np.ndarray]:
    sequences = UserSequences.from_frame(world.holdout, world.n_users)
    return interactions(sequences, aux, None, 20, seed=0)[2]


def auc(signals: attacks.Signals, name: str, pairs: Pairs) -> float:
    return roc_auc(signals.values[name], pairs.member)


def test_pairs_are_balanced_and_disjoint(world: World, pairs_and_aux: PairsAndAux) -> None:
    pairs, aux = pairs_and_aux
    assert pairs.member.sum() == (~pairs.member).sum() == 400
    # mixed order: the first pairs a budget lets through hold both sides
    assert 150 < pairs.member[:400].sum() < 250
    member_users = set(pairs.users[pairs.member].tolist())
    outsiders = set(pairs.users[~pairs.member].tolist())
    assert member_users <= set(world.members["user"]) and not outsiders & member_users
    assert not set(aux.tolist()) & outsiders and set(aux.tolist()) <= set(world.holdout["user"])
    for user, item, prefix in zip(pairs.users, pairs.items, pairs.prefixes, strict=True):
        sequence = (world.members if user < 40 else world.holdout).query("user == @user")["item"]
        order = sequence.tolist()
        assert order[: order.index(item)][-20:] == prefix.tolist()  # the history before it


@pytest.mark.parametrize("name", ["threshold-rank", "threshold-score"])
def test_threshold_beats_chance_only_on_the_overfitted_model(
    world: World, pairs_and_aux: PairsAndAux, name: str
) -> None:
    pairs, _ = pairs_and_aux
    seen = attacks.threshold(ModelTarget(world.overfitted, OPEN), pairs, k=N_ITEMS)
    unseen = attacks.threshold(ModelTarget(world.never_saw, OPEN), pairs, k=N_ITEMS)
    assert auc(seen, name, pairs) > 0.8
    assert abs(auc(unseen, name, pairs) - 0.5) < 0.07
    assert seen.queries == len(pairs) and seen.answered.all()


def test_ranks_only_hides_scores_but_not_ranks(world: World, pairs_and_aux: PairsAndAux) -> None:
    pairs, _ = pairs_and_aux
    hidden = ResponsePolicy(max_k=N_ITEMS, scores="hidden")
    signals = attacks.threshold(ModelTarget(world.overfitted, hidden), pairs, k=N_ITEMS)
    assert "threshold-score" not in signals.values
    assert auc(signals, "threshold-rank", pairs) > 0.8


def test_short_lists_and_noise_weaken_the_threshold_attack(
    world: World, pairs_and_aux: PairsAndAux
) -> None:
    pairs, _ = pairs_and_aux
    full = auc(
        attacks.threshold(ModelTarget(world.overfitted, OPEN), pairs, N_ITEMS),
        "threshold-rank",
        pairs,
    )
    noisy = ResponsePolicy(max_k=N_ITEMS, noise=3.0)
    noised = auc(
        attacks.threshold(ModelTarget(world.overfitted, noisy), pairs, N_ITEMS),
        "threshold-rank",
        pairs,
    )
    assert noised < full - 0.05


@pytest.fixture(scope="module")
def shadow_aucs(world: World, pairs_and_aux: PairsAndAux) -> dict[str, dict[str, float]]:
    """Both shadow signals' AUC against the overfitted model and the one that never saw
    the members (the shadows are the slow part: trained once for both tests)."""
    pairs, aux = pairs_and_aux
    queries = aux_queries(world, aux)
    config = ShadowConfig(d_model=48, n_layers=1, epochs=10, batch_size=128)
    figures: dict[str, dict[str, float]] = {}
    for label, model in (("seen", world.overfitted), ("unseen", world.never_saw)):
        target = ModelTarget(model, ResponsePolicy(max_k=10))
        ranks = attacks.threshold(target, pairs, k=10).values["threshold-rank"]
        signals = attacks.shadow(target, pairs, queries, 10, config, target_rank=ranks)
        assert signals.queries == len(queries) and signals.answered.all()
        figures[label] = {name: auc(signals, name, pairs) for name in signals.values}
    return figures


@pytest.mark.parametrize("name", ["shadow-rank", "shadow-calibrated"])
def test_shadow_beats_chance_only_on_the_overfitted_model(
    shadow_aucs: dict[str, dict[str, float]], name: str
) -> None:
    assert shadow_aucs["seen"][name] > 0.6, shadow_aucs
    assert abs(shadow_aucs["unseen"][name] - 0.5) < 0.07, shadow_aucs


class Refusing:
    """A target that answers nothing (a service that wants a key the attacker lacks)."""

    n_items = N_ITEMS

    def answer(self, histories: Sequence[np.ndarray], k: int) -> list[Answer | None]:
        return [None] * len(histories)


def test_refused_requests_leave_the_attacker_guessing(
    world: World, pairs_and_aux: PairsAndAux
) -> None:
    pairs, aux = pairs_and_aux
    signals = attacks.threshold(Refusing(), pairs, k=10)
    assert not signals.answered.any()
    assert abs(auc(signals, "threshold-rank", pairs) - 0.5) < 0.07
    assert np.isfinite(signals.values["threshold-rank"]).all()
    refused = attacks.shadow(Refusing(), pairs, aux_queries(world, aux)[:20], 10, ShadowConfig())
    assert set(refused.values) == {"shadow-rank"} and refused.queries == 20
    assert refused.answered_queries == 0
    # the shadow answered, the threshold refused: the calibrated signal stays finite
    config = ShadowConfig(d_model=8, n_layers=1, epochs=1)
    target = ModelTarget(world.overfitted, OPEN)
    calibrated = attacks.shadow(
        target, pairs, aux_queries(world, aux)[:20], 10, config, signals.values["threshold-rank"]
    )
    assert np.isfinite(calibrated.values["shadow-calibrated"]).all()


def known_users(frame: pd.DataFrame, n_users: int) -> UserSequences:
    return UserSequences.from_frame(frame.sort_values(["user", "timestamp"]), n_users)


def test_exclusion_reads_the_history_a_service_holds(world: World) -> None:
    """Paging through a known user's lists shows his items by their absence: near AUC 1
    when the pages cover the catalogue, partly with fewer pages, 0.5 when refused or when
    the service holds other items for those users (it never saw the members)."""
    known = known_users(world.members, world.n_users)
    pairs = exclusion_pairs(known, world.holdout, 300, seed=0)
    assert pairs.member.sum() == (~pairs.member).sum() == 300
    for user, item, member in zip(pairs.users, pairs.items, pairs.member, strict=True):
        assert (item in known.items_of(int(user))) == member
    users = [str(u) for u in pairs.users]
    items = [str(i) for i in pairs.items]
    policy = ResponsePolicy(max_k=20)

    def attack(lister: ModelUserLister, pages: int) -> tuple[float, int]:
        signals = attacks.exclusion(lister, users, items, page_k=20, pages=pages)
        return auc(signals, "exclusion", pairs), signals.queries

    full, queries = attack(ModelUserLister(world.overfitted, known, policy), pages=5)
    distinct = len(set(users))
    assert full == 1.0 and queries == 3 * distinct  # 45 unseen items: the third page is short
    one_page, queries = attack(ModelUserLister(world.overfitted, known, policy), pages=1)
    assert 0.55 < one_page < 0.95 and queries == distinct
    # the service caps what a request may exclude: paging stops there, as with one page
    capped = attacks.exclusion(
        ModelUserLister(world.overfitted, known, policy), users, items, 20, 5, max_exclude=19
    )
    assert capped.queries == distinct and auc(capped, "exclusion", pairs) == one_page
    refused, _ = attack(ModelUserLister(world.overfitted, known, policy, refuse=True), pages=5)
    assert abs(refused - 0.5) < 0.07
    others = world.never_saw_frame.assign(user=world.never_saw_frame["user"] - 120)
    elsewhere = ModelUserLister(world.never_saw, known_users(others, world.n_users), policy)
    assert abs(attack(elsewhere, pages=5)[0] - 0.5) < 0.07
