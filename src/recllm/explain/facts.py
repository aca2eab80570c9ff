"""The true facts an explanation of (user, item) may state, taken from the data.

Everything here is computed from the user's history *before* the recommended item (the
items, their ratings and order) and the catalogue (titles, genres, years), so a sentence
built from these facts is true by construction, and the faithfulness checker verifies a
generated one against the same facts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from recllm.routing.catalog import Catalog

WINDOW = 10  # "recently" means the last 10 items
LIKED = 4.0  # a rating at or above this is "liked"


@dataclass(frozen=True)
class HistoryEntry:
    item: int
    title: str
    rating: float | None
    genres: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """What is true of one user and one recommended item."""

    item: int
    title: str
    genres: tuple[str, ...]
    year: int | None
    window: int  # how many recent items the counts look at (<= WINDOW)
    recent: tuple[HistoryEntry, ...]  # most recent first
    attributed: tuple[HistoryEntry, ...]  # most attributed first (share a genre if possible)
    genre_counts: dict[str, int]  # per genre of the item: recent items with it
    liked_counts: dict[str, int]  # per genre of the item: recent items with it rated >= LIKED


def facts_for(
    catalog: Catalog,
    history: np.ndarray,
    item: int,
    ratings: np.ndarray | None = None,
    attribution: np.ndarray | None = None,
    top: int = 3,
) -> Facts:
    """Facts of ``item`` for a user whose history (oldest first) is ``history``.

    ``attribution`` weighs each history position (e.g. the preference aggregator's
    attention at the last step); without it the most recent items count most.
    """
    history = np.asarray(history)
    if ratings is not None and len(ratings) != len(history):
        raise ValueError(f"{len(ratings)} ratings for {len(history)} history items")
    entries = [
        HistoryEntry(
            int(h),
            str(catalog.titles[h]),
            None if ratings is None or np.isnan(ratings[i]) else float(ratings[i]),
            tuple(catalog.genres_of[h]),
        )
        for i, h in enumerate(history)
    ]
    recent = tuple(reversed(entries[-WINDOW:]))
    genres = tuple(catalog.genres_of[item])
    counts = Counter(g for e in recent for g in e.genres if g in genres)
    liked = Counter(
        g
        for e in recent
        if e.rating is not None and e.rating >= LIKED
        for g in e.genres
        if g in genres
    )
    weights = (
        np.asarray(attribution, dtype=float)
        if attribution is not None
        else np.arange(1, len(entries) + 1, dtype=float)  # recency
    )
    if len(weights) != len(entries):
        raise ValueError(f"{len(weights)} attribution weights for {len(entries)} history items")
    title = str(catalog.titles[item])
    # a history film with the recommended one's title (a remake) would read as a claim
    # about the recommendation itself
    order = [
        i
        for i in sorted(range(len(entries)), key=lambda i: (-weights[i], -i))
        if entries[i].title != title
    ]
    sharing = [i for i in order if set(entries[i].genres) & set(genres)]
    chosen = (sharing or order)[:top]
    year = int(catalog.years[item]) if catalog.years[item] > 0 else None
    return Facts(
        item=int(item),
        title=title,
        genres=genres,
        year=year,
        window=len(recent),
        recent=recent,
        attributed=tuple(entries[i] for i in chosen),
        genre_counts={g: counts[g] for g in genres},
        liked_counts={g: liked[g] for g in genres},
    )
