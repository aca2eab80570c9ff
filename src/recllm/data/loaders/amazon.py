"""Amazon reviews 2014 and 2018 (McAuley et al.), and the Beauty copy in shared data.

Review files are strict JSON lines in both releases. The 2014 *metadata* files hold
Python dict literals (single quotes), which :func:`ast.literal_eval` parses safely;
``eval`` is never used.
"""

from __future__ import annotations

import ast
import html
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from recllm.data.io import iter_lines, read_delimited
from recllm.data.loaders.recbole import item_table
from recllm.data.schema import ITEM_ID, Dataset, build_dataset
from recllm.errors import DataFormatError

log = logging.getLogger(__name__)

AMAZON_TEMPLATE = "Title: {title} | Brand: {brand} | Categories: {categories} | Price: {price}"


def iter_records(path: Path, allow_python_literals: bool = False) -> Iterable[dict[str, Any]]:
    """Yield one dict per line of a (gzipped) JSON-lines file, naming bad lines."""
    for line_no, line in iter_lines(path):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            if not allow_python_literals:
                raise DataFormatError(path, f"not valid JSON ({exc.msg})", line_no) from exc
            try:
                record = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError) as exc2:
                raise DataFormatError(
                    path, "neither JSON nor a Python dict literal", line_no
                ) from exc2
        if not isinstance(record, dict):
            raise DataFormatError(
                path, f"expected an object, found {type(record).__name__}", line_no
            )
        yield record


def read_reviews(path: Path) -> pd.DataFrame:
    """Reviews of either release as ``user_id, item_id, rating, timestamp, review``."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("user_id", "item_id", "rating", "timestamp", "review")
    }
    for index, record in enumerate(iter_records(path)):
        try:
            rows["user_id"].append(str(record["reviewerID"]))
            rows["item_id"].append(str(record["asin"]))
        except KeyError as exc:
            raise DataFormatError(
                path, f"record {index + 1} lacks the key {exc.args[0]!r}"
            ) from exc
        rows["rating"].append(record.get("overall"))
        rows["timestamp"].append(record.get("unixReviewTime"))
        summary = str(record.get("summary") or "").strip()
        text = str(record.get("reviewText") or "").strip()
        rows["review"].append(f"{summary}. {text}" if summary and text else summary or text)
    return pd.DataFrame(rows)


def read_metadata(path: Path) -> pd.DataFrame:
    """Item metadata of either release (2014: Python literals; 2018: JSON)."""
    rows = []
    for record in iter_records(path, allow_python_literals=True):
        if "asin" not in record:
            continue
        rows.append(
            {
                ITEM_ID: str(record["asin"]),
                "title": _text(record.get("title")),
                "brand": _text(record.get("brand")),
                "categories": _categories(record),
                "price": _text(record.get("price")).lstrip("$"),
                "description": _text(record.get("description"))[:1000],
            }
        )
    return pd.DataFrame(rows).drop_duplicates(ITEM_ID, keep="first")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return html.unescape(str(value)).strip()


def _categories(record: dict[str, Any]) -> str:
    # 2014: "categories": [["Beauty", "Makeup", ...], ...]; 2018: "category": [...]
    raw = record.get("categories") or record.get("category") or []
    flat: list[str] = []
    for entry in raw:
        for name in entry if isinstance(entry, list) else [entry]:
            name = html.unescape(str(name)).strip()
            if name and name not in flat:
                flat.append(name)
    return ", ".join(flat)


def load_amazon(root: Path, name: str | None = None) -> Dataset:
    """A folder with one Amazon review file (``reviews_X_5.json.gz`` 2014 or
    ``X_5.json.gz`` / ``X.json.gz`` 2018) and optionally ``meta_X.json.gz``."""
    reviews = _find_review_file(root)
    category = reviews.name.split(".json")[0].removeprefix("reviews_").removesuffix("_5")
    meta_path = next(
        (
            p
            for p in (root / f"meta_{category}.json.gz", root / f"meta_{category}.json")
            if p.is_file()
        ),
        None,
    )
    items = read_metadata(meta_path) if meta_path else None
    if meta_path is None:
        log.info("%s: no meta_%s file, items carry no text beyond their id", root, category)
    frame = read_reviews(reviews)
    return build_dataset(
        name or f"amazon-{category.lower().replace('_', '-')}",
        frame,
        items,
        rating_scale=(1.0, 5.0),
        text_template=AMAZON_TEMPLATE if items is not None else "Product {item_id}",
        info={"source": str(root), "format": "amazon-reviews", "category": category},
        keep_unrated_items=False,
    )


def _find_review_file(root: Path) -> Path:
    candidates = [
        p
        for p in sorted(root.glob("*.json*"))
        if not p.name.startswith("meta_") and p.suffix in (".gz", ".json")
    ]
    if not candidates:
        raise DataFormatError(root, "no Amazon review file (*.json.gz) in this folder")
    return candidates[0]


def load_amazon_beauty(root: Path) -> Dataset:
    """Amazon-Beauty 5-core as laid out in the shared data folder (implicit feedback).

    ``interactions.csv.gz`` is chronological within each user; items that share a
    timestamp keep the file's order (the P5 preprocessing order).
    """
    frame = read_delimited(
        root / "interactions.csv.gz",
        ",",
        ["user_id", "item_id", "timestamp"],
        ["timestamp"],
        header=True,
    )
    return build_dataset(
        "amazon-beauty",
        frame,
        item_table(root / "Amazon_Beauty.item"),
        rating_scale=None,
        text_template=AMAZON_TEMPLATE,
        info={"source": str(root), "format": "amazon-beauty-shared", "feedback": "implicit"},
    )
