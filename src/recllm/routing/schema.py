"""Typed results of the task router: intent, slots, and how an item mention resolved."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Intent(StrEnum):
    """What the system should do with a query."""

    RECOMMEND = "recommend"
    EXPLAIN = "explain"
    RECOMMEND_AND_EXPLAIN = "recommend_and_explain"
    OUT_OF_SCOPE = "out_of_scope"


INTENTS: tuple[str, ...] = tuple(i.value for i in Intent)


class MentionStatus(StrEnum):
    """How a referenced title resolved against the catalogue."""

    RESOLVED = "resolved"  # one item matches
    AMBIGUOUS = "ambiguous"  # several match equally; the most popular is given, others listed
    NOT_FOUND = "not_found"  # nothing in the catalogue matches: never guessed


@dataclass(frozen=True)
class ItemMention:
    """A title the query refers to, and the catalogue item it resolved to (if any)."""

    mention: str
    status: MentionStatus
    item: int | None = None  # item code in the catalogue
    item_id: str | None = None  # raw item id
    title: str | None = None
    score: float = 0.0  # match score, 0-100
    candidates: tuple[str, ...] = ()  # other titles when ambiguous


@dataclass(frozen=True)
class Slots:
    """Constraints and references read from a query; None/empty where not given."""

    item: ItemMention | None = None
    genres: tuple[str, ...] = ()  # canonical genre/category names of the catalogue
    year_from: int | None = None
    year_to: int | None = None
    k: int | None = None


@dataclass(frozen=True)
class Route:
    """The router's decision on one query."""

    text: str
    intent: Intent
    confidence: float
    slots: Slots = field(default_factory=Slots)
    notes: tuple[str, ...] = ()  # e.g. truncation, why a query is out of scope

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object of ``recllm route``: text, intent, confidence and slots."""
        item = self.slots.item
        return {
            "text": self.text,
            "intent": self.intent.value,
            "confidence": round(self.confidence, 4),
            "item": None if item is None else {**asdict(item), "status": item.status.value},
            "genre": list(self.slots.genres),
            "year_from": self.slots.year_from,
            "year_to": self.slots.year_to,
            "k": self.slots.k,
            "notes": list(self.notes),
        }


def named_item(route: Route, notes: list[str]) -> int | None:
    """The catalogue item a route's query names (None when it names none, or a title the
    catalogue lacks), with a note appended when the mention was not found or ambiguous."""
    mention = route.slots.item
    if mention is None:
        return None
    if mention.status is MentionStatus.NOT_FOUND:
        notes.append(f"no item in the catalogue matches {mention.mention!r}")
        return None
    if mention.status is MentionStatus.AMBIGUOUS:
        notes.append(f"{mention.mention!r} matches several items; took {mention.title!r}")
    return mention.item
