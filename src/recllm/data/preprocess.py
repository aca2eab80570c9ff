"""Cleaning steps between a loaded dataset and a split, each logging what it removed.

Order of the pipeline (:func:`preprocess`):

1. drop users without timestamps (sequential protocols need an order);
2. de-duplicate (user, item) pairs: keep the *latest* interaction (its rating is the
   user's current opinion, and its position is where the item was last consumed);
   among equal timestamps the later row in the file wins;
3. iterative k-core filtering until every user and item has at least k interactions;
4. compact codes so that users and items are numbered 0..n-1 without gaps;
5. chronological order: by user, then timestamp, then original file order (stable);
6. behaviour weights (``weight`` column).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recllm.data.schema import Dataset
from recllm.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)

WEIGHT_SOURCES = ("auto", "rating", "implicit")


@dataclass
class PreprocessConfig:
    """How raw interactions become a clean, ordered table.

    Attributes:
        min_user_interactions: k of the user side of the k-core (0 disables it).
        min_item_interactions: k of the item side of the k-core (0 disables it).
        deduplicate: keep only the latest interaction of each (user, item) pair.
        drop_untimed_users: drop users with any interaction lacking a timestamp
            (needed for sequential splits; the shared ML-1M copy has such users).
        weight: ``"auto"`` (ratings if the data has them, else 1), ``"rating"``
            (rating / max rating), ``"implicit"`` (1 for all), or ``"column:NAME"``
            (column value / its maximum).
    """

    min_user_interactions: int = 5
    min_item_interactions: int = 5
    deduplicate: bool = True
    drop_untimed_users: bool = True
    weight: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        for name in ("min_user_interactions", "min_item_interactions"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.weight not in WEIGHT_SOURCES and not self.weight.startswith("column:"):
            problems.append(
                f"weight must be one of {WEIGHT_SOURCES} or 'column:NAME', got {self.weight!r}"
            )
        ConfigError.collect("preprocessing", problems)


def preprocess(dataset: Dataset, config: PreprocessConfig | None = None) -> Dataset:
    """Run the whole pipeline (see the module docstring) and return a new dataset."""
    config = config or PreprocessConfig()
    frame = dataset.interactions
    if config.drop_untimed_users:
        frame = drop_untimed_users(frame, dataset.name)
    if config.deduplicate:
        frame = deduplicate(frame, dataset.name)
    before = frame
    frame = k_core(frame, config.min_user_interactions, config.min_item_interactions, dataset.name)
    if not len(frame):
        raise DataFormatError(
            dataset.name,
            f"nothing left after the k-core filter (users >= {config.min_user_interactions}, "
            f"items >= {config.min_item_interactions} interactions): it had "
            f"{before['user'].nunique()} users and {before['item'].nunique()} items; lower "
            "data.preprocess.min_user_interactions / min_item_interactions",
        )
    out = compact(dataset.with_interactions(frame))
    out.interactions = chronological(out.interactions)
    out.interactions["weight"] = behaviour_weights(out, config.weight)
    out.info["preprocess"] = vars(config).copy()
    return out


def drop_untimed_users(frame: pd.DataFrame, name: str = "") -> pd.DataFrame:
    """Remove every user who has an interaction without a timestamp, with a warning."""
    missing = frame["timestamp"].isna().to_numpy()
    if not missing.any():
        return frame
    bad_users = np.unique(frame["user"].to_numpy()[missing])
    keep = ~np.isin(frame["user"].to_numpy(), bad_users)
    log.warning(
        "%s: dropped %d users (%d interactions) without timestamps; sequential splits "
        "need an order (set drop_untimed_users=False to keep them)",
        name,
        len(bad_users),
        int((~keep).sum()),
    )
    return frame.loc[keep].reset_index(drop=True)


def deduplicate(frame: pd.DataFrame, name: str = "") -> pd.DataFrame:
    """Keep the latest interaction per (user, item); ties go to the later file row."""
    order = _chronological_order(frame)
    ordered = frame.iloc[order]
    dup = ordered.duplicated(["user", "item"], keep="last").to_numpy()
    if dup.any():
        log.info(
            "%s: removed %d duplicate (user, item) interactions (kept the latest)",
            name,
            int(dup.sum()),
        )
        keep_rows = np.sort(order[~dup])
        return frame.iloc[keep_rows].reset_index(drop=True)
    return frame


def k_core(frame: pd.DataFrame, k_user: int, k_item: int, name: str = "") -> pd.DataFrame:
    """Iteratively drop users with < k_user and items with < k_item interactions."""
    if k_user <= 1 and k_item <= 1:
        return frame
    users = frame["user"].to_numpy()
    items = frame["item"].to_numpy()
    keep = np.ones(len(frame), dtype=bool)
    passes = 0
    while True:
        passes += 1
        user_counts = np.bincount(users[keep], minlength=users.max() + 1 if len(users) else 0)
        item_counts = np.bincount(items[keep], minlength=items.max() + 1 if len(items) else 0)
        bad = keep & ((user_counts[users] < k_user) | (item_counts[items] < k_item))
        if not bad.any():
            break
        keep &= ~bad
    removed = int((~keep).sum())
    if removed:
        log.info(
            "%s: %d-core (users) / %d-core (items) removed %d interactions in %d passes",
            name,
            k_user,
            k_item,
            removed,
            passes,
        )
    return frame.loc[keep].reset_index(drop=True)


def compact(dataset: Dataset) -> Dataset:
    """Renumber users and items 0..n-1 over those that still have interactions."""
    frame = dataset.interactions.copy()
    used_users, user_codes = np.unique(frame["user"].to_numpy(), return_inverse=True)
    used_items, item_codes = np.unique(frame["item"].to_numpy(), return_inverse=True)
    dropped_items = dataset.n_items - len(used_items)
    dropped_users = dataset.n_users - len(used_users)
    if dropped_items or dropped_users:
        log.info(
            "%s: catalogue now %d users and %d items (%d users and %d listed items have no "
            "remaining interactions)",
            dataset.name,
            len(used_users),
            len(used_items),
            dropped_users,
            dropped_items,
        )
    frame["user"] = user_codes.astype(np.int32)
    frame["item"] = item_codes.astype(np.int32)
    out = dataset.with_interactions(frame)
    out.user_ids = dataset.user_ids[used_users]
    out.items = dataset.items.iloc[used_items].reset_index(drop=True)
    return out


def _chronological_order(frame: pd.DataFrame) -> np.ndarray:
    """Row order by (user, timestamp, original row); missing timestamps sort first."""
    ts = frame["timestamp"].to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).min)
    return np.lexsort((np.arange(len(frame)), ts, frame["user"].to_numpy()))


def chronological(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by user, then timestamp, then original file order (a stable tie-break)."""
    return frame.iloc[_chronological_order(frame)].reset_index(drop=True)


def behaviour_weights(dataset: Dataset, source: str = "auto") -> np.ndarray:
    """Per-interaction weight in (0, 1] (see :class:`PreprocessConfig`)."""
    frame = dataset.interactions
    if source == "auto":
        has_ratings = dataset.rating_scale is not None and frame["rating"].notna().any()
        source = "rating" if has_ratings else "implicit"
    if source == "implicit":
        return np.ones(len(frame), dtype=np.float32)
    if source == "rating":
        if dataset.rating_scale is None:
            raise ConfigError(f"{dataset.name}: weight='rating' but the data has no ratings")
        ratings = frame["rating"].to_numpy(dtype=np.float32)
        unknown = np.isnan(ratings)
        if unknown.any():
            log.warning(
                "%s: %d interactions have no rating; their weight is 1 (treated as implicit)",
                dataset.name,
                int(unknown.sum()),
            )
        weights = np.where(unknown, 1.0, ratings / dataset.rating_scale[1]).astype(np.float32)
        return _in_range(weights, ratings, f"rating (scale {dataset.rating_scale})", dataset.name)
    column = source.removeprefix("column:")
    if column not in frame.columns:
        raise ConfigError(
            f"weight={source!r}: no column {column!r}; interactions have {list(frame.columns)}"
        )
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float32)
    if np.isnan(values).any():
        raise DataFormatError(dataset.name, f"weight column {column!r} must hold only numbers")
    top = float(values.max()) if len(values) else 1.0
    return _in_range(
        values / top if top > 0 else values, values, f"column {column!r}", dataset.name
    )


def _in_range(weights: np.ndarray, values: np.ndarray, what: str, name: str) -> np.ndarray:
    """``weights`` if all lie in (0, 1], the documented range (a negative rating must not
    weigh negatively, nor one above the scale count more than fully); else a data error
    naming a value it came from."""
    bad = ~np.isfinite(weights) | (weights <= 0) | (weights > 1)
    if bad.any():
        raise DataFormatError(
            name,
            f"{int(bad.sum())} interaction(s) have a {what} outside the range that gives a "
            f"behaviour weight in (0, 1] (e.g. {values[bad][0]:g}); fix the data or set "
            "data.preprocess.weight to 'implicit'",
        )
    return weights
