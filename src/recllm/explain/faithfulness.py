"""The faithfulness checker: parse an explanation, verify every claim against the data.

It reads what any sentence about a user's history can claim, whatever its wording:
titles (each must be in the user's history, unless it is the recommended item), a number of
films of a genre among the last N (checked by counting), how many of them were rated 4
stars or more, a title's star rating, the recommended item's genre (and a cited film's,
when the clause names one) and its year. A sentence in which nothing checkable is found
counts as a failure, so vague or invented prose cannot pass.

A pronoun ("it", "this one") after an earlier clause has cited a history film could be
read as that film ("You saw Fargo, and it came out in 1990"): such a claim must then hold
for the cited film as well as for the recommended item, so no reading of it is false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from recllm.explain.facts import LIKED
from recllm.explain.phrasing import NUMBER_WORDS, Claim
from recllm.routing.catalog import Catalog
from recllm.routing.text import normalise, singular

_TITLE_MARK = "\u27e8{}\u27e9"  # a placeholder the clause parser cannot confuse with words
_MARK = re.compile("\u27e8(\\d+)\u27e9")
_OPENERS = re.compile(
    r"^\s*(?:(?:recommended|why|we picked|we recommend|try)\s+)?\u27e8\d+\u27e9\s*(?:[:?!.-]|because)\s*",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_CLAUSES = re.compile(r"\s*(?:[;:]|,\s*and\s+|\band\b|\balso\b,?)\s*", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9'\-]+|\u27e8\d+\u27e9")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_PRONOUN = re.compile(r"\b(?:it|this one)\b", re.IGNORECASE)
_LIKED = re.compile(r"(?:4|four) stars or more|at least (?:4|four) stars", re.IGNORECASE)


@dataclass
class Check:
    """Claims found in one explanation, each with whether the data confirms it."""

    claims: list[tuple[Claim, bool]] = field(default_factory=list)
    empty_sentences: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.claims) + len(self.empty_sentences)

    @property
    def verified(self) -> int:
        return sum(ok for _, ok in self.claims)

    @property
    def faithful(self) -> bool:
        return self.total > 0 and self.verified == self.total


def _starts_title(word: str) -> bool:
    first = word.lstrip("'\"(")[:1]
    return first.isupper() or first.isdigit()


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.index(word) if word in NUMBER_WORDS else None


class FaithfulnessChecker:
    """Verifies explanations of items of one catalogue for given user histories."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.by_title: dict[str, list[int]] = {}
        for code, title in enumerate(catalog.titles):
            self.by_title.setdefault(normalise(str(title)), []).append(code)
        self.max_title_words = max(len(str(t).split()) for t in catalog.titles)

    def check(
        self, text: str, history: np.ndarray, item: int, ratings: np.ndarray | None = None
    ) -> Check:
        """Parse ``text`` (an explanation of ``item`` for a user with ``history``, oldest
        first, and optional ``ratings``) and verify each claim."""
        history = np.asarray(history)
        marked, titles = self._mark_titles(text)
        result = Check()
        item_key = normalise(str(self.catalog.titles[item]))
        antecedent: str | None = None  # the last history film cited so far
        for sentence in _SENTENCES.split(marked.strip()):
            body = _OPENERS.sub("", sentence).strip(" .!?")
            if not body:
                continue  # only the opener ("Why Fargo?")
            found = 0
            for clause in _CLAUSES.split(body):
                claims = self._claims(clause, titles, item_key)
                claims += self._pronoun_readings(clause, claims, antecedent)
                for claim in claims:
                    result.claims.append((claim, self._verify(claim, history, item, ratings)))
                    found += 1
                    if claim.kind == "history_item":
                        antecedent = claim.title
            if not found:
                result.empty_sentences.append(_MARK.sub(lambda m: titles[int(m.group(1))], body))
        return result

    def _mark_titles(self, text: str) -> tuple[str, list[str]]:
        """Replace catalogue titles, written exactly as the catalogue spells them (case
        aside), by marks; longest first. A title must start with a capital or a digit."""
        words = list(re.finditer(r"\S+", text))
        spans: list[tuple[int, int, str]] = []
        i = 0
        while i < len(words):
            hit = self._title_at(text, words, i) if _starts_title(words[i].group()) else None
            if hit:
                spans.append(hit)
                while i < len(words) and words[i].start() < hit[1]:
                    i += 1
            else:
                i += 1
        out, titles = text, []
        for start, end, title in reversed(spans):
            titles.append(title)
            out = out[:start] + _TITLE_MARK.format(len(spans) - len(titles)) + out[end:]
        return out, list(reversed(titles))

    def _title_at(
        self, text: str, words: list[re.Match[str]], i: int
    ) -> tuple[int, int, str] | None:
        start = words[i].start()
        for j in range(min(len(words), i + self.max_title_words), i, -1):
            raw = text[start : words[j - 1].end()]
            for code in self.by_title.get(normalise(raw), []):
                title = str(self.catalog.titles[code])
                rest = raw[len(title) :]  # sentence punctuation after the title
                if raw.lower().startswith(title.lower()) and not rest.strip(".,;:!?"):
                    return start, start + len(title), title
        return None

    def _claims(self, clause: str, titles: list[str], item_key: str) -> list[Claim]:
        words = _WORD.findall(clause.lower())
        cited = [
            titles[int(m.group(1))]
            for m in _MARK.finditer(clause)
            if normalise(titles[int(m.group(1))]) != item_key
        ]
        claims = [Claim("history_item", title=t) for t in cited]
        liked = bool(_LIKED.search(clause))
        genres = self._genres(words)
        window, window_at = self._window(words)
        stars = re.search(r"\b(\w+) (?:stars|out of 5)\b", clause, re.IGNORECASE)
        counted = False
        if genres and window is not None:
            for index, word in enumerate(words):
                n = _number(word)
                threshold = liked and words[index + 1 : index + 2] == ["stars"]
                if n is None or index == window_at or threshold:
                    continue
                claims.append(
                    Claim(
                        "liked_count" if liked else "genre_count",
                        genre=genres[0],
                        count=n,
                        window=window,
                    )
                )
                counted = True
                break
        if stars and not liked and cited:
            rating = _number(stars.group(1).lower())
            if rating is not None:
                claims.append(Claim("rating", title=cited[-1], rating=rating))
        if genres and not counted:
            for genre in genres:
                claims.append(Claim("item_genre", genre=genre, title=cited[-1] if cited else None))
        for year in _YEAR.findall(clause):
            claims.append(Claim("item_year", year=int(year)))
        return claims

    @staticmethod
    def _pronoun_readings(clause: str, claims: list[Claim], antecedent: str | None) -> list[Claim]:
        """The same item claims about ``antecedent``, when the clause's pronoun could mean
        it: the clause cites no film and does not name the item, and an earlier one cited
        ``antecedent``."""
        if antecedent is None or _MARK.search(clause) or not _PRONOUN.search(clause):
            return []
        return [
            Claim(c.kind, genre=c.genre, year=c.year, title=antecedent)
            for c in claims
            if c.kind in ("item_genre", "item_year") and c.title is None
        ]

    @staticmethod
    def _window(words: list[str]) -> tuple[int | None, int]:
        """The N of "last N" / "the N films you saw most recently", and its word index."""
        for i, word in enumerate(words[:-1]):
            if word == "last" and _number(words[i + 1]) is not None:
                return _number(words[i + 1]), i + 1
            if word == "the" and _number(words[i + 1]) is not None and "recently" in words[i:]:
                return _number(words[i + 1]), i + 1
        return None, -1

    def _genres(self, words: list[str]) -> list[str]:
        stems = [singular(w) for w in re.sub(r"[-']", " ", " ".join(words)).split()]
        found = []
        for term in self.catalog.genre_terms:
            n = len(term.tokens)
            present = any(tuple(stems[i : i + n]) == term.tokens for i in range(len(stems) - n + 1))
            if present and term.genre not in found:
                found.append(term.genre)
        return found

    def _verify(
        self, claim: Claim, history: np.ndarray, item: int, ratings: np.ndarray | None
    ) -> bool:
        catalog = self.catalog
        in_history = set(history.tolist())

        def codes(title: str | None) -> list[int]:
            return [c for c in self.by_title.get(normalise(title or ""), []) if c in in_history]

        if claim.kind == "history_item":
            return bool(codes(claim.title))
        if claim.kind == "rating":
            if ratings is None:
                return False
            positions = [i for i, h in enumerate(history) if h in set(codes(claim.title))]
            known = [float(ratings[i]) for i in positions if not np.isnan(ratings[i])]
            return any(round(r) == claim.rating for r in known)  # an unknown rating: false
        if claim.kind in ("genre_count", "liked_count"):
            if claim.window is None or claim.window > len(history) or claim.window < 1:
                return False
            recent = range(len(history) - claim.window, len(history))
            count = sum(
                claim.genre in catalog.genres_of[history[i]]
                and (
                    claim.kind == "genre_count"
                    or (ratings is not None and float(ratings[i]) >= LIKED)
                )
                for i in recent
            )
            return count == claim.count
        if claim.kind == "item_genre":
            ok = claim.genre in catalog.genres_of[item]
            if claim.title is not None:
                ok = ok and any(claim.genre in catalog.genres_of[c] for c in codes(claim.title))
            return ok
        if claim.kind == "item_year":
            ok = bool(catalog.years[item] == claim.year)
            if claim.title is not None:  # a pronoun that could also mean this cited film
                ok = ok and any(catalog.years[c] == claim.year for c in codes(claim.title))
            return ok
        return False
