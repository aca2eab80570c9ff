"""Item text from a per-dataset template such as ``"Title: {title} | Genres: {genres}"``.

Segments are separated by `` | ``; a segment whose fields are all empty is left out,
so an item without a brand reads "Title: X | Categories: Y" rather than "Brand: |".
"""

from __future__ import annotations

import string

import pandas as pd

from recllm.data.schema import ITEM_ID, Dataset
from recllm.errors import ConfigError

SEGMENT_SEPARATOR = " | "


def template_fields(template: str) -> list[str]:
    """Names of the ``{field}`` placeholders in a template."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as exc:
        raise ConfigError(f"item text template {template!r} is malformed: {exc}") from exc


def render_item_texts(items: pd.DataFrame, template: str) -> list[str]:
    """One text per item row, filling ``template`` from the row's fields."""
    fields = template_fields(template)
    unknown = [f for f in fields if f not in items.columns]
    if unknown:
        raise ConfigError(
            f"item text template uses field(s) {unknown} that the item table lacks; "
            f"available: {list(items.columns)}"
        )
    segments = template.split(SEGMENT_SEPARATOR)
    segment_fields = [template_fields(s) for s in segments]
    columns = {f: items[f].fillna("").astype(str).tolist() for f in set(fields)}
    texts = []
    for row in range(len(items)):
        values = {f: columns[f][row].strip() for f in columns}
        kept = [
            segment.format(**values)
            for segment, needed in zip(segments, segment_fields, strict=True)
            if not needed or any(values[f] for f in needed)
        ]
        text = SEGMENT_SEPARATOR.join(kept)
        texts.append(text or f"Item {items[ITEM_ID].iloc[row]}")
    return texts


def item_texts(dataset: Dataset, template: str | None = None) -> list[str]:
    """Texts of all items of a dataset with its own (or the given) template."""
    return render_item_texts(dataset.items, template or dataset.text_template)
