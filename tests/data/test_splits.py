"""Leave-one-out, temporal and cold-start splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recllm.data.preprocess import PreprocessConfig, preprocess
from recllm.data.schema import build_dataset
from recllm.data.splits import SplitConfig, split
from recllm.errors import ConfigError


def toy(n_users: int = 40, n_items: int = 30, seed: int = 0, min_len: int = 1) -> object:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        length = int(rng.integers(min_len, 12))
        for t, i in enumerate(rng.choice(n_items, size=length, replace=False)):
            rows.append((f"u{u}", f"i{i}", 100 * t + u + int(rng.integers(0, 50)), 3.0))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    return preprocess(build_dataset("toy", frame, rating_scale=(1.0, 5.0)), PreprocessConfig(0, 0))


def test_leave_one_out_takes_last_two() -> None:
    data = toy()
    s = split(data, SplitConfig())
    frame = data.interactions
    for u in range(data.n_users):
        seq = frame[frame["user"] == u].sort_values("timestamp", kind="stable")["item"].tolist()
        if len(seq) >= 3:
            assert s.test[s.test["user"] == u]["item"].tolist() == [seq[-1]]
            assert s.valid[s.valid["user"] == u]["item"].tolist() == [seq[-2]]
            assert s.train[s.train["user"] == u]["item"].tolist() == seq[:-2]
        else:
            assert (
                u not in set(s.test["user"])
                and s.train[s.train["user"] == u]["item"].tolist() == seq
            )
    assert len(s.train) + len(s.valid) + len(s.test) == len(frame)


def test_temporal_split_cuts_globally() -> None:
    data = toy(seed=1)
    s = split(data, SplitConfig(protocol="temporal", valid_share=0.2, test_share=0.2))
    assert s.train["timestamp"].max() <= s.valid["timestamp"].min()
    assert s.valid["timestamp"].max() <= s.test["timestamp"].min()
    trained = set(s.train["user"])
    assert set(s.valid["user"]) <= trained and set(s.test["user"]) <= trained


def test_cold_start_items_never_in_training() -> None:
    data = toy(n_users=200, min_len=4, seed=2)
    s = split(data, SplitConfig(protocol="cold_start", cold_share=0.2, seed=3))
    assert len(s.cold_items) == round(0.2 * data.n_items)
    assert not set(s.train["item"]) & set(s.cold_items.tolist())
    assert s.test["cold"].any() and (~s.test["cold"]).any()
    assert (s.test["cold"] == s.test["item"].isin(s.cold_items)).all()
    again = split(data, SplitConfig(protocol="cold_start", cold_share=0.2, seed=3))
    np.testing.assert_array_equal(again.cold_items, s.cold_items)


def test_bad_split_configs() -> None:
    with pytest.raises(ConfigError) as info:
        SplitConfig(protocol="random", cold_share=1.5)
    assert "protocol" in str(info.value) and "cold_share" in str(info.value)
    with pytest.raises(ConfigError, match="valid_share \\+ test_share"):
        SplitConfig(valid_share=0.6, test_share=0.5)


def test_temporal_split_needs_timestamps() -> None:
    frame = pd.DataFrame(
        {"user_id": ["a", "a"], "item_id": ["x", "y"], "timestamp": [1, None], "rating": [1.0, 2.0]}
    )
    data = preprocess(
        build_dataset("d", frame, rating_scale=(1, 5)),
        PreprocessConfig(0, 0, drop_untimed_users=False),
    )
    with pytest.raises(ConfigError, match="needs timestamps"):
        split(data, SplitConfig(protocol="temporal"))


@pytest.mark.parametrize("protocol", ["leave_one_out", "temporal", "cold_start"])
def test_holdout_users_are_in_no_part_of_the_split(protocol: str) -> None:
    data = toy(n_users=100, min_len=4, seed=5)
    config = SplitConfig(protocol=protocol, holdout_users=0.2, seed=7)
    s = split(data, config)
    assert s.holdout is not None
    held = set(s.holdout["user"])
    assert len(held) == 20
    for part in (s.train, s.valid, s.test):
        assert not held & set(part["user"])
    frame = data.interactions
    assert len(s.holdout) == int(frame["user"].isin(held).sum())  # all of their interactions
    assert s.summary()["holdout_users"] == 20
    again = split(data, config)
    assert again.holdout is not None and set(again.holdout["user"]) == held  # seeded
    other = split(data, SplitConfig(protocol=protocol, holdout_users=0.2, seed=8))
    assert other.holdout is not None and set(other.holdout["user"]) != held


def test_no_holdout_by_default_and_cold_items_unchanged_by_it() -> None:
    data = toy(n_users=200, min_len=4, seed=2)
    plain = split(data, SplitConfig(protocol="cold_start", cold_share=0.2, seed=3))
    assert plain.holdout is None and "holdout_users" not in plain.summary()
    held = split(
        data, SplitConfig(protocol="cold_start", cold_share=0.2, seed=3, holdout_users=0.1)
    )
    assert np.array_equal(plain.cold_items, held.cold_items)


def test_holdout_share_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="holdout_users"):
        SplitConfig(holdout_users=1.0)
