"""Title resolution: exact aliases, typos, long product names, ambiguity, not found."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import movie_catalog, product_catalog

from recllm.errors import RecLLMError
from recllm.routing.catalog import Catalog, aliases
from recllm.routing.schema import MentionStatus
from recllm.routing.text import normalise, singular


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Usual Suspects!", "usual suspects"),
        ("Schindler's List", "schindlers list"),
        ("Sci-Fi & Fantasy", "sci fi and fantasy"),
        ("Amélie", "amelie"),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [("comedies", "comedy"), ("movies", "movie"), ("polishes", "polish"), ("dress", "dress")],
)
def test_singular(word: str, expected: str) -> None:
    assert singular(word) == expected


def test_aliases_cover_brackets_and_product_names_but_not_bare_numbers() -> None:
    assert aliases("Seven (Se7en)") == {"seven se7en", "seven", "se7en"}
    assert "bio oil" in aliases("Bio-Oil, 2-Ounce Bottle")
    assert "3" not in aliases("Towel (3)")


@pytest.mark.parametrize(
    ("mention", "title", "status"),
    [
        ("the usual suspects", "The Usual Suspects", MentionStatus.RESOLVED),
        ("usual suspcts", "The Usual Suspects", MentionStatus.RESOLVED),  # typo: fuzzy
        ("Se7en", "Seven (Se7en)", MentionStatus.RESOLVED),
        ("sabrina", "Sabrina", MentionStatus.AMBIGUOUS),  # two films; the popular one
    ],
)
def test_resolve_movies(mention: str, title: str, status: MentionStatus) -> None:
    found = movie_catalog().resolve(mention)
    assert (found.title, found.status) == (title, status)


def test_ambiguity_is_reported_with_candidates_and_a_year_settles_it() -> None:
    catalog = movie_catalog()
    found = catalog.resolve("Sabrina")
    assert found.item_id == "5" and found.candidates == ("Sabrina",)
    assert catalog.resolve("Sabrina", year=1954).item_id == "4"


def test_products_resolve_by_their_words_and_unknown_mentions_are_not_guessed() -> None:
    catalog = product_catalog()
    top_coat = catalog.resolve("seche vite top coat")
    assert top_coat.item_id == "a" and top_coat.status is MentionStatus.AMBIGUOUS
    assert catalog.resolve("Bio-Oil").item_id == "c"
    missing = catalog.resolve("glossier boy brow")
    assert missing.status is MentionStatus.NOT_FOUND and missing.item is None


def test_genres_and_errors() -> None:
    assert "Beauty" not in product_catalog().genres  # every item has it: no constraint
    assert {"Nails", "Skin Care", "Moisturizers"} <= set(product_catalog().genres)
    with pytest.raises(RecLLMError, match="no 'title' column"):
        Catalog("x", pd.DataFrame({"item_id": ["1"]}))


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("toy", "Toy Story"),  # an unfinished word
        ("usual sus", "The Usual Suspects"),
        ("the usual suspects", "The Usual Suspects"),
        ("usual suspcts", "The Usual Suspects"),  # a typo in a finished word
        ("se7en", "Seven (Se7en)"),
        ("stra wars", "Star Wars"),  # a typo in the first word
    ],
)
def test_search_finds_titles_while_typing_and_with_typos(query: str, first: str) -> None:
    catalog = movie_catalog()
    found = catalog.search(query)
    assert found, query
    assert catalog.titles[found[0][0]] == first
    assert all(0 < score <= 100 for _, score in found)


def test_search_ranks_exact_titles_then_popularity_and_bounds_its_answer() -> None:
    catalog = movie_catalog()
    sabrinas = catalog.search("sabrina")
    assert [catalog.item_ids[c] for c, _ in sabrinas[:2]] == ["5", "4"]  # 9 before 5 users
    assert sabrinas[0][1] == 100.0
    assert catalog.search("s", limit=10) == []  # too short to mean anything
    assert catalog.search("the") == []  # articles only
    assert catalog.search("zzzz qqqq") == []
    assert len(catalog.search("sabrina", limit=1)) == 1
    products = product_catalog()
    assert [products.item_ids[c] for c, _ in products.search("seche vite top")] == ["a", "b"]
    nails = products.search("seche vit top coat nial")  # two typos among the words
    assert products.item_ids[nails[0][0]] == "a"
