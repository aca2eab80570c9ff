"""The hand-written evaluation queries are well formed, and their titles exist."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from recllm.bench.routing import DEFAULT_QUERIES, load_queries
from recllm.routing.schema import INTENTS

REPO = Path(__file__).resolve().parents[2]


def test_at_least_100_labelled_queries_covering_every_intent() -> None:
    rows = load_queries(REPO / DEFAULT_QUERIES)
    assert len(rows) >= 100
    counts = Counter(row["intent"] for row in rows)
    assert set(counts) == set(INTENTS) and min(counts.values()) >= 15
    assert len({row["text"] for row in rows}) == len(rows)
    allowed = {"text", "intent", "catalog", "item", "genre", "year_from", "year_to", "k"}
    assert all(set(row) <= allowed for row in rows)


def test_labelled_titles_and_genres_exist_in_the_real_catalogues(shared_data: Path) -> None:
    from recllm.recipes.router import load_catalogs

    rows = load_queries(REPO / DEFAULT_QUERIES)
    names = sorted({row["catalog"] for row in rows})
    catalogs = dict(zip(names, load_catalogs(names, shared_data), strict=True))
    for row in rows:
        catalog = catalogs[row["catalog"]]
        if isinstance(row.get("item"), str):
            assert row["item"] in set(catalog.titles), row
        assert set(row.get("genre") or []) <= set(catalog.genres), row
