"""The HTTP contract: request bodies as pydantic models with bounds on every field.

Names are the Python API's (``user_id`` or ``history``, ``k``, ``filters``, ``item_id``,
``text``); anything unknown or out of bounds is a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from recllm.serve.api import MAX_HISTORY, MAX_K, MAX_MATCHES
from recllm.serve.results import ItemMatch, PastItem

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
FieldValue = Annotated[str, StringConstraints(max_length=5000)] | int | float | bool | None
MAX_TEXT = 1000
MAX_ITEMS_PER_REQUEST = 1000
MAX_HISTORY_PAGE = 500


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HistoryEvent(Strict):
    """One history entry with its rating (``history`` also takes plain item ids)."""

    item_id: Id
    rating: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False)


History = Annotated[list[Id | HistoryEvent], Field(min_length=1, max_length=MAX_HISTORY)]


class FiltersBody(Strict):
    genres: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50, description="any of these genres / categories"
    )
    year_from: int | None = Field(default=None, ge=0, le=3000)
    year_to: int | None = Field(default=None, ge=0, le=3000)
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_HISTORY)


class Who(Strict):
    user_id: Id | None = Field(default=None, description="a known user (the event store)")
    history: History | None = Field(default=None, description="item ids, oldest first")


class RecommendBody(Who):
    k: int = Field(default=10, ge=1, le=MAX_K)
    filters: FiltersBody | None = None


class ExplainBody(Who):
    item_id: Id


class ExplainBatchBody(Strict):
    """A rank service's call: explain ``item_ids`` for this history (its user's, resolved
    by the rank service; ``user_id`` only labels the explanation cache)."""

    user_id: Id | None = None
    history: History
    item_ids: list[Id] = Field(min_length=1, max_length=MAX_K)


class AskBody(Who):
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
    k: int | None = Field(default=None, ge=1, le=MAX_K)


class EventBody(Strict):
    user_id: Id
    item_id: Id
    rating: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False)
    ts: float | None = Field(default=None, ge=0, le=1e11, allow_inf_nan=False)


class ItemsBody(Strict):
    items: list[
        dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], FieldValue]
    ] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"items": [{"item_id": "new-1", "title": "Toy Story 5 (2026)"}]}]
        },
    )


class ReloadBody(Strict):
    bundle: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None


class ItemSearch(Strict):
    """``GET /v1/items``: titles matching what is typed so far (the page's type-ahead)."""

    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    limit: int = Field(default=10, ge=1, le=MAX_MATCHES)


class UserSearch(Strict):
    """``GET /v1/users``: known user ids starting with ``prefix``."""

    prefix: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    limit: int = Field(default=20, ge=1, le=MAX_MATCHES)


class HistoryPage(Strict):
    """``GET /v1/users/{user_id}/history``: how many of the most recent items."""

    limit: int = Field(default=20, ge=1, le=MAX_HISTORY_PAGE)


class ItemMatches(BaseModel):
    query: str
    items: list[ItemMatch]


class UserMatches(BaseModel):
    prefix: str
    users: list[str]


class HistoryOut(BaseModel):
    user_id: str
    length: int = Field(description="items in the whole history")
    items: list[PastItem] = Field(description="the most recent, newest first")


def history_entries(history: list[Any] | None) -> list[str | tuple[str, float | None]] | None:
    """The API's history form: plain ids, or (id, rating) pairs."""
    if history is None:
        return None
    return [h if isinstance(h, str) else (h.item_id, h.rating) for h in history]
