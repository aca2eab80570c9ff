"""Typed results of the Python API (and, as JSON, of the HTTP service)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any


@dataclass(frozen=True)
class RankedItem:
    """One recommended item. ``meets_constraints``: None when the request set none."""

    item_id: str
    title: str
    score: float
    meets_constraints: bool | None = None


@dataclass(frozen=True)
class Recommendation:
    """Top-k items for a user or a history, best first."""

    items: tuple[RankedItem, ...]
    user_id: str | None
    history_length: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExplanationResult:
    """Why ``item_id`` for this user: the sentence, whether the checker verified every
    claim in it, the claims with their verdicts, and where it came from ("generator" or
    "template": the fact-built sentence used when no generated draft verifies).
    ``degraded``: a rank service's explain service did not answer, so there is no reason
    (``text`` empty, ``source`` "unavailable")."""

    item_id: str
    title: str
    text: str
    verified: bool
    source: str
    claims: tuple[dict[str, Any], ...] = ()
    cached: bool = False
    degraded: bool = False

    @classmethod
    def unavailable(cls, item_id: str, title: str) -> ExplanationResult:
        """The answer when the explain service is down or slow: no reason, marked so."""
        return cls(item_id, title, "", False, "unavailable", degraded=True)


@dataclass(frozen=True)
class Answer:
    """A query in words, routed: the intent and slots read, then the answer.
    ``degraded``: reasons were asked for but the explain service did not answer, so the
    items come without them (a note says why)."""

    text: str
    intent: str
    confidence: float
    slots: dict[str, Any]
    items: tuple[RankedItem, ...] = ()
    explanations: tuple[ExplanationResult, ...] = ()
    notes: tuple[str, ...] = ()
    degraded: bool = False


@dataclass(frozen=True)
class ItemInfo:
    """A catalogue item: id, title, its text fields, and whether it was added online."""

    item_id: str
    title: str
    fields: dict[str, Any] = field(default_factory=dict)
    added: bool = False


@dataclass(frozen=True)
class ItemMatch:
    """A catalogue item found by its title (type-ahead), with how well it matched (0-100)."""

    item_id: str
    title: str
    score: float
    year: int | None = None
    genres: tuple[str, ...] = ()


@dataclass(frozen=True)
class PastItem:
    """One entry of a user's history; ``rating`` None where the data has none."""

    item_id: str
    title: str
    rating: float | None


@dataclass(frozen=True)
class UserHistory:
    """A known user's most recent items, newest first (``length`` counts them all)."""

    user_id: str
    length: int
    items: tuple[PastItem, ...]


@dataclass(frozen=True)
class RecordedEvent:
    user_id: str
    item_id: str
    rating: float | None
    ts: float
    seq: int


def to_json(result: Any) -> dict[str, Any]:
    """A result as plain JSON-ready data (what ``dataclasses.asdict`` gives, without its
    deep copy of every value: a tenth of a cheap request's CPU went to it)."""
    plain = _plain(result)
    assert isinstance(plain, dict)
    return plain


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
