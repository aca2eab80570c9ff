"""Slot extraction on a small movie catalogue and a product catalogue."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import movie_catalog, product_catalog

from recllm.routing.schema import MentionStatus
from recllm.routing.slots import extract_slots, find_years

MOVIES = movie_catalog()
PRODUCTS = product_catalog()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the 90s", (1990, 1999)),
        ("from the 1950s", (1950, 1959)),
        ("between 1970 and 1975", (1970, 1975)),
        ("after 1990", (1991, None)),
        ("since 1996", (1996, None)),
        ("pre 1970", (None, 1969)),
        ("before 1980", (None, 1979)),
        ("from 1997", (1997, 1997)),
        ("at 8 pm", (None, None)),
    ],
)
def test_years(text: str, expected: tuple[int | None, int | None]) -> None:
    assert find_years(text) == expected


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        ("anything like Toy Story?", {"item": "Toy Story"}),
        ("why did you pick the usual suspects for me", {"item": "The Usual Suspects"}),
        ("give me 5 comedies from the 90s", {"genres": ("Comedy",), "years": (1990, 1999), "k": 5}),
        ("more like star wars", {"item": "Star Wars", "genres": ()}),  # "war" is in the title
        (
            "top 10 sci-fi films before 1980",
            {"genres": ("Sci-Fi",), "years": (None, 1979), "k": 10},
        ),
        ("recommend a thriller", {"genres": ("Thriller",), "k": 1}),
        ("a couple of romantic comedies", {"genres": ("Comedy", "Romance"), "k": 2}),
        ("why this one?", {"item": None}),
        ("recommend three thrillers", {"item": None, "k": 3}),
        ("i liked toy stroy, anything similar", {"item": "Toy Story"}),
    ],
)
def test_movie_slots(text: str, slots: dict[str, Any]) -> None:
    got = extract_slots(text, MOVIES)
    if "item" in slots:
        assert (got.item.title if got.item else None) == slots["item"]
    if "genres" in slots:
        assert sorted(got.genres) == sorted(slots["genres"])
    if "years" in slots:
        assert (got.year_from, got.year_to) == slots["years"]
    if "k" in slots:
        assert got.k == slots["k"]


@pytest.mark.parametrize(
    ("text", "years", "k"),
    [
        ("comedies 1990-1995", (1990, 1995), None),
        ("comedies 1990–1995", (1990, 1995), None),  # en dash
        ("comedies 1990 — 1995", (1990, 1995), None),  # em dash with spaces
        ("films 1990-95", (1990, 1995), None),  # not k = 95
        ("from 1990 to 1995", (1990, 1995), None),
        ("between 1990 and 1995", (1990, 1995), None),
        ("90s thrillers", (1990, 1999), None),
        ("the 1980s", (1980, 1989), None),
        ("films of the nineties", (1990, 1999), None),
        ("80s-90s comedies", (1980, 1999), None),
        ("from the 90s to the 2000s", (1990, 2009), None),
        ("recommend 3 films 1995-1990", (1990, 1995), 3),
        ("top 10-12 films", (None, None), 10),  # a count range, not years
    ],
)
def test_ways_people_write_year_ranges_and_decades(
    text: str, years: tuple[int | None, int | None], k: int | None
) -> None:
    got = extract_slots(text, MOVIES)
    assert (got.year_from, got.year_to, got.k) == (*years, k)


def test_an_unknown_title_is_reported_not_guessed() -> None:
    got = extract_slots("something like Inception", MOVIES)
    assert got.item is not None and got.item.status is MentionStatus.NOT_FOUND
    assert got.item.mention == "Inception" and got.item.item is None
    clause = extract_slots("recommend comedies and explain why they suit me", MOVIES)
    assert clause.item is None  # a clause, not a title


def test_product_slots() -> None:
    got = extract_slots("explain why the seche vite top coat was recommended", PRODUCTS)
    assert got.item is not None and got.item.item_id == "a"
    polish = extract_slots("recommend a good moisturiser for dry skin", PRODUCTS)
    assert polish.item is None and polish.genres == ("Moisturizers",) and polish.k == 1
