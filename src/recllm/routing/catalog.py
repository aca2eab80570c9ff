"""What the router knows of a catalogue: titles to resolve mentions, genres to constrain.

Built from a :class:`~recllm.data.schema.Dataset`'s item table: ``title`` (required for
item references), ``genres`` or ``categories`` (comma-separated) and ``year`` when present.
Title mentions resolve in three steps, strongest first: an exact match of a normalised
title or alias, a fuzzy match (typos), then containment of every mentioned word in a title
(how people refer to long product names). Anything weaker is reported as not found.
:meth:`Catalog.search` ranks titles for someone still typing (the web page's type-ahead)
with the same normalisation and fuzzy scorer family.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from itertools import islice, takewhile

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from recllm.data.schema import Dataset
from recllm.errors import RecLLMError
from recllm.routing.schema import ItemMention, MentionStatus
from recllm.routing.text import normalise, singular, stem_tokens

GENRE_COLUMNS = ("genres", "categories")
FUZZY_CUTOFF = 86.0  # fuzz.ratio: "forest gump" vs "forrest gump" scores 95.7
MAX_CANDIDATES = 5
SHORT_TITLE_WORDS = 8
SEARCH_CUTOFF = 80.0  # fuzz.WRatio of a typed query against a whole title ("forest gump": 96)
WORD_PREFIX_SCORE = 95.0  # every typed word starts a word of the title, the last maybe unfinished
WORD_TYPO_SCORE = 90.0  # the same with a misspelt word read as its nearest title words
WORD_TYPO_CUTOFF = 80.0  # fuzz.ratio of a typed word to a title word: "polsh" / "polish" 90.9

# Everyday words for genres and categories, mapped to the catalogue's names. Entries whose
# target a catalogue lacks are ignored, so one table serves every dataset.
SYNONYMS: dict[str, str] = {
    "science fiction": "Sci-Fi",
    "sci fi": "Sci-Fi",
    "scifi": "Sci-Fi",
    "kid": "Children's",
    "children": "Children's",
    "family": "Children's",
    "noir": "Film-Noir",
    "funny": "Comedy",
    "comedic": "Comedy",
    "romantic": "Romance",
    "love story": "Romance",
    "scary": "Horror",
    "suspense": "Thriller",
    "animated": "Animation",
    "cartoon": "Animation",
    "whodunit": "Mystery",
    "gangster": "Crime",
    "dramatic": "Drama",
    "perfume": "Fragrance",
    "scent": "Fragrance",
    "cologne": "Fragrance",
    "moisturiser": "Moisturizers",
    "moisturizer": "Moisturizers",
    "face wash": "Cleansers",
    "facial cleanser": "Cleansers",
    "cleanser": "Cleansers",
    "eyeshadow": "Eye Shadow",
    "flat iron": "Flattening Irons",
    "straightener": "Flattening Irons",
    "hair straightener": "Flattening Irons",
    "curling wand": "Curling Irons",
    "hair mask": "Hair & Scalp Treatments",
    "face mask": "Masks",
    "facial mask": "Masks",
    "false eyelash": "Fake Eyelashes & Adhesives",
    "false lash": "Fake Eyelashes & Adhesives",
    "fake eyelash": "Fake Eyelashes & Adhesives",
    "fake lash": "Fake Eyelashes & Adhesives",
    "body lotion": "Lotions",
    "makeup brush": "Makeup Brushes & Tools",
    "sunscreen": "Sunscreens",
    "sunblock": "Sunscreens",
    "sun cream": "Sunscreens",
    "skincare": "Skin Care",
    "nail": "Nails",
    "men": "Men's",
    "women": "Women's",
    "haircare": "Hair Care",
    "lip gloss": "Lip Glosses",
    "nail varnish": "Nail Polish",
    "polish remover": "Nail Polish Remover",
    "blusher": "Blush",
    "toner": "Toners & Astringents",
    "body scrub": "Body Scrubs",
    "hairspray": "Hair Sprays",
    "hair spray": "Hair Sprays",
    "razor": "Shaving & Hair Removal",
}


@dataclass(frozen=True)
class GenreTerm:
    """A phrase (normalised, singular tokens) naming a catalogue genre."""

    tokens: tuple[str, ...]
    genre: str


class Catalog:
    """Titles, aliases, genres and years of one dataset's items, indexed for the router."""

    def __init__(self, name: str, items: pd.DataFrame, popularity: np.ndarray | None = None):
        if "title" not in items.columns:
            raise RecLLMError(f"{name}: the item table has no 'title' column to match mentions")
        self.name = name
        self.item_ids = items["item_id"].astype(str).to_numpy()
        self.titles = items["title"].fillna("").astype(str).to_numpy()
        self.years = _years(items)
        self.genres_of = _genres(items)
        self.popularity = (
            np.zeros(len(items), dtype=np.int64) if popularity is None else np.asarray(popularity)
        )
        # a genre every item has ("Beauty") constrains nothing
        counts: dict[str, int] = defaultdict(int)
        for genres in self.genres_of:
            for genre in set(genres):
                counts[genre] += 1
        self.genre_terms = _genre_terms(sorted(g for g, n in counts.items() if n < len(items)))
        self._aliases: dict[str, list[int]] = defaultdict(list)
        self._primary: set[str] = set()  # whole titles, found even without a trigger word
        for code, title in enumerate(self.titles):
            for alias in aliases(title):
                self._aliases[alias].append(code)
            self._primary.add(normalise(_BRACKETED.sub("", title)))
            self._primary.add(normalise(title.split(":")[0]))
        self._alias_keys = list(self._aliases)
        self._token_index: dict[str, set[int]] = defaultdict(set)
        for code, title in enumerate(self.titles):
            for token in stem_tokens(title):
                self._token_index[token].add(code)

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> Catalog:
        """The dataset's catalogue; items without titles (Amazon reviews without metadata)
        are named by the dataset's item text ("Product B0001")."""
        from recllm.data.text import item_texts

        counts = np.bincount(dataset.interactions["item"].to_numpy(), minlength=dataset.n_items)
        items = dataset.items
        if "title" not in items.columns:
            items = items.assign(title=item_texts(dataset))
        return cls(dataset.name, items, counts)

    @property
    def genres(self) -> list[str]:
        return sorted({t.genre for t in self.genre_terms})

    def is_exact_alias(self, text: str, primary: bool = False) -> bool:
        """Whether ``text`` names a title exactly (``primary``: its whole title, not a
        product name before its size or a bracketed alternative)."""
        key = normalise(text)
        return key in (self._primary if primary else self._aliases)

    def resolve(self, mention: str, year: int | None = None) -> ItemMention:
        """The item a mention names: exact alias, then fuzzy, then every word contained."""
        key = normalise(mention)
        if not key:
            return ItemMention(mention, MentionStatus.NOT_FOUND)
        if key in self._aliases:
            return self._pick(mention, self._aliases[key], 100.0, year)
        match = process.extractOne(
            key, self._alias_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
        )
        if match is not None:
            return self._pick(mention, self._aliases[match[0]], float(match[1]), year)
        tokens = stem_tokens(mention)
        if len(tokens) >= 2 or (tokens and len(tokens[0]) >= 6):
            pools = [self._token_index.get(t, set()) for t in tokens]
            common = set.intersection(*pools) if pools else set()
            if common:
                return self._pick(mention, sorted(common), 90.0, year)
        return ItemMention(mention, MentionStatus.NOT_FOUND)

    def search(self, query: str, limit: int = 10) -> list[tuple[int, float]]:
        """(item code, score 0-100) of the titles that match what someone is typing, best
        first: titles in which every typed word starts a word (the last may be unfinished:
        "maybelline masc"; a misspelt word counts for its nearest title words: "nail
        polsh"), or a fuzzy match of the whole ("shawshank redemtion"); equally good matches
        go by popularity. Under two letters matches nothing."""
        key = normalise(query)
        if len(key) < 2 or limit < 1:
            return []
        scores: dict[int, float] = {}
        codes, exact = self._word_matches(key.split())
        for code in codes:
            whole = self._search_keys[code] == key
            scores[code] = 100.0 if whole else WORD_PREFIX_SCORE if exact else WORD_TYPO_SCORE
        fuzzy = process.extract(
            key, self._search_keys, scorer=fuzz.WRatio, limit=None, score_cutoff=SEARCH_CUTOFF
        )
        for _, score, code in fuzzy:
            scores[code] = max(scores.get(code, 0.0), float(score))
        ranked = sorted(
            scores.items(), key=lambda kv: (-round(kv[1]), -int(self.popularity[kv[0]]), kv[0])
        )
        return [(code, round(score, 1)) for code, score in ranked[:limit]]

    @cached_property
    def _search_keys(self) -> list[str]:
        return [normalise(title) for title in self.titles]

    @cached_property
    def _title_words(self) -> tuple[list[str], dict[str, set[int]]]:
        """The sorted words of all titles (for prefix look-up) and the items holding each."""
        holders: dict[str, set[int]] = defaultdict(set)
        for code, key in enumerate(self._search_keys):
            for word in key.split():
                holders[word].add(code)
        return sorted(holders), holders

    def _word_matches(self, words: list[str]) -> tuple[set[int], bool]:
        """Items holding every word (the last as a prefix), and whether no word needed a
        fuzzy stand-in."""
        vocabulary, holders = self._title_words
        found: set[int] | None = None
        exact = True
        for position, word in enumerate(words):
            if position == len(words) - 1:  # the word being typed: any title word it begins
                spelt = with_prefix(vocabulary, word)
            else:
                spelt = [word] if word in holders else []
            if not spelt and len(word) >= 4:
                near = process.extract(
                    word, vocabulary, scorer=fuzz.ratio, limit=5, score_cutoff=WORD_TYPO_CUTOFF
                )
                spelt, exact = [w for w, _, _ in near], False
            codes = set().union(*(holders[w] for w in spelt)) if spelt else set()
            found = codes if found is None else found & codes
            if not found:
                return set(), exact
        return found or set(), exact

    def _pick(self, mention: str, codes: list[int], score: float, year: int | None) -> ItemMention:
        """One item from equally good matches: the year decides, else the most popular."""
        if year is not None and len(codes) > 1:
            same_year = [c for c in codes if self.years[c] == year]
            codes = same_year or codes
        ranked = sorted(codes, key=lambda c: (-int(self.popularity[c]), c))
        best = ranked[0]
        status = MentionStatus.RESOLVED if len(ranked) == 1 else MentionStatus.AMBIGUOUS
        others = tuple(self.titles[c] for c in ranked[1 : 1 + MAX_CANDIDATES])
        return ItemMention(
            mention, status, best, str(self.item_ids[best]), str(self.titles[best]), score, others
        )


def with_prefix(vocabulary: list[str], prefix: str) -> list[str]:
    """The words of a sorted ``vocabulary`` that begin with ``prefix``."""
    following = islice(vocabulary, bisect.bisect_left(vocabulary, prefix), None)
    return list(takewhile(lambda word: word.startswith(prefix), following))


_BRACKETED = re.compile(r"\(([^)]*)\)")


def aliases(title: str) -> set[str]:
    """Normalised names a title goes by: itself, the part before ':' / '(' / ',' (product
    names before their size), and a bracketed alternative ("Seven (Se7en)")."""
    names = {title, _BRACKETED.sub("", title)}
    if len(title.split()) <= SHORT_TITLE_WORDS:  # not "(Dry Skin)" of a long product name
        names.update(m.group(1) for m in _BRACKETED.finditer(title))
    for separator in (":", ",", " - "):
        if separator in title:
            names.add(title.split(separator)[0])
    normalised = {normalise(n) for n in names}
    return {n for n in normalised if n and not n.isdigit()}


def _years(items: pd.DataFrame) -> np.ndarray:
    if "year" not in items.columns:
        return np.zeros(len(items), dtype=np.int64)
    years = pd.to_numeric(items["year"], errors="coerce").fillna(0)
    return years.astype(np.int64).to_numpy()


def _genres(items: pd.DataFrame) -> list[tuple[str, ...]]:
    column = next((c for c in GENRE_COLUMNS if c in items.columns), None)
    if column is None:
        return [() for _ in range(len(items))]
    return [
        tuple(g.strip() for g in str(value).split(",") if g.strip())
        for value in items[column].fillna("")
    ]


def _genre_terms(genres: list[str]) -> list[GenreTerm]:
    """Phrases for each genre (its name, singular and plural) and for known synonyms;
    longest first, so "nail polish" wins over "nail"."""
    terms = {tuple(stem_tokens(g)): g for g in genres}
    for phrase, genre in SYNONYMS.items():
        if genre in genres:
            terms.setdefault(tuple(singular(w) for w in normalise(phrase).split()), genre)
    ordered = sorted(terms.items(), key=lambda kv: -len(kv[0]))
    return [GenreTerm(tokens, genre) for tokens, genre in ordered if tokens]
