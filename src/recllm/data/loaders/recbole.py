"""RecBole atomic files: ``.inter`` and ``.item`` with ``name:type`` headers.

Types are ``token``, ``token_seq``, ``float`` and ``float_seq``; quoted fields may span
several lines (the Amazon-Beauty ``.item`` file has titles with embedded newlines).
"""

from __future__ import annotations

import ast
import html
from pathlib import Path

import pandas as pd

from recllm.data.io import read_delimited, require_file
from recllm.data.schema import ITEM_ID, Dataset, build_dataset
from recllm.errors import DataFormatError

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
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline().rstrip("\r\n")
    if not first:
        raise DataFormatError(path, "file is empty", 1)
    fields: list[tuple[str, str]] = []
    for token in first.split("\t"):
        name, sep, kind = token.rpartition(":")
        if not sep or kind not in _TYPES:
            raise DataFormatError(
                path,
                f"header field {token!r} is not 'name:type' with a type in {sorted(_TYPES)}"
                " (RecBole atomic files are tab-separated)",
                1,
            )
        fields.append((name, kind))
    return fields


def read_atomic(path: Path) -> pd.DataFrame:
    """Read an atomic file; columns are named without their ``:type`` suffix."""
    fields = read_header(path)
    raw_names = [f"{n}:{k}" for n, k in fields]
    numeric = [f"{n}:{k}" for n, k in fields if k == "float"]
    table = read_delimited(path, "\t", raw_names, numeric, header=True)
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
    return ", ".join(html.unescape(p).strip() for p in parts if p.strip())


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
            out[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:g}")
        else:
            out[col] = (
                values.fillna("")
                .astype(str)
                .map(html.unescape)
                .str.replace(r"\s+", " ", regex=True)
                .str.strip()
            )
    return out


def load_recbole(root: Path, name: str | None = None) -> Dataset:
    """A RecBole dataset folder: ``<name>.inter`` and optionally ``<name>.item``."""
    inter_files = sorted(root.glob("*.inter"))
    if not inter_files:
        raise DataFormatError(root, "no .inter file in this folder")
    inter_path = inter_files[0]
    stem = inter_path.stem
    table = read_atomic(inter_path)
    missing = [c for c in ("user_id", "item_id") if c not in table.columns]
    if missing:
        raise DataFormatError(inter_path, f"the .inter header lacks field(s) {missing}", 1)
    frame = table[[c for c in table.columns if c in _INTER_FIELDS]].rename(columns=_INTER_FIELDS)
    item_path = root / f"{stem}.item"
    items = item_table(item_path) if item_path.is_file() else None
    has_rating = "rating" in frame.columns and frame["rating"].notna().any()
    scale = (float(frame["rating"].min()), float(frame["rating"].max())) if has_rating else None
    return build_dataset(
        name or stem,
        frame,
        items,
        rating_scale=scale,
        text_template="Title: {title} | Brand: {brand} | Categories: {categories}",
        info={"source": str(root), "format": "recbole-atomic"},
    )
