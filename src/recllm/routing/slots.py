"""Slot extraction: the referenced item, genres, a year range and how many items.

Rules over the words of the query, driven by the catalogue's own titles and genres (so a new
dataset brings its vocabulary with it). The item mention is found first, and its words are
not read again for genres, years or counts ("Star Wars" is no war film; "Apollo 13" asks for
no 13 items). A mention is looked for after words that introduce one ("like", "similar to",
"why", "picked"...), and anywhere for titles of two or more words or capitalised mid-sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from recllm.routing.catalog import Catalog
from recllm.routing.schema import ItemMention, MentionStatus, Slots
from recllm.routing.text import normalise, singular

# Phrases after which a title usually follows (normalised words).
TRIGGERS: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in (
        "similar to",
        "comparable to",
        "close to",
        "such as",
        "in the spirit of",
        "in the vein of",
        "in the style of",
        "akin to",
        "along the lines of",
        "reminiscent of",
        "fans of",
        "fan of",
        "more like",
        "like",
        "why",
        "how come",
        "justify",
        "explain",
        "about",
        "picked",
        "pick",
        "chose",
        "choose",
        "chosen",
        "selected",
        "recommended",
        "recommending",
        "recommend",
        "suggested",
        "suggesting",
        "suggest",
        "showing me",
        "show me",
        "loved",
        "liked",
        "enjoyed",
        "watched",
        "bought",
        "tried",
        "used",
        "decide on",
    )
)
# "I'd like", "would like": wanting, not comparing.
NOT_TRIGGER_BEFORE_LIKE = frozenset({"d", "id", "would", "you", "i", "we", "they"})
# Words skipped between a trigger and the title ("why did you pick ...", "why would I like").
FILLER = frozenset(
    [
        "did",
        "do",
        "does",
        "would",
        "could",
        "will",
        "have",
        "has",
        "had",
        "are",
        "is",
        "was",
        "were",
        "you",
        "i",
        "id",
        "we",
        "think",
        "thought",
        "want",
        "wanted",
        "like",
        "enjoy",
        "love",
        "need",
        "pick",
        "picked",
        "choose",
        "chose",
        "recommend",
        "recommended",
        "suggest",
        "suggested",
        "show",
        "showing",
        "select",
        "selected",
        "give",
        "put",
        "decide",
        "me",
        "to",
        "on",
        "my",
        "us",
    ]
)
# A mention starting with these refers to what was just shown, not to a title.
DEICTIC = frozenset(["this", "that", "these", "those", "it", "one", "them", "they"])
# A mention is cut before these when no title matched the longer words.
SOFT_STOPS = frozenset(
    [
        "for",
        "to",
        "and",
        "but",
        "from",
        "please",
        "pls",
        "on",
        "in",
        "was",
        "is",
        "were",
        "are",
        "a",
        "lot",
        "yesterday",
        "recommended",
        "suggested",
        "with",
        "tonight",
        "before",
        "after",
        "since",
        "made",
        "got",
        "so",
        "because",
        "that",
        "which",
        "who",
        "it",
        "as",
        "or",
        "than",
        "this",
        "last",
        "today",
        "yet",
        "again",
    ]
)
# Words of a clause ("why they fit my taste"), not of a title that was not found.
CLAUSE = frozenset(
    [
        "they",
        "them",
        "each",
        "you",
        "i",
        "me",
        "my",
        "we",
        "us",
        "why",
        "how",
        "what",
        "reason",
        "reasoning",
        "explanation",
        "explain",
        "taste",
        "suit",
        "suits",
        "fit",
        "fits",
        "think",
        "behind",
        "would",
        "should",
        "could",
    ]
)
# Words that name no title: request nouns, adjectives, counts.
GENERIC = frozenset(
    [
        "movie",
        "film",
        "flick",
        "product",
        "item",
        "title",
        "thing",
        "stuff",
        "something",
        "anything",
        "everything",
        "one",
        "pick",
        "list",
        "recommendation",
        "suggestion",
        "choice",
        "good",
        "great",
        "nice",
        "new",
        "old",
        "older",
        "newer",
        "recent",
        "classic",
        "best",
        "top",
        "few",
        "some",
        "more",
        "other",
        "else",
        "similar",
        "me",
        "my",
        "for",
        "you",
        "your",
        "what",
        "which",
        "kind",
        "type",
        "sort",
        "next",
        "now",
        "right",
        "really",
        "very",
        "most",
        "please",
        "pls",
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "watch",
        "buy",
        "try",
        "something",
        "couple",
        "pair",
    ]
)
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "dozen": 12,
}
MAX_K = 100
ITEM_NOUNS = frozenset(
    ["movie", "film", "flick", "product", "item", "title", "one", "pick", "recommendation"]
)

_TOKEN = re.compile(r"[^\s?,;!\"“”]+|[?,;!\"“”]")
_BOUNDARY = frozenset('?,;!"“”')


@dataclass(frozen=True)
class Token:
    raw: str  # as written (for capitalisation and the reported mention)
    word: str  # normalised, articles kept ("" for punctuation)
    start: int
    end: int
    boundary: bool  # punctuation that ends a mention


def tokenize(text: str) -> list[Token]:
    """Words and mention-ending punctuation, with character offsets."""
    tokens = []
    for m in _TOKEN.finditer(text):
        raw, start, end = m.group(), m.start(), m.end()
        # a full stop ends a sentence unless the word has dots inside ("E.T.", "L.A.")
        full_stop = raw.endswith(".") and "." not in raw[:-1]
        if full_stop:
            raw, end = raw[:-1], end - 1
        if raw in _BOUNDARY:
            tokens.append(Token(raw, "", start, end, True))
            continue
        tokens.append(Token(raw, normalise(raw, drop_articles=False), start, end, False))
        if full_stop:
            tokens.append(Token(".", "", end, end + 1, True))
    return tokens


def extract_slots(text: str, catalog: Catalog) -> Slots:
    """All slots of one query (see the module docstring for the order and rules)."""
    tokens = tokenize(spell_out_ranges(text))
    mention, span = find_mention(tokens, catalog)
    # a token may hold several words ("sci-fi" -> "sci fi"); punctuation stays as ""
    words = [
        w
        for i, t in enumerate(tokens)
        if not (span[0] <= i < span[1])
        for w in (t.word.split() or [""])
    ]
    year_from, year_to = find_years(" ".join(w if w else "," for w in words))
    return Slots(
        item=mention,
        genres=find_genres(words, catalog),
        year_from=year_from,
        year_to=year_to,
        k=find_k(words, catalog),
    )


def find_mention(
    tokens: list[Token], catalog: Catalog
) -> tuple[ItemMention | None, tuple[int, int]]:
    """The referenced item and the token span it occupies ((0, 0) when none).

    After each trigger, the words up to the next punctuation or trigger are tried whole, then
    cut before each stop word, longest first; then shorter exact titles. A span that matches
    nothing is reported as not found unless it is only generic words or a clause."""
    words = [t.word for t in tokens]
    triggers = _trigger_positions(words)
    unresolved: tuple[ItemMention, tuple[int, int]] | None = None
    for _, start in triggers:
        end = start
        while end < len(tokens) and not tokens[end].boundary:
            end += 1
        end = min([end, *(p for p, _ in triggers if p >= start)])
        if start >= end or words[start] in DEICTIC or words[start] in SOFT_STOPS:
            continue
        soft_ends = [i for i in range(end - 1, start, -1) if words[i] in SOFT_STOPS]
        # generic words name a title only when written like one ("Movie 30", "Heat")
        titled = tokens[start].raw[:1].isupper()
        for stop in (end, *soft_ends):
            span = words[start:stop]
            if _names_no_title(span, catalog) and not _exact(span, catalog, generic_ok=titled):
                continue
            found = catalog.resolve(_text(tokens, start, stop))
            if found.status is not MentionStatus.NOT_FOUND:
                return found, (start, stop)
        for stop in range(end - 1, start, -1):
            if _exact(words[start:stop], catalog, generic_ok=titled):
                return catalog.resolve(_text(tokens, start, stop)), (start, stop)
        stop = soft_ends[-1] if soft_ends else end
        if unresolved is None and not (
            _names_no_title(words[start:stop], catalog) or CLAUSE & set(words[start:stop])
        ):
            unresolved = (
                ItemMention(_text(tokens, start, stop), MentionStatus.NOT_FOUND),
                (start, stop),
            )
    exact = _exact_anywhere(tokens, catalog)
    if exact is not None:
        return exact
    return unresolved if unresolved is not None else (None, (0, 0))


def _trigger_positions(words: list[str]) -> list[tuple[int, int]]:
    """(where a trigger phrase starts, where the title after it and its filler starts)."""
    found = []
    for i in range(len(words)):
        for trigger in TRIGGERS:
            if tuple(words[i : i + len(trigger)]) != trigger:
                continue
            if trigger == ("like",) and i and words[i - 1] in NOT_TRIGGER_BEFORE_LIKE:
                continue
            j = i + len(trigger)
            while j < len(words) and words[j] in FILLER:
                j += 1
            while j < len(words) and words[j] in ("the", "a", "an"):
                j += 1
            found.append((i, j))
            break
    return found


def _exact(
    words: list[str], catalog: Catalog, primary: bool = False, generic_ok: bool = False
) -> bool:
    return (
        bool(words)
        and all(words)
        and (generic_ok or not _names_no_title(words, catalog))
        and catalog.is_exact_alias(" ".join(words), primary)
    )


def _names_no_title(words: list[str], catalog: Catalog) -> bool:
    """Only generic words, genres and counts: "three thrillers", "makeup brushes"."""
    return all(_is_generic(w, catalog) for w in words)


def _exact_anywhere(
    tokens: list[Token], catalog: Catalog
) -> tuple[ItemMention, tuple[int, int]] | None:
    """The longest exact title of 2+ words, or a capitalised one mid-sentence."""
    best: tuple[int, int] | None = None
    for start in range(len(tokens)):
        for stop in range(min(len(tokens), start + 12), start, -1):
            words = [t.word for t in tokens[start:stop]]
            if best is not None and stop - start <= best[1] - best[0]:
                break
            if not _exact(words, catalog, primary=True):
                continue
            content = [w for w in words if w not in ("the", "a", "an")]
            capitalised = start > 0 and tokens[start].raw[:1].isupper() and tokens[start].raw != "I"
            if len(content) >= 2 or capitalised:
                best = (start, stop)
    if best is None:
        return None
    return catalog.resolve(_text(tokens, *best)), best


def _text(tokens: list[Token], start: int, stop: int) -> str:
    return " ".join(t.raw for t in tokens[start:stop])


def _is_generic(word: str, catalog: Catalog) -> bool:
    stem = singular(word)
    return (
        word in GENERIC
        or stem in GENERIC
        or word in NUMBER_WORDS
        or word.isdigit()
        or any(term.tokens == (stem,) for term in catalog.genre_terms)
        or any(stem in term.tokens for term in catalog.genre_terms)
    )


def find_genres(words: list[str], catalog: Catalog) -> tuple[str, ...]:
    """Catalogue genres named in the words, longest phrase first, each word used once."""
    stems = [singular(w) if w else "" for w in words]
    used = [False] * len(stems)
    found: list[str] = []
    for term in catalog.genre_terms:
        n = len(term.tokens)
        for i in range(len(stems) - n + 1):
            if any(used[i : i + n]) or tuple(stems[i : i + n]) != term.tokens:
                continue
            used[i : i + n] = [True] * n
            if term.genre not in found:
                found.append(term.genre)
    return tuple(found)


# "1990-1995", "1990 – 95", "'80s-'90s": a dash between years or decades is a range. The
# normaliser drops dashes (one token "1990–1995" would read as "19901995"), so ranges are
# spelt out with "to" before the query is split into words.
_DASHED = re.compile(
    r"(?<![\w.])'?((?:18|19|20)?\d\ds?)\s*[-‐‑‒–—]+\s*'?((?:18|19|20)?\d\d(s)?)(?![\w.])"
)
_DECADE_WORDS = {
    "twenties": "20s",
    "thirties": "30s",
    "forties": "40s",
    "fifties": "50s",
    "sixties": "60s",
    "seventies": "70s",
    "eighties": "80s",
    "nineties": "90s",
}
_DECADE_WORD = re.compile(rf"\b(?:{'|'.join(_DECADE_WORDS)})\b", re.IGNORECASE)


def spell_out_ranges(text: str) -> str:
    """``text`` with dashed year ranges written "A to B" (a short end year takes the
    century of the start: "1990-95" is 1990 to 1995) and decade words as numbers."""

    def spelt(m: re.Match[str]) -> str:
        start, end = m.group(1), m.group(2)
        if len(start.rstrip("s")) == 2 and len(end.rstrip("s")) == 2 and not m.group(3):
            return m.group(0)  # "10-12": a count range or a time, not years
        if len(end.rstrip("s")) == 2 and len(start.rstrip("s")) == 4:
            end = start[:2] + end
        return f"{start} to {end}"

    text = _DASHED.sub(spelt, text)
    return _DECADE_WORD.sub(lambda m: _DECADE_WORDS[m.group(0).lower()], text)


_YEAR = r"((?:18|19|20)\d\d)"
_DECADE_BODY = r"(?:(18|19|20)(\d)0|(\d)0) ?s"
_DECADE = re.compile(rf"\b{_DECADE_BODY}\b")
_RANGE = re.compile(rf"\b(?:between|from)? ?{_YEAR} ?(?:and|to|until|till|through) ?{_YEAR}\b")
_BEFORE = re.compile(rf"\b(?:before|pre|prior to|older than|earlier than|until|up to) ?{_YEAR}\b")
_AFTER = re.compile(rf"\b(?:after|post|newer than|later than) ?{_YEAR}\b")
_SINCE = re.compile(
    rf"\b(?:since|from) ?{_YEAR} ?(?:on|onwards|onward|and later|or later)\b|\bsince ?{_YEAR}\b"
)
_SINGLE = re.compile(rf"\b{_YEAR}\b")


_DECADE_RANGE = re.compile(
    rf"\b{_DECADE_BODY} ?(?:and|to|until|till|through) ?(?:the )?{_DECADE_BODY}\b"
)


def find_years(text: str) -> tuple[int | None, int | None]:
    """(year_from, year_to), inclusive; "after 1990" means from 1991, "pre-1970" up to 1969.

    Expects dashed ranges spelt out (see :func:`spell_out_ranges`)."""
    if m := _RANGE.search(text):
        a, b = sorted((int(m.group(1)), int(m.group(2))))
        return a, b
    if m := _DECADE_RANGE.search(text):
        first, last = sorted((_decade_start(m.groups()[:3]), _decade_start(m.groups()[3:])))
        return first, last + 9
    if m := _DECADE.search(text):
        start = _decade_start(m.groups())
        return start, start + 9
    low = high = None
    if m := _SINCE.search(text):
        low = int(m.group(1) or m.group(2))
    elif m := _AFTER.search(text):
        low = int(m.group(1)) + 1
    if m := _BEFORE.search(text):
        high = int(m.group(1)) - 1
    if low is None and high is None and (m := _SINGLE.search(text)):
        low = high = int(m.group(1))
    return low, high


def _decade_start(groups: tuple[str | None, ...]) -> int:
    """First year of a decade matched by ``_DECADE``: "1980s" or "80s" (the 1900s)."""
    century, tens, short = groups
    if century:
        return int(century) * 100 + int(tens or 0) * 10
    return 1900 + int(short or 0) * 10


def find_k(words: list[str], catalog: Catalog) -> int | None:
    """How many items: a number ("top 5", "three thrillers", "a couple of"), or 1 for a
    singular request ("a horror movie", "a moisturiser"); None when not said."""
    for i, word in enumerate(words):
        value = int(word) if word.isdigit() else NUMBER_WORDS.get(word)
        if value is None or (word.isdigit() and len(word) == 4 and 1800 <= value <= 2099):
            continue
        if i + 1 < len(words) and words[i + 1] in ("pm", "am", "oz", "ounce", "inch", "percent"):
            continue
        if word == "one" and not _names_an_item(words[i + 1 : i + 4], catalog):
            continue  # "each one", "one of", "one more": not a count
        if 1 <= value <= MAX_K:
            return value
    for i, word in enumerate(words):
        if word in ("couple", "pair") and i and words[i - 1] == "a":
            return 2
    for i, word in enumerate(words):
        if word not in ("a", "an"):
            continue
        if _names_an_item(words[i + 1 : i + 4], catalog):
            return 1
    return None


def _names_an_item(ahead: list[str], catalog: Catalog) -> bool:
    """Whether the next words name an item ("good horror movie", "moisturiser")."""
    for word in ahead:
        if not word:
            return False
        if word in ITEM_NOUNS or _is_singular_genre(word, catalog):
            return True
    return False


def _is_singular_genre(word: str, catalog: Catalog) -> bool:
    """Whether ``word`` is the singular head of a genre phrase ("a horror movie" is caught by
    "movie"; "a musical", "a moisturiser", "a face wash" by their genre)."""
    if singular(word) != word:
        return False
    return any(term.tokens[-1] == word for term in catalog.genre_terms)
