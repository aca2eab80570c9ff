"""Text normalisation shared by title matching, slot extraction and query generation."""

from __future__ import annotations

import re
import unicodedata

ARTICLES = frozenset({"the", "a", "an"})
_NON_WORD = re.compile(r"[^a-z0-9\s]")
_HYPHENS = re.compile(r"[-_/+]")
_SPACES = re.compile(r"\s+")


def normalise(text: str, drop_articles: bool = True) -> str:
    """Lower-case ASCII words: accents, punctuation and (optionally) articles removed.

    ``"The Usual Suspects"`` and ``"usual suspects!"`` both become ``"usual suspects"``;
    apostrophes vanish (``"Schindler's"`` -> ``"schindlers"``) and hyphens split words.
    """
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ")
    text = _HYPHENS.sub(" ", text)
    text = _SPACES.sub(" ", _NON_WORD.sub("", text)).strip()
    if drop_articles:
        text = " ".join(w for w in text.split() if w not in ARTICLES)
    return text


def singular(word: str) -> str:
    """A crude English singular, enough to match "comedies" to "comedy", "gels" to "gel"."""
    if len(word) > 4 and word.endswith("ies"):
        # "movies", "cookies" keep their "ie"; "comedies", "mysteries" end in "y"
        return word[:-1] if word.endswith(("vies", "kies")) else word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def stem_tokens(text: str) -> list[str]:
    """Normalised, singular tokens (articles dropped)."""
    return [singular(w) for w in normalise(text).split()]
