"""Plain CSV/TSV or Parquet interaction files with named columns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recllm.data.io import read_delimited, read_first_line, require_file
from recllm.data.schema import ITEM_ID, Dataset, build_dataset
from recllm.errors import ConfigError, DataFormatError

_NUMERIC = ("timestamp", "rating")


@dataclass(frozen=True)
class ColumnMap:
    """Which column of the file holds each canonical field.

    ``timestamp``, ``rating`` and ``review`` left as ``None`` are taken from columns of
    those exact names when the file has them, and are absent otherwise.
    """

    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str | None = None
    rating: str | None = None
    review: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ColumnMap:
        """Parse ``"user_id=uid,item_id=iid,timestamp=ts"``; unknown keys are an error."""
        allowed = [f.name for f in fields(cls)]
        values: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in allowed or not value:
                raise ConfigError(f"column mapping {part!r}: expected KEY=COLUMN, KEY in {allowed}")
            values[key] = value
        return cls(**values)

    def resolve(self, available: list[str], path: Path) -> dict[str, str]:
        """Canonical name -> file column, checking that every named column exists."""
        chosen: dict[str, str] = {}
        for f in fields(self):
            column = getattr(self, f.name)
            if column is None:
                if f.name in available:
                    chosen[f.name] = f.name
                continue
            if column not in available:
                raise DataFormatError(
                    path, f"no column {column!r} for {f.name}; the file has {available}"
                )
            chosen[f.name] = column
        reused = sorted({c for c in chosen.values() if list(chosen.values()).count(c) > 1})
        if reused:
            raise ConfigError(
                f"column mapping uses the column(s) {reused} of {path} for several fields: "
                f"{chosen}; map each field to its own column"
            )
        return chosen


def _sep(path: Path) -> str:
    return "\t" if ".tsv" in path.suffixes else ","


def column_names(path: Path) -> list[str]:
    """Header of a CSV/TSV file or schema names of a Parquet file."""
    require_file(path)
    if path.suffix == ".parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(path, f"not a readable Parquet file ({exc})") from exc
    first_line = read_first_line(path).removeprefix("\ufeff")
    return [c.strip().strip('"') for c in first_line.split(_sep(path))]


def read_table(
    path: Path, columns: list[str], numeric: list[str], required: list[str] | None = None
) -> pd.DataFrame:
    """Selected columns of a CSV/TSV (optionally gzipped) with a header, or of Parquet."""
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path, columns=columns).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(path, f"not a readable Parquet file ({exc})") from exc
        for col in numeric:
            if not (
                pd.api.types.is_numeric_dtype(table[col])
                or pd.api.types.is_datetime64_any_dtype(table[col])
            ):
                converted = pd.to_numeric(table[col], errors="coerce")
                bad = converted.isna() & table[col].notna()
                if bad.any():
                    row = int(bad.to_numpy().nonzero()[0][0])
                    raise DataFormatError(
                        path,
                        f"column {col!r} must be numeric, found {table[col].iloc[row]!r}"
                        f" (data row {row + 1})",
                    )
                table[col] = converted
        for col in required or []:
            if table[col].isna().any():
                row = int(table[col].isna().to_numpy().nonzero()[0][0])
                raise DataFormatError(path, f"column {col!r} is empty (data row {row + 1})")
        if len(table) == 0:
            raise DataFormatError(path, "holds no rows")
        return table
    return read_delimited(path, _sep(path), columns, numeric, header=True, required=required or ())


def load_table(
    path: Path,
    columns: ColumnMap | None = None,
    items_path: Path | None = None,
    name: str | None = None,
    rating_scale: tuple[float, float] | None = None,
) -> Dataset:
    """Interactions from a CSV/Parquet file and item text from an optional second one.

    The item file needs an ``item_id`` column; every other column is a text field.
    Without ``rating_scale`` it is taken from the data's minimum and maximum rating.
    """
    mapping = (columns or ColumnMap()).resolve(column_names(path), path)
    numeric = [col for key, col in mapping.items() if key in _NUMERIC]
    ids = [mapping["user_id"], mapping["item_id"]]
    table = read_table(path, list(dict.fromkeys(mapping.values())), numeric, ids)
    frame = table.rename(columns={col: key for key, col in mapping.items()})
    items = None
    if items_path is not None:
        item_columns = column_names(items_path)
        if ITEM_ID not in item_columns:
            raise DataFormatError(
                items_path, f"item file needs an {ITEM_ID!r} column; has {item_columns}"
            )
        items = read_table(items_path, item_columns, [], [ITEM_ID]).fillna("")
    if rating_scale is None and "rating" in frame.columns and frame["rating"].notna().any():
        rating_scale = (float(frame["rating"].min()), float(frame["rating"].max()))
    text_fields = [c for c in (items.columns if items is not None else []) if c != ITEM_ID]
    template = " | ".join(f"{f.capitalize()}: {{{f}}}" for f in text_fields) or "Item {item_id}"
    return build_dataset(
        name or path.name.split(".")[0],
        frame,
        items,
        rating_scale=rating_scale,
        text_template=template,
        info={"source": str(path), "format": "table", "columns": mapping},
    )
