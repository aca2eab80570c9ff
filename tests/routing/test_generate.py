"""Generated training queries: balanced, reproducible, varied, and made of the catalogue."""

from __future__ import annotations

from collections import Counter

from helpers import movie_catalog, product_catalog

from recllm.routing.generate import generate
from recllm.routing.schema import Intent


def test_generated_queries_are_balanced_reproducible_and_varied() -> None:
    catalogs = [movie_catalog(), product_catalog()]
    queries = generate(catalogs, per_intent=200, seed=3)
    assert Counter(q.intent for q in queries) == {intent: 200 for intent in Intent}
    assert queries == generate(catalogs, per_intent=200, seed=3)
    assert queries != generate(catalogs, per_intent=200, seed=4)
    texts = [q.text for q in queries]
    assert len(set(texts)) / len(texts) > 0.9  # few repeats
    assert all(t.strip() for t in texts)
    titles = ("toy story", "usual suspects", "seche vite", "bio oil", "star wars")
    assert sum(any(t in q.lower() for t in titles) for q in texts) > 50


def test_requests_without_a_verb_are_taught_as_requests() -> None:
    """The classifier learns that naming what one wants ("a thriller for tonight") asks
    for it, and reads dashed year ranges ("1990-1995") among the years."""
    from recllm.routing.generate import OCCASIONS

    queries = generate([movie_catalog()], per_intent=400, seed=0)
    verbless = [
        q
        for q in queries
        if any(o in q.text.lower() for o in OCCASIONS) and "recommend" not in q.text.lower()
    ]
    assert len(verbless) > 20 and {q.intent for q in verbless} == {Intent.RECOMMEND}
    assert any("-" in q.text or "–" in q.text for q in verbless + queries)
