"""Preprocessing steps: untimed users, de-duplication, k-core, ordering, weights."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recllm.data.preprocess import (
    PreprocessConfig,
    behaviour_weights,
    chronological,
    deduplicate,
    k_core,
    preprocess,
)
from recllm.data.schema import build_dataset
from recllm.errors import ConfigError, DataFormatError


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


def test_deduplicate_keeps_latest_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    data = build_dataset(
        "d",
        frame([("a", "x", 5, 1.0), ("a", "x", 9, 4.0), ("a", "y", 7, 2.0), ("a", "x", 9, 5.0)]),
        rating_scale=(1, 5),
    )
    with caplog.at_level(logging.INFO):
        out = deduplicate(data.interactions, "d")
    assert len(out) == 2
    kept = out[out["item"] == 0]
    # Two rows at t=9: the later file row (rating 5) wins.
    assert kept["rating"].item() == 5.0 and kept["timestamp"].item() == 9
    assert "removed 2 duplicate" in caplog.text


def test_k_core_is_iterative() -> None:
    # Item z has 1 interaction; removing it leaves user c with 1, which must go too.
    rows = [(u, i, 0, 5.0) for u in "ab" for i in "xy"] + [("c", "z", 0, 5.0), ("c", "x", 1, 5.0)]
    data = build_dataset("d", frame(rows), rating_scale=(1, 5))
    out = k_core(data.interactions, 2, 2)
    assert sorted(set(out["user"])) == [0, 1]
    assert len(out) == 4


def test_chronological_order_has_stable_tie_break() -> None:
    rows = [("a", "x", 5, 1.0), ("a", "y", 3, 1.0), ("a", "z", 3, 1.0), ("b", "x", 1, 1.0)]
    data = build_dataset("d", frame(rows), rating_scale=(1, 5))
    ordered = chronological(data.interactions.iloc[::-1].reset_index(drop=True))
    items = data.items["item_id"].to_numpy()[ordered["item"].to_numpy()]
    # Reversed input: among the t=3 ties the original-row order (now z before y) is kept.
    assert items.tolist() == ["z", "y", "x", "x"]


def test_untimed_users_dropped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    rows = [("a", "x", 1, 5.0), ("a", "y", 2, 5.0), ("b", "x", None, 5.0), ("b", "y", 3, 5.0)]
    data = build_dataset("d", frame(rows), rating_scale=(1, 5))
    with caplog.at_level(logging.WARNING):
        out = preprocess(data, PreprocessConfig(0, 0))
    assert out.n_users == 1
    assert "dropped 1 users (2 interactions) without timestamps" in caplog.text
    kept = preprocess(data, PreprocessConfig(0, 0, drop_untimed_users=False))
    assert kept.n_users == 2


def test_compaction_renumbers_and_keeps_text() -> None:
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]})
    data = build_dataset(
        "d", frame([("a", "z", 1, 5.0), ("a", "x", 2, 5.0)]), items, rating_scale=(1, 5)
    )
    out = preprocess(data, PreprocessConfig(0, 0))
    assert out.n_items == 2
    titles = out.items["title"].to_numpy()[out.interactions["item"].to_numpy()]
    assert titles.tolist() == ["Z", "X"]


@pytest.mark.parametrize(
    ("source", "scale", "expected"),
    [
        ("auto", (1.0, 5.0), [0.2, 1.0]),
        ("rating", (1.0, 5.0), [0.2, 1.0]),
        ("implicit", (1.0, 5.0), [1.0, 1.0]),
        ("auto", None, [1.0, 1.0]),
        ("column:rating", None, [0.2, 1.0]),
    ],
)
def test_behaviour_weights(source: str, scale, expected: list[float]) -> None:
    data = build_dataset("d", frame([("a", "x", 1, 1.0), ("a", "y", 2, 5.0)]), rating_scale=scale)
    np.testing.assert_allclose(behaviour_weights(data, source), expected, rtol=1e-6)


def test_missing_ratings_get_weight_one_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    data = build_dataset(
        "d", frame([("a", "x", 1, None), ("a", "y", 2, 4.0)]), rating_scale=(1.0, 5.0)
    )
    with caplog.at_level(logging.WARNING):
        weights = behaviour_weights(data, "rating")
    np.testing.assert_allclose(weights, [1.0, 0.8], rtol=1e-6)
    assert "1 interactions have no rating" in caplog.text


def test_bad_configs() -> None:
    with pytest.raises(ConfigError, match="min_user_interactions") as info:
        PreprocessConfig(min_user_interactions=-1, weight="dwell")
    assert "weight" in str(info.value)
    data = build_dataset("d", frame([("a", "x", 1, 1.0)]), rating_scale=None)
    with pytest.raises(ConfigError, match="no ratings"):
        behaviour_weights(data, "rating")
    with pytest.raises(ConfigError, match="no column 'dwell'"):
        behaviour_weights(data, "column:dwell")


@pytest.mark.parametrize(
    ("ratings", "scale", "source", "bad"),
    [
        ((-1.0, 5.0), (-1.0, 5.0), "rating", "-1"),  # a negative weight
        ((0.0, 5.0), (0.0, 5.0), "auto", "0"),  # a zero weight
        ((3.0, 7.0), (1.0, 5.0), "rating", "7"),  # above the scale: more than fully
        ((float("inf"), 5.0), (1.0, 5.0), "rating", "inf"),
        ((0.0, 5.0), None, "column:rating", "0"),
    ],
)
def test_ratings_that_give_weights_outside_0_1_are_refused(
    ratings: tuple[float, float], scale, source: str, bad: str
) -> None:
    rows = [("a", "x", 1, ratings[0]), ("a", "y", 2, ratings[1])]
    data = build_dataset("d", frame(rows), rating_scale=scale)
    with pytest.raises(DataFormatError, match=rf"1 interaction\(s\) have a .* \(e\.g\. {bad}\)"):
        behaviour_weights(data, source)


def test_a_dataset_left_empty_by_k_core_says_what_it_had() -> None:
    data = build_dataset("d", frame([("a", "x", 1, 4.0), ("b", "x", 2, 3.0), ("b", "y", 3, 5.0)]))
    with pytest.raises(
        DataFormatError, match=r"nothing left after the k-core filter .* it had 2 users and 2 items"
    ):
        preprocess(data, PreprocessConfig(5, 5))
