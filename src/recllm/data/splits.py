"""Train / validation / test splits of a preprocessed (chronological) dataset.

* ``leave_one_out``: per user, the last interaction is the test target and the
  second-to-last the validation target; the rest is training. Users with fewer than
  three interactions stay in training only (counted in the log).
* ``temporal``: one global cut in time: the latest ``test_share`` of interactions
  (by timestamp) are test, the ``valid_share`` before them validation. Evaluation
  covers users who also have training history.
* ``cold_start``: leave-one-out, then a ``cold_share`` of items (chosen with ``seed``)
  is removed from training entirely, so they occur only as validation/test targets
  (and in the test history); evaluation reports cold and warm targets apart.

Any protocol can first hold out a ``holdout_users`` share of users (chosen with ``seed``)
from training, validation and test entirely: their interactions are kept apart
(``Split.holdout``) as the non-members of the privacy audit (``recllm bench privacy``),
drawn from the same distribution as the users the model was trained on.

For the test stage the model sees training + validation interactions as history and
those items are excluded from the ranking; for validation, training only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from recllm.config import run_settings_problems
from recllm.data.preprocess import chronological
from recllm.data.schema import Dataset
from recllm.data.sequences import UserSequences
from recllm.errors import ConfigError

log = logging.getLogger(__name__)

Stage = Literal["valid", "test"]
PROTOCOLS = ("leave_one_out", "temporal", "cold_start")


@dataclass
class SplitConfig:
    """Which protocol, with its shares and seed (the seed matters for cold-start only).

    Attributes:
        protocol: one of ``leave_one_out``, ``temporal``, ``cold_start``.
        valid_share: share of interactions (by time) for validation (``temporal``).
        test_share: share of interactions (by time) for test (``temporal``).
        cold_share: share of items held out of training (``cold_start``).
        holdout_users: share of users held out of every part of the split (0: none);
            their interactions become ``Split.holdout`` (privacy-audit non-members).
        seed: random seed of the cold-item and held-out-user choices.
    """

    protocol: str = "leave_one_out"
    valid_share: float = 0.1
    test_share: float = 0.1
    cold_share: float = 0.1
    holdout_users: float = 0.0
    seed: int = 42

    def __post_init__(self) -> None:
        problems = []
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        for name in ("valid_share", "test_share", "cold_share"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                problems.append(f"{name} must be in (0, 1), got {value}")
        if not 0.0 <= self.holdout_users < 1.0:
            problems.append(f"holdout_users must be in [0, 1), got {self.holdout_users}")
        if self.valid_share + self.test_share >= 1.0:
            problems.append("valid_share + test_share must be < 1")
        problems += run_settings_problems(self.seed)
        ConfigError.collect("split", problems)


@dataclass
class Split:
    """A dataset cut into training interactions and validation/test targets."""

    dataset: Dataset
    protocol: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    config: SplitConfig = field(default_factory=SplitConfig)
    # interactions of the users held out of training entirely (chronological)
    holdout: pd.DataFrame | None = None

    @property
    def n_users(self) -> int:
        return self.dataset.n_users

    @property
    def n_items(self) -> int:
        return self.dataset.n_items

    def history(self, stage: Stage) -> pd.DataFrame:
        """What the model may see when predicting ``stage`` targets (chronological)."""
        if stage == "valid":
            return self.train
        if stage == "test":
            return chronological(pd.concat([self.train, self.valid], ignore_index=True))
        raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")

    def targets(self, stage: Stage) -> pd.DataFrame:
        if stage not in ("valid", "test"):
            raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")
        return self.valid if stage == "valid" else self.test

    def sequences(self, stage: Stage | Literal["train"]) -> UserSequences:
        """Training sequences (``"train"``) or the history before ``stage`` targets."""
        frame = self.train if stage == "train" else self.history(stage)
        return UserSequences.from_frame(frame, self.n_users)

    def first_seen(self) -> np.ndarray:
        """(n_items,) the timestamp of each item's first timed training interaction, NaN
        for an item with none (a cold-start split's held-out items; see :func:`age_groups`)."""
        first = np.full(self.n_items, np.nan)
        times = self.train.groupby("item")["timestamp"].min()
        first[times.index.to_numpy()] = times.to_numpy(dtype=np.float64)
        return first

    def summary(self) -> dict[str, int | str]:
        summary: dict[str, int | str] = {
            "protocol": self.protocol,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "cold_items": len(self.cold_items),
        }
        if self.holdout is not None:
            summary["holdout_users"] = int(self.holdout["user"].nunique())
            summary["holdout_interactions"] = len(self.holdout)
        return summary


def age_groups(first_seen: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """Each item's age group, 0 the oldest, from ``first_seen`` (see
    :meth:`Split.first_seen`): the items seen, ranked by it (ties by item id), are cut at
    the shares ``cuts`` (increasing, in (0, 1)) into ``len(cuts) + 1`` groups; an item
    never seen joins the newest, as a new item would. Ranks, not time quantiles, so that
    tied times (coarse timestamps) cannot leave a group empty."""
    seen = np.flatnonzero(~np.isnan(first_seen))
    ranked = seen[np.argsort(first_seen[seen], kind="stable")]
    groups = np.full(len(first_seen), len(cuts), dtype=np.int64)
    groups[ranked] = np.searchsorted(
        cuts, np.arange(len(ranked)) / max(len(ranked), 1), side="right"
    )
    return groups


def split(dataset: Dataset, config: SplitConfig | None = None) -> Split:
    """Split a preprocessed dataset according to ``config``."""
    config = config or SplitConfig()
    frame = chronological(dataset.interactions)
    if frame["timestamp"].isna().any() and config.protocol != "leave_one_out":
        raise ConfigError(
            f"{dataset.name}: the {config.protocol} split needs timestamps on all rows"
        )
    frame, holdout = _hold_out_users(dataset, frame, config)
    if config.protocol == "temporal":
        result = _temporal(dataset, frame, config)
    else:
        result = _leave_one_out(dataset, frame, config)
        if config.protocol == "cold_start":
            result = _hold_out_cold_items(result, config)
    result.holdout = holdout
    return result


def _hold_out_users(
    dataset: Dataset, frame: pd.DataFrame, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the rest, the held-out users' interactions): a seeded ``holdout_users`` share of
    the users, chosen before any other split so both sides come from one distribution."""
    if config.holdout_users <= 0:
        return frame, None
    users = np.unique(frame["user"].to_numpy())
    n_out = max(1, round(config.holdout_users * len(users)))
    # its own stream: the cold-item choice of the same seed stays what it was
    rng = np.random.default_rng([config.seed, 1])
    out = np.isin(frame["user"].to_numpy(), rng.choice(users, size=n_out, replace=False))
    log.info(
        "%s: %d users (%d interactions) held out of training, validation and test",
        dataset.name,
        n_out,
        int(out.sum()),
    )
    return frame[~out].reset_index(drop=True), frame[out].reset_index(drop=True)


def _positions_from_end(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    users = frame["user"].to_numpy()
    counts = np.bincount(users)
    ends = np.cumsum(counts)
    from_end = ends[users] - 1 - np.arange(len(frame))
    return from_end, counts[users]


def _leave_one_out(dataset: Dataset, frame: pd.DataFrame, config: SplitConfig) -> Split:
    from_end, length = _positions_from_end(frame)
    eligible = length >= 3
    short_users = np.unique(frame["user"].to_numpy()[~eligible])
    if len(short_users):
        log.info(
            "%s: %d users with fewer than 3 interactions stay in training only",
            dataset.name,
            len(short_users),
        )
    test = eligible & (from_end == 0)
    valid = eligible & (from_end == 1)
    train = ~(test | valid)
    return Split(
        dataset,
        config.protocol,
        frame[train].reset_index(drop=True),
        frame[valid].reset_index(drop=True),
        frame[test].reset_index(drop=True),
        config=config,
    )


def _temporal(dataset: Dataset, frame: pd.DataFrame, config: SplitConfig) -> Split:
    ts = frame["timestamp"].to_numpy(dtype=np.int64)
    valid_cut = np.quantile(ts, 1.0 - config.valid_share - config.test_share, method="lower")
    test_cut = np.quantile(ts, 1.0 - config.test_share, method="lower")
    part = np.where(ts <= valid_cut, 0, np.where(ts <= test_cut, 1, 2))
    train = frame[part == 0]
    trained_users = np.zeros(dataset.n_users, dtype=bool)
    trained_users[train["user"].to_numpy()] = True
    has_history = trained_users[frame["user"].to_numpy()]
    orphan = (part > 0) & ~has_history
    if orphan.any():
        log.info(
            "%s: %d validation/test interactions of %d users with no training history are "
            "not evaluated",
            dataset.name,
            int(orphan.sum()),
            len(np.unique(frame["user"].to_numpy()[orphan])),
        )
    return Split(
        dataset,
        "temporal",
        train.reset_index(drop=True),
        frame[(part == 1) & has_history].reset_index(drop=True),
        frame[(part == 2) & has_history].reset_index(drop=True),
        config=config,
    )


def _hold_out_cold_items(result: Split, config: SplitConfig) -> Split:
    rng = np.random.default_rng(config.seed)
    n_cold = max(1, round(config.cold_share * result.n_items))
    cold = np.sort(rng.choice(result.n_items, size=n_cold, replace=False))
    is_cold = np.isin(result.train["item"].to_numpy(), cold)
    log.info(
        "%s: cold-start split holds out %d items; removed their %d training interactions",
        result.dataset.name,
        n_cold,
        int(is_cold.sum()),
    )
    train = result.train[~is_cold].reset_index(drop=True)
    has_history = np.zeros(result.n_users, dtype=bool)
    has_history[train["user"].to_numpy()] = True
    valid, test = (
        frame[has_history[frame["user"].to_numpy()]].reset_index(drop=True)
        for frame in (result.valid, result.test)
    )
    dropped = len(result.valid) + len(result.test) - len(valid) - len(test)
    if dropped:
        log.info(
            "%s: %d targets of users left without training history are not evaluated",
            result.dataset.name,
            dropped,
        )
    for frame in (valid, test):
        frame["cold"] = np.isin(frame["item"].to_numpy(), cold)
    return Split(result.dataset, "cold_start", train, valid, test, cold_items=cold, config=config)
