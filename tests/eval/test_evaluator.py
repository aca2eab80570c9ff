"""The evaluator's protocol: exclusion, batching, groups, sampled metrics, bad scorers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recllm.data.preprocess import PreprocessConfig, preprocess
from recllm.data.schema import build_dataset
from recllm.data.sequences import UserSequences
from recllm.data.splits import Split, SplitConfig, split
from recllm.errors import ConfigError, RecLLMError
from recllm.eval.evaluator import EvalConfig, evaluate
from recllm.models.popularity import Popularity


def make_split(
    n_users: int = 30,
    n_items: int = 40,
    length: int = 8,
    seed: int = 0,
    protocol: str = "leave_one_out",
) -> Split:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=length, replace=False)
        rows += [(f"u{u}", f"i{i}", t, 4.0) for t, i in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    data = preprocess(build_dataset("toy", frame, rating_scale=(1.0, 5.0)), PreprocessConfig(0, 0))
    return split(data, SplitConfig(protocol=protocol, cold_share=0.2))


class Oracle:
    """Scores the user's test target highest, and optionally their history even higher."""

    def __init__(self, s: Split, boost_history: bool = False) -> None:
        self.target = dict(zip(s.test["user"], s.test["item"], strict=True))
        self.n_items = s.n_items
        self.boost_history = boost_history

    def __call__(self, users: np.ndarray, history: UserSequences) -> torch.Tensor:
        scores = torch.zeros(len(users), self.n_items)
        for row, u in enumerate(users):
            scores[row, self.target[int(u)]] = 1.0
            if self.boost_history:
                scores[row, torch.from_numpy(history.items_of(int(u)).astype(np.int64))] = 5.0
        return scores


def test_oracle_is_perfect_and_history_is_excluded() -> None:
    s = make_split()
    result = evaluate(Oracle(s, boost_history=True), s, "test", progress=False)
    assert result.n_users == s.test["user"].nunique()
    assert result.metrics["ndcg@10"] == pytest.approx(1.0)
    assert result.metrics["mrr@10"] == pytest.approx(1.0)
    # Without exclusion the 7 boosted history items sit above the target (rank 8).
    config = EvalConfig(ks=(5, 10), exclude_history=False)
    no_exclusion = evaluate(Oracle(s, boost_history=True), s, "test", config, progress=False)
    assert no_exclusion.metrics["hit@5"] == 0.0
    assert no_exclusion.metrics["mrr@10"] == pytest.approx(1 / 8)


def test_batching_does_not_change_results() -> None:
    s = make_split(n_users=50)
    pop = Popularity(s.train["item"].to_numpy(), s.n_items)
    whole = evaluate(pop, s, "valid", EvalConfig(batch_size=1000), progress=False)
    pieces = evaluate(pop, s, "valid", EvalConfig(batch_size=7), progress=False)
    for key, value in whole.metrics.items():
        assert pieces.metrics[key] == pytest.approx(value)


def test_valid_history_is_train_and_test_history_adds_valid() -> None:
    s = make_split()
    valid_hist, test_hist = s.sequences("valid"), s.sequences("test")
    assert (test_hist.lengths == valid_hist.lengths + 1).all()
    for u in range(s.n_users):
        valid_item = s.valid.loc[s.valid["user"] == u, "item"].item()
        assert test_hist.items_of(u)[-1] == valid_item


def test_cold_and_warm_groups_partition_users() -> None:
    s = make_split(n_users=80, protocol="cold_start")
    pop = Popularity(s.train["item"].to_numpy(), s.n_items)
    result = evaluate(pop, s, "test", progress=False)
    cold, warm = result.groups["cold"], result.groups["warm"]
    assert cold["n_users"] + warm["n_users"] == result.n_users
    assert cold["n_users"] == int(s.test["cold"].sum()) > 0
    # Cold items have no training interactions, so popularity scores them 0 -> ties.
    mixed = (
        cold["recall@10"] * cold["n_users"] + warm["recall@10"] * warm["n_users"]
    ) / result.n_users
    assert mixed == pytest.approx(result.metrics["recall@10"])


def test_item_groups_report_the_targets_in_each_set_of_items() -> None:
    s = make_split(n_users=80, protocol="cold_start")
    pop = Popularity(s.train["item"].to_numpy(), s.n_items)
    cold_items = np.zeros(s.n_items, dtype=bool)
    cold_items[s.test.loc[s.test["cold"], "item"].to_numpy()] = True
    even = np.arange(s.n_items) % 2 == 0
    groups = {"cold items": cold_items, "even": even, "odd": ~even}
    result = evaluate(pop, s, "test", progress=False, item_groups=groups)
    # a set of items that is exactly the cold targets' gives the built-in cold group
    assert result.groups["cold items"] == result.groups["cold"]
    # one target per user: two complementary sets split the users and their metrics
    halves = [result.groups["even"], result.groups["odd"]]
    assert sum(h["n_users"] for h in halves) == result.n_users
    assert all(h["n_users"] > 0 for h in halves)
    mixed = sum(h["ndcg@10"] * h["n_users"] for h in halves) / result.n_users
    assert mixed == pytest.approx(result.metrics["ndcg@10"])
    with pytest.raises(ValueError, match="boolean array over the"):
        evaluate(pop, s, "test", progress=False, item_groups={"short": even[:-1]})
    with pytest.raises(ValueError, match="clashes with a built-in group"):
        evaluate(pop, s, "test", progress=False, item_groups={"cold": even})


def test_sampled_metrics_are_labelled_and_avoid_history() -> None:
    s = make_split()
    result = evaluate(
        Oracle(s, boost_history=True),
        s,
        "test",
        EvalConfig(sampled="uniform", n_negatives=20),
        progress=False,
    )
    assert all(k.startswith("sampled_uniform_20/") for k in result.sampled)
    assert not any(k.startswith("sampled") for k in result.metrics)
    # History items score 5 > target 1: if any were sampled, sampled hit@1 would drop.
    assert result.sampled["sampled_uniform_20/hit@10"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (lambda b, n: torch.zeros(b, n + 1), "expected"),
        (lambda b, n: torch.full((b, n), float("nan")), "NaN"),
    ],
)
def test_bad_scorer_output_is_reported(scores, message: str) -> None:
    s = make_split()
    with pytest.raises(ValueError, match=message):
        evaluate(lambda users, hist: scores(len(users), s.n_items), s, "test", progress=False)


def test_minus_inf_scores_still_rank_above_excluded_items() -> None:
    s = make_split()

    def scorer(users: np.ndarray, history: UserSequences) -> torch.Tensor:
        return torch.full((len(users), s.n_items), float("-inf"))

    result = evaluate(scorer, s, "test", progress=False)
    n_candidates = s.n_items - 7  # 7 history items excluded
    assert result.metrics["hit@10"] == pytest.approx(10 / n_candidates)


def test_bad_config_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        EvalConfig(ks=(0,), batch_size=0, sampled="weird")  # type: ignore[arg-type]
    text = str(info.value)
    assert "ks" in text and "batch_size" in text and "sampled" in text


def test_a_stage_without_users_is_refused_not_reported_as_zeros() -> None:
    """Users with 2 interactions stay in training only (leave-one-out needs 3): there is
    nobody to evaluate, and a table of 0.0000 would read as a result."""
    short = make_split(n_users=5, length=2)
    assert short.test.empty
    with pytest.raises(RecLLMError, match="nothing to evaluate: the test split of toy has no user"):
        evaluate(Oracle(short), short, "test", progress=False)
    with pytest.raises(RecLLMError, match="the valid split"):
        evaluate(Oracle(short), short, "valid", progress=False)
