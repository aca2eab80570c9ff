"""RecBole atomic files: ``.inter`` and ``.item`` with ``name:type`` headers.

Types are ``token``, ``token_seq``, ``float`` and ``float_seq``; quoted fields may span
several lines (the Amazon-Beauty ``.item`` file has titles with embedded newlines).
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pandas as pd

from recllm.data.io import read_delimited, read_first_line, require_file, unescape_html
from recllm.data.schema import ITEM_ID, Dataset, build_dataset
from recllm.errors import DataFormatError

log = logging.getLogger(__name__)

_TYPES = {"token", "token_seq", "float", "float_seq"}
# Canonical names for the usual RecBole field names.
_INTER_FIELDS = {
    "user_id": "user_id",
    "item_id": "item_id",
    "rating": "rating",
    "timestamp": "timestamp",
    "review": "review",
}


def read_header(path: Path) -> list[tuple[str, str]]:
    """Parse the ``name:type`` header of an atomic file into ``(name, type)`` pairs."""
    require_file(path, "RecBole atomic file")
    first = read_first_line(path)
    fields: list[tuple[str, str]] = []
    for token in first.split("\t"):
        name, sep, kind = token.rpartition(":")
        if not sep or kind not in _TYPES or not name or any(c.isspace() or c == ":" for c in name):
            raise DataFormatError(
                path,
                f"header field {token!r} is not 'name:type' with a type in {sorted(_TYPES)}"
                " (RecBole atomic files are tab-separated)",
                1,
            )
        fields.append((name, kind))
    names = [n for n, _ in fields]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataFormatError(path, f"header names field(s) {duplicated} more than once", 1)
    return fields


def read_atomic(path: Path) -> pd.DataFrame:
    """Read an atomic file; columns are named without their ``:type`` suffix."""
    fields = read_header(path)
    raw_names = [f"{n}:{k}" for n, k in fields]
    numeric = [f"{n}:{k}" for n, k in fields if k == "float"]
    required = [f"{n}:{k}" for n, k in fields if n in ("user_id", "item_id")]
    table = read_delimited(path, "\t", raw_names, numeric, header=True, required=required)
    return table.rename(columns=dict(zip(raw_names, [n for n, _ in fields], strict=True)))


def clean_token_seq(value: str) -> str:
    """``"'Beauty', \"Women's\""`` -> ``"Beauty, Women's"`` (quotes and HTML entities gone).

    Amazon-derived token sequences are Python string literals joined by commas; they
    are parsed with :func:`ast.literal_eval` (safe), else split on whitespace as
    RecBole itself does.
    """
    text = str(value).strip()
    if not text:
        return ""
    try:
        parsed = ast.literal_eval(f"[{text}]")
        parts = [str(p) for p in parsed]
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parts = text.split()
    return ", ".join(unescape_html(p).strip() for p in parts if p.strip())


def item_table(path: Path) -> pd.DataFrame:
    """Item metadata from a ``.item`` file, text fields cleaned for templates."""
    table = read_atomic(path)
    if "item_id" not in table.columns:
        raise DataFormatError(path, "an .item file needs an 'item_id' field")
    kinds = dict(read_header(path))
    out = pd.DataFrame({ITEM_ID: table["item_id"].astype(str)})
    for col in table.columns:
        if col == "item_id":
            continue
        values = table[col]
        if kinds.get(col) == "token_seq":
            out[col] = values.fillna("").map(clean_token_seq)
        elif kinds.get(col) == "float":
            out[col] = values.map(_format_float)
        else:
            out[col] = (
                values.fillna("")
                .astype(str)
                .map(unescape_html)
                .str.replace(r"\s+", " ", regex=True)
                .str.strip()
            )
    return out


def _format_float(value: float) -> str:
    """1192562.0 -> "1192562", 5.04 -> "5.04" (``:g`` would give "1.19256e+06")."""
    if pd.isna(value):
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


def item_template(fields: list[str]) -> str:
    """A text template over the usual fields an item file has, in a fixed order."""
    preferred = ("title", "brand", "categories", "genres", "year", "price", "description")
    chosen = [f for f in preferred if f in fields] or [f for f in fields if f != ITEM_ID][:3]
    return " | ".join(f"{f.replace('_', ' ').capitalize()}: {{{f}}}" for f in chosen) or (
        "Item {item_id}"
    )


def load_recbole(root: Path, name: str | None = None) -> Dataset:
    """A RecBole dataset folder: ``<name>.inter`` and optionally ``<name>.item``."""
    inter_files = sorted(root.glob("*.inter"))
    if not inter_files:
        raise DataFormatError(root, "no .inter file in this folder")
    if len(inter_files) > 1:
        raise DataFormatError(
            root,
            f"several .inter files {[p.name for p in inter_files]}; a RecBole dataset folder "
            "holds one <name>.inter (pre-split benchmark files are not supported)",
        )
    inter_path = inter_files[0]
    stem = inter_path.stem
    table = read_atomic(inter_path)
    missing = [c for c in ("user_id", "item_id") if c not in table.columns]
    if missing:
        raise DataFormatError(inter_path, f"the .inter header lacks field(s) {missing}", 1)
    ignored = [c for c in table.columns if c not in _INTER_FIELDS]
    if ignored:
        log.info(
            "%s: field(s) %s are not used (only %s are)", inter_path, ignored, list(_INTER_FIELDS)
        )
    frame = table[[c for c in table.columns if c in _INTER_FIELDS]].rename(columns=_INTER_FIELDS)
    item_path = root / f"{stem}.item"
    items = item_table(item_path) if item_path.is_file() else None
    if items is None and any(root.glob("*.item")):
        log.warning("%s: no %s.item beside %s; items get no text", root, stem, inter_path.name)
    has_rating = "rating" in frame.columns and frame["rating"].notna().any()
    scale = (float(frame["rating"].min()), float(frame["rating"].max())) if has_rating else None
    return build_dataset(
        name or stem,
        frame,
        items,
        rating_scale=scale,
        text_template=item_template(list(items.columns)) if items is not None else "Item {item_id}",
        info={"source": str(root), "format": "recbole-atomic"},
    )
