"""The canonical in-memory dataset every loader produces and every later stage reads.

Interactions hold integer codes, not raw ids, so that 20M rows stay small:

========== ========= =====================================================
column     dtype     meaning
========== ========= =====================================================
user       int32     row of :attr:`Dataset.user_ids`
item       int32     row of :attr:`Dataset.items`
timestamp  Int64     seconds since the epoch; missing where the source has none
rating     float32   explicit rating; NaN for implicit feedback or unknown
review     string    optional review text (only when the source has it)
========== ========= =====================================================

Behaviour weights are added by preprocessing (``weight`` column), because how to
derive them is a choice of the experiment, not a property of the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recllm.errors import DataFormatError

log = logging.getLogger(__name__)

INTERACTION_COLUMNS = ("user", "item", "timestamp", "rating")
OPTIONAL_INTERACTION_COLUMNS = ("review", "weight")
ITEM_ID = "item_id"


@dataclass
class Dataset:
    """Interactions plus item metadata, with raw ids kept beside the integer codes.

    Attributes:
        name: dataset name, e.g. ``"ml-100k"``.
        interactions: one row per interaction (see the module docstring).
        user_ids: raw user id of each user code, as strings.
        items: one row per item code: ``item_id`` (raw id, string) plus text fields.
        rating_scale: ``(min, max)`` of explicit ratings, ``None`` for implicit data.
        text_template: the item text template of this dataset (see :mod:`.text`).
        info: provenance and notes (source files, deviations), copied into results.
    """

    name: str
    interactions: pd.DataFrame
    user_ids: np.ndarray
    items: pd.DataFrame
    rating_scale: tuple[float, float] | None = None
    text_template: str = "Title: {title}"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise DataFormatError(self.name, f"interactions lack columns {missing}")
        if ITEM_ID not in self.items.columns:
            raise DataFormatError(self.name, f"item table lacks the column {ITEM_ID!r}")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    @property
    def is_implicit(self) -> bool:
        return self.rating_scale is None

    @property
    def text_fields(self) -> list[str]:
        return [c for c in self.items.columns if c != ITEM_ID]

    def with_interactions(self, interactions: pd.DataFrame) -> Dataset:
        """A copy sharing ids and items, with other interactions (codes unchanged)."""
        return Dataset(
            name=self.name,
            interactions=interactions,
            user_ids=self.user_ids,
            items=self.items,
            rating_scale=self.rating_scale,
            text_template=self.text_template,
            info=dict(self.info),
        )


def build_dataset(
    name: str,
    frame: pd.DataFrame,
    items: pd.DataFrame | None = None,
    *,
    rating_scale: tuple[float, float] | None = None,
    text_template: str = "Title: {title}",
    info: dict[str, Any] | None = None,
    keep_unrated_items: bool = True,
) -> Dataset:
    """Encode raw ids into codes and assemble a :class:`Dataset`.

    Args:
        frame: raw interactions with columns ``user_id``, ``item_id``, and optionally
            ``timestamp``, ``rating``, ``review``.
        items: item metadata with an ``item_id`` column; items that appear in
            interactions but not here get a row with empty text.
        keep_unrated_items: keep catalogue items that no one interacted with (they are
            part of the listed catalogue until preprocessing compacts it).
    """
    for col in ("user_id", "item_id"):
        if col not in frame.columns:
            raise DataFormatError(name, f"interactions lack the column {col!r}")
        _check_ids(frame[col], col, name)
    if len(frame) == 0:
        raise DataFormatError(name, "there are no interactions")
    user_codes, user_uniques = pd.factorize(frame["user_id"], sort=False)
    # Factorize first and turn only the distinct ids into strings: 20M int ids -> str
    # would cost seconds. (A raw id 7 and a metadata id "7" are the same item.)
    raw_codes, raw_uniques = pd.factorize(frame["item_id"], sort=False)
    unique_items = pd.Index(raw_uniques).astype(str)

    if items is None or len(items) == 0:
        items = pd.DataFrame({ITEM_ID: unique_items})
    items = items.copy()
    _check_ids(items[ITEM_ID], ITEM_ID, f"{name} item metadata")
    items[ITEM_ID] = items[ITEM_ID].astype(str)
    if items[ITEM_ID].duplicated().any():
        dup = items.loc[items[ITEM_ID].duplicated(), ITEM_ID].iloc[0]
        raise DataFormatError(name, f"item metadata lists item {dup!r} more than once")
    unique_codes = pd.Index(items[ITEM_ID]).get_indexer(unique_items)
    unknown_mask = unique_codes < 0
    info = dict(info or {})
    if unknown_mask.any():
        extra = np.asarray(unique_items[unknown_mask], dtype=object)
        items = pd.concat([items, pd.DataFrame({ITEM_ID: extra})], ignore_index=True)
        unique_codes[unknown_mask] = np.arange(len(items) - len(extra), len(items))
        info["items_without_metadata"] = len(extra)
        if len(items) > len(extra):  # only worth saying when there is metadata at all
            log.info(
                "%s: %d item(s) have interactions but no metadata (e.g. %r); they get empty text",
                name,
                len(extra),
                str(extra[0]),
            )
    item_codes = unique_codes[raw_codes]
    if not keep_unrated_items:
        used = np.unique(item_codes)
        if len(used) < len(items):
            log.info(
                "%s: dropped %d of %d items of the metadata that no interaction refers to",
                name,
                len(items) - len(used),
                len(items),
            )
            info["items_dropped_without_interactions"] = len(items) - len(used)
        remap = np.full(len(items), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        items = items.iloc[used].reset_index(drop=True)
        item_codes = remap[item_codes]

    out = pd.DataFrame(
        {
            "user": user_codes.astype(np.int32),
            "item": np.asarray(item_codes, dtype=np.int32),
            "timestamp": _as_timestamps(frame, name),
            "rating": _as_ratings(frame, name),
        }
    )
    if "review" in frame.columns:
        out["review"] = pd.array(frame["review"].to_numpy(dtype=object), dtype="string")
    text_cols = [c for c in items.columns if c != ITEM_ID]
    items[text_cols] = items[text_cols].astype("string")
    return Dataset(
        name=name,
        interactions=out,
        user_ids=np.asarray(user_uniques.astype(str)),
        items=items.reset_index(drop=True),
        rating_scale=rating_scale,
        text_template=text_template,
        info=info,
    )


def _check_ids(values: pd.Series, column: str, name: str) -> None:
    """Ids may not be missing or blank: such rows would silently merge into one user."""
    missing = values.isna()
    if isinstance(values.dtype, pd.StringDtype):
        missing |= (values == "").fillna(False).astype(bool)
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataFormatError(
            name, f"{int(missing.sum())} row(s) have no {column} (first: row {row})"
        )


def _as_timestamps(frame: pd.DataFrame, name: str) -> pd.Series:
    """Seconds since the epoch as ``Int64``, from numbers, numeric strings or datetimes."""
    if "timestamp" not in frame.columns:
        return pd.Series(pd.array([pd.NA] * len(frame), dtype="Int64"))
    col = frame["timestamp"].reset_index(drop=True)
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
        # Parquet stores times as datetimes; their integer form is in (milli/micro/nano)
        # seconds depending on the unit, so convert explicitly.
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = (col - pd.Timestamp(0)) // pd.Timedelta(seconds=1)
        return pd.Series(pd.array(seconds, dtype="Int64"))
    col = _numeric(col, "timestamp", name)
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    fractional = np.isfinite(values) & (values != np.floor(values))
    if fractional.any():
        log.info(
            "%s: %d timestamp(s) have fractions of a second; rounded down to whole seconds",
            name,
            int(fractional.sum()),
        )
    if np.isinf(values).any():
        raise DataFormatError(name, "timestamps include infinite values")
    out_of_range = np.abs(values) >= 2.0**62  # seconds; int64 holds them, with room
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range)[0])
        raise DataFormatError(
            name, f"timestamp {values[row]:g} in interaction row {row} is out of range (seconds)"
        )
    return pd.Series(pd.array(np.floor(values), dtype="Int64"))


def _as_ratings(frame: pd.DataFrame, name: str) -> np.ndarray:
    if "rating" not in frame.columns:
        return np.full(len(frame), np.nan, dtype=np.float32)
    return _numeric(frame["rating"], "rating", name).to_numpy(dtype=np.float32, na_value=np.nan)


def _numeric(col: pd.Series, what: str, name: str) -> pd.Series:
    """``col`` as numbers; the first value that is not a number is reported by row."""
    if pd.api.types.is_numeric_dtype(col):
        return col
    converted = pd.to_numeric(col, errors="coerce")
    bad = converted.isna() & col.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(
            name, f"non-numeric {what} {col.iloc[row]!r} in interaction row {row}"
        )
    return converted
