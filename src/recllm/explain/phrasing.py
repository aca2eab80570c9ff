"""Reason sentences built from true facts, in many phrasings (the training targets).

A sentence is one or two clauses, each stating one kind of fact (a genre count in the
recent history, a liked count, a history item, its rating, the item's genre or year), under
one of many wordings and openers, so a generator learns the language and not one template.
Each clause records the claims it makes; the faithfulness checker must confirm them all.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from recllm.explain.facts import Facts, HistoryEntry

NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
]
GENRE_WORDS = {  # as an adjective before "film(s)"
    "Sci-Fi": ["science-fiction", "sci-fi"],
    "Children's": ["children's"],
    "Film-Noir": ["film-noir", "noir"],
    "Animation": ["animated", "animation"],
}


@dataclass(frozen=True)
class Claim:
    """One checkable statement: ``kind`` with the values it asserts."""

    kind: str  # genre_count | liked_count | history_item | rating | item_genre | item_year
    # | item_feature (review explanations)
    genre: str | None = None
    count: int | None = None
    window: int | None = None
    title: str | None = None
    rating: int | None = None
    year: int | None = None
    feature: str | None = None


@dataclass(frozen=True)
class Reason:
    text: str
    claims: tuple[Claim, ...]


Clause = tuple[str, tuple[Claim, ...]]


def genre_word(genre: str, rng: random.Random) -> str:
    return rng.choice(GENRE_WORDS.get(genre, [genre.lower()]))


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def number(n: int, rng: random.Random) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) and rng.random() < 0.6 else str(n)


COUNT_TEMPLATES = {
    "genre_count": [
        "{c} of your last {w} films were {g} films",
        "you watched {c} {g} films among your last {w}",
        "{c} of the {w} films you saw most recently are {g} films",
        "your last {w} films include {c} {g} ones",
        "{c} {g} films are among the last {w} you watched",
    ],
    "liked_count": [
        "you rated {c} {g} films 4 stars or more among your last {w}",
        "among your last {w} films, {c} {g} ones got at least 4 stars from you",
    ],
}


def _count_clause(kind: str, counts: dict[str, int], f: Facts, rng: random.Random) -> Clause | None:
    """How many recent films share one of the item's genres (``kind`` genre_count), or
    how many of those the user rated 4 or more (liked_count); only counts of 2 or more."""
    options = [(g, n) for g, n in counts.items() if n >= 2]
    if not options:
        return None
    genre, n = rng.choice(options)
    g, c, w = genre_word(genre, rng), number(n, rng), number(f.window, rng)
    text = rng.choice(COUNT_TEMPLATES[kind]).format(c=c, g=g, w=w)
    return text, (Claim(kind, genre=genre, count=n, window=f.window),)


def _genre_count(f: Facts, rng: random.Random) -> Clause | None:
    return _count_clause("genre_count", f.genre_counts, f, rng)


def _liked_count(f: Facts, rng: random.Random) -> Clause | None:
    return _count_clause("liked_count", f.liked_counts, f, rng)


def _pick_history(f: Facts, rng: random.Random) -> HistoryEntry | None:
    return rng.choice(f.attributed) if f.attributed else None


def _history_item(f: Facts, rng: random.Random) -> Clause | None:
    h = _pick_history(f, rng)
    if h is None:
        return None
    text = rng.choice(
        [
            f"you recently watched {h.title}",
            f"{h.title} is in your history",
            f"you saw {h.title}",
            f"it follows your interest in {h.title}",
            f"you have watched {h.title}",
        ]
    )
    return text, (Claim("history_item", title=h.title),)


def _rating(f: Facts, rng: random.Random) -> Clause | None:
    rated = [h for h in f.attributed if h.rating is not None]
    if not rated:
        return None
    h = rng.choice(rated)
    assert h.rating is not None
    r = round(h.rating)
    stars = number(r, rng)
    text = rng.choice(
        [
            f"you gave {h.title} {stars} stars",
            f"you rated {h.title} {stars} out of 5",
            f"{h.title} got {stars} stars from you",
        ]
    )
    return text, (Claim("history_item", title=h.title), Claim("rating", title=h.title, rating=r))


def _shared_genre(f: Facts, rng: random.Random) -> Clause | None:
    pairs = [(h, g) for h in f.attributed for g in h.genres if g in f.genres]
    if not pairs:
        return None
    h, genre = rng.choice(pairs)
    g = genre_word(genre, rng)
    text = rng.choice(
        [
            f"like {h.title}, it is {_a(g)} {g} film",
            f"it shares the {g} genre with {h.title}",
            f"it is {_a(g)} {g} film, as {h.title} was",
        ]
    )
    claims = (
        Claim("history_item", title=h.title),
        Claim("item_genre", genre=genre, title=h.title),
    )
    return text, claims


def _item_genre(f: Facts, rng: random.Random) -> Clause | None:
    if not f.genres:
        return None
    genre = rng.choice(f.genres)
    g = genre_word(genre, rng)
    text = rng.choice([f"it is {_a(g)} {g} film", f"this one is {_a(g)} {g} film"])
    return text, (Claim("item_genre", genre=genre),)


def _item_year(f: Facts, rng: random.Random) -> Clause | None:
    if f.year is None:
        return None
    text = rng.choice([f"it came out in {f.year}", f"it was released in {f.year}"])
    return text, (Claim("item_year", year=f.year),)


MAIN: list[Callable[[Facts, random.Random], Clause | None]] = [
    _genre_count,
    _liked_count,
    _rating,
    _shared_genre,
    _history_item,
]
EXTRA: list[Callable[[Facts, random.Random], Clause | None]] = [_item_genre, _item_year]
OPENERS = ["Recommended {title}: ", "{title}: ", "We picked {title} because ", "Why {title}? ", ""]
JOINERS = [", and ", "; ", ". Also, ", " and "]


_PRONOUN = re.compile(r"\b(?:it|this one)\b")


def _name_the_item_after_a_citation(clauses: list[Clause], title: str) -> list[Clause]:
    """After a clause has cited a history film, "it" could be read as that film ("you saw
    Fargo, and it came out in 1990"), so later clauses name the item instead."""
    out, cited = [], False
    for text, claims in clauses:
        if cited:
            text = _PRONOUN.sub(title, text)
        cited = cited or any(c.kind == "history_item" for c in claims)
        out.append((text, claims))
    return out


def realise(facts: Facts, rng: random.Random) -> Reason:
    """One reason sentence for ``facts`` with its claims (never a claim that is false)."""
    mains = [c for fn in rng.sample(MAIN, len(MAIN)) if (c := fn(facts, rng)) is not None]
    clauses = mains[:1]
    if rng.random() < 0.5:
        extra = [c for fn in EXTRA if (c := fn(facts, rng)) is not None]
        more = mains[1:2] + extra
        if more:
            clauses.append(rng.choice(more))
    if not clauses:  # no history fact at all: say what the item is
        clauses = [c for fn in EXTRA if (c := fn(facts, rng)) is not None][:1]
    clauses = _name_the_item_after_a_citation(clauses, facts.title)
    opener = rng.choice(OPENERS).format(title=facts.title)
    body = rng.choice(JOINERS).join(text for text, _ in clauses) if clauses else ""
    if not body:
        return Reason(f"{facts.title}.", ())
    if opener.endswith("? ") or not opener:
        body = body[:1].upper() + body[1:]
    text = opener + body
    text = text[:1].upper() + text[1:] + "."
    return Reason(text, tuple(c for _, claims in clauses for c in claims))
