"""Amazon reviews 2014 and 2018 (McAuley et al.), and the Beauty copy in shared data.

Review files are strict JSON lines in both releases. The 2014 *metadata* files hold
Python dict literals (single quotes), which :func:`ast.literal_eval` parses safely;
``eval`` is never used.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from recllm.data.io import iter_lines, read_delimited, unescape_html
from recllm.data.loaders.recbole import item_table
from recllm.data.schema import ITEM_ID, Dataset, build_dataset
from recllm.errors import DataFormatError

log = logging.getLogger(__name__)

AMAZON_TEMPLATE = "Title: {title} | Brand: {brand} | Categories: {categories} | Price: {price}"


def iter_records(path: Path, allow_python_literals: bool = False) -> Iterable[dict[str, Any]]:
    """Yield one dict per line of a (gzipped) JSON-lines file, naming bad lines."""
    for _, record in iter_numbered_records(path, allow_python_literals):
        yield record


def iter_numbered_records(
    path: Path, allow_python_literals: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; blank lines are skipped, anything else must parse."""
    for line_no, line in iter_lines(path):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            if not allow_python_literals:
                raise DataFormatError(
                    path, f"not valid JSON ({exc.msg} at column {exc.colno})", line_no
                ) from exc
            try:
                record = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError) as exc2:
                raise DataFormatError(
                    path,
                    f"neither JSON ({exc.msg} at column {exc.colno}) nor a Python dict literal"
                    f": {text[:60]!r}",
                    line_no,
                ) from exc2
        if not isinstance(record, dict):
            raise DataFormatError(
                path, f"expected an object, found {type(record).__name__}", line_no
            )
        yield line_no, record


def read_reviews(path: Path) -> pd.DataFrame:
    """Reviews of either release as ``user_id, item_id, rating, timestamp, review``."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("user_id", "item_id", "rating", "timestamp", "review")
    }
    for line_no, record in iter_numbered_records(path):
        for key in ("reviewerID", "asin"):
            if record.get(key) in (None, ""):
                raise DataFormatError(path, f"the review lacks the key {key!r}", line_no)
        rows["user_id"].append(str(record["reviewerID"]))
        rows["item_id"].append(str(record["asin"]))
        rows["rating"].append(_number(record, "overall", path, line_no))
        rows["timestamp"].append(_number(record, "unixReviewTime", path, line_no))
        summary = str(record.get("summary") or "").strip()
        text = str(record.get("reviewText") or "").strip()
        rows["review"].append(f"{summary}. {text}" if summary and text else summary or text)
    if not rows["user_id"]:
        raise DataFormatError(path, "holds no reviews")
    for column, key in (("rating", "overall"), ("timestamp", "unixReviewTime")):
        missing = sum(v is None for v in rows[column])
        if missing:
            log.warning(
                "%s: %d review(s) have no %r; kept with an empty %s", path, missing, key, column
            )
    return pd.DataFrame(rows)


def _number(record: dict[str, Any], key: str, path: Path, line_no: int) -> float | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataFormatError(path, f"{key!r} must be a number, found {value!r}", line_no) from None


def read_metadata(path: Path) -> pd.DataFrame:
    """Item metadata of either release (2014: Python literals; 2018: JSON)."""
    rows = []
    without_asin = 0
    for _, record in iter_numbered_records(path, allow_python_literals=True):
        if record.get("asin") in (None, ""):
            without_asin += 1
            continue
        rows.append(
            {
                ITEM_ID: str(record["asin"]),
                "title": _text(record.get("title")),
                "brand": _text(record.get("brand")),
                "categories": _categories(record),
                # 2018 prices are text ("$12.99", "$5.99 - $9.99"), 2014 ones numbers.
                "price": _text(record.get("price")).replace("$", ""),
                "description": _text(record.get("description"))[:1000],
            }
        )
    if without_asin:
        log.warning("%s: ignored %d record(s) without an 'asin'", path, without_asin)
    if not rows:
        raise DataFormatError(path, "holds no item records with an 'asin'")
    table = pd.DataFrame(rows)
    duplicated = table[ITEM_ID].duplicated(keep="first")
    if duplicated.any():
        log.warning(
            "%s: %d item(s) are listed more than once (e.g. %r); kept the first record",
            path,
            int(duplicated.sum()),
            table.loc[duplicated, ITEM_ID].iloc[0],
        )
        table = table[~duplicated].reset_index(drop=True)
    return table


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    # One line per field, as in the RecBole item files: newlines inside titles become spaces.
    return " ".join(unescape_html(str(value)).split())


def _categories(record: dict[str, Any]) -> str:
    # 2014: "categories": [["Beauty", "Makeup", ...], ...]; 2018: "category": [...]
    raw = record.get("categories") or record.get("category") or []
    if isinstance(raw, str):
        raw = [raw]
    flat: list[str] = []
    for entry in raw:
        for name in entry if isinstance(entry, list) else [entry]:
            name = unescape_html(str(name)).strip()
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
        if not p.name.startswith("meta_") and p.name.endswith((".json", ".json.gz"))
    ]
    if not candidates:
        raise DataFormatError(root, "no Amazon review file (*.json.gz) in this folder")
    if len(candidates) > 1:
        names = [p.name for p in candidates]
        raise DataFormatError(
            root,
            f"several Amazon review files {names}; put each category in its own folder",
        )
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
        required=("user_id", "item_id"),
    )
    return build_dataset(
        "amazon-beauty",
        frame,
        item_table(root / "Amazon_Beauty.item"),
        rating_scale=None,
        text_template=AMAZON_TEMPLATE,
        info={"source": str(root), "format": "amazon-beauty-shared", "feedback": "implicit"},
    )
