"""Words of explanations: tokens, a vocabulary, and title slots (delexicalisation).

Titles are the facts a generator most easily gets wrong, so they never pass through it as
words: in a target the recommended item's title becomes ``[ITEM]`` and the cited history
items' titles ``[H1]``..``[H3]`` (in attribution order); the source lists what each slot
holds, and the slots are filled back with the exact catalogue titles after generation.
Counts, ratings, genres and years stay words, read from the source by attention.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from recllm.errors import RecLLMError
from recllm.explain.facts import Facts
from recllm.explain.reviews import ReviewFacts

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
ITEM_SLOT = "[ITEM]"
HISTORY_SLOTS = ("[H1]", "[H2]", "[H3]")
_TOKEN = re.compile(r"\[(?:ITEM|H\d)\]|[\w'\-]+|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r"\s+([.,;:!?])")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def detokenize(tokens: list[str]) -> str:
    return _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens))


def slots(facts: Facts | ReviewFacts) -> dict[str, str]:
    """Slot -> title for one pair."""
    filled = {ITEM_SLOT: facts.title}
    for slot, entry in zip(HISTORY_SLOTS, facts.attributed, strict=False):
        filled[slot] = entry.title
    return filled


def delexicalise(text: str, facts: Facts | ReviewFacts) -> str:
    """Titles replaced by their slots, longest title first (one may contain another)."""
    for slot, title in sorted(slots(facts).items(), key=lambda kv: -len(kv[1])):
        text = text.replace(title, f" {slot} ")
    return " ".join(text.split())


def relexicalise(tokens: list[str], facts: Facts | ReviewFacts) -> str:
    """Generated tokens back to text, slots filled with titles ("" for an empty slot)."""
    filled = slots(facts)
    empty = {ITEM_SLOT, *HISTORY_SLOTS} - set(filled)  # fewer cited films than slots
    return detokenize([filled.get(t, t) for t in tokens if t not in empty])


def source_tokens(facts: Facts | ReviewFacts) -> list[str]:
    """The facts as the generator reads them: item, its genres and year, the recent genre
    counts and liked counts, and each cited history item's genres and rating (for review
    explanations: the item's features and the user's)."""
    if isinstance(facts, ReviewFacts):
        return facts.source_tokens(ITEM_SLOT)
    tokens = [ITEM_SLOT, "genres", *(g.lower() for g in facts.genres)]
    if facts.year is not None:
        tokens += ["year", str(facts.year)]
    tokens += ["last", str(facts.window)]
    for genre, count in facts.genre_counts.items():
        tokens += [
            "count",
            genre.lower(),
            str(count),
            "liked",
            str(facts.liked_counts.get(genre, 0)),
        ]
    for slot, entry in zip(HISTORY_SLOTS, facts.attributed, strict=False):
        tokens += [slot, "genres", *(g.lower() for g in entry.genres)]
        if entry.rating is not None:
            tokens += ["rating", str(round(entry.rating))]
    return tokens


class Vocab:
    """Token <-> id; tokens seen fewer than ``min_count`` times map to ``<unk>``."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if tuple(self.tokens[: len(SPECIALS)]) != SPECIALS:
            raise RecLLMError(f"a vocabulary must start with {SPECIALS}")

    @classmethod
    def build(cls, texts: list[list[str]], min_count: int = 1, max_size: int = 20_000) -> Vocab:
        counts = Counter(t for text in texts for t in text)
        words = [t for t, n in counts.most_common(max_size) if n >= min_count and t not in SPECIALS]
        return cls([*SPECIALS, *sorted(words)])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(t, unk) for t in tokens]

    def decode(self, ids: list[int]) -> list[str]:
        out = []
        for i in ids:
            token = self.tokens[i]
            if token == EOS:
                break
            if token not in (PAD, BOS):
                out.append(token)
        return out

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.tokens, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        if not Path(path).is_file():
            raise RecLLMError(f"{path} is missing: not a saved explanation generator")
        return cls(json.loads(Path(path).read_text()))
