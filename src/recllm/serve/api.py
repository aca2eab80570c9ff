"""The one Python API over a bundle: recommend, explain, ask, record events, add items.

``Recommender.load(BUNDLE)`` reads a bundle (no dataset, no training code); the CLI and
the HTTP service are thin layers over this class, so the three give the same answers.
Known users' histories are the bundle's plus the events recorded since (the store);
items added online are encoded by the bundle's text encoder and scored through the
metadata path at once. Every explanation returned as verified was checked against the
data first.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from cachetools import TTLCache

from recllm.bundle.components import POPULARITY, TEXT, Components
from recllm.data.text import render_item_texts, template_fields
from recllm.errors import RecLLMError
from recllm.explain.baselines import template_reason
from recllm.explain.data import Example
from recllm.explain.explainer import Explained, Explainer, describe
from recllm.explain.facts import facts_for
from recllm.explain.faithfulness import FaithfulnessChecker
from recllm.models.item_encoder import ItemEncodings, encode_items
from recllm.models.sequential import score_history, top_k
from recllm.routing.catalog import Catalog, with_prefix
from recllm.routing.constraints import apply_constraints, satisfies
from recllm.routing.router import Router
from recllm.routing.schema import Intent, Route, Slots, named_item
from recllm.serve.explain_client import ExplainServiceError, RemoteExplainer
from recllm.serve.results import (
    Answer,
    ExplanationResult,
    ItemInfo,
    ItemMatch,
    PastItem,
    RankedItem,
    Recommendation,
    RecordedEvent,
    UserHistory,
)
from recllm.serve.store import EventStore, SQLiteStore, StoredItem, open_store

log = logging.getLogger(__name__)
MAX_K = 1000
MAX_HISTORY = 10_000
MAX_MATCHES = 50  # titles or user ids per look-up
HistoryEntry = str | tuple[str, float | None]


class NotFoundError(RecLLMError):
    """An unknown user or item id (the service answers 404)."""


class InvalidRequestError(RecLLMError):
    """A request that cannot be answered as given (the service answers 422)."""


@dataclass(frozen=True)
class Filters:
    """Constraints on what is recommended: any of ``genres``, a year range, items to leave out."""

    genres: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class _History:
    user_id: str | None
    items: np.ndarray  # item codes, oldest first
    ratings: np.ndarray  # NaN where unknown

    def key(self) -> str:
        digest = hashlib.sha256(self.items.astype(np.int64).tobytes())
        digest.update(np.nan_to_num(self.ratings, nan=-1.0).astype(np.float64).tobytes())
        return digest.hexdigest()


class Recommender:
    """A served recommender (see the module docstring). Thread-safe."""

    def __init__(
        self,
        parts: Components,
        store: EventStore | None = None,
        explanation_ttl: float = 600.0,
        explanation_cache_size: int = 10_000,
        default_k: int = 10,
        threads: int | None = None,
        explain_via: RemoteExplainer | None = None,
    ) -> None:
        self.parts = parts
        self.explain_via = explain_via  # a rank service: explanations come from elsewhere
        self.model = parts.model.eval()
        self._scorer: Any = self.model
        if parts.onnx is not None:
            from recllm.models.onnx_graph import OnnxScorer

            self._scorer = OnnxScorer(parts.onnx, self.model, threads=threads)
        self.store: EventStore = store if store is not None else SQLiteStore(Path(":memory:"))
        identity = parts.info.get("catalogue_identity", {}).get("items_sha256")
        self.store.bind(str(identity or parts.info.get("catalogue_hash") or parts.dataset))
        self.default_k = default_k
        self._lock = threading.RLock()
        self._explanations: TTLCache[tuple[str, str, str], ExplanationResult] = TTLCache(
            explanation_cache_size, explanation_ttl
        )
        self.cache_hits = 0
        self.cache_misses = 0
        self.items = parts.items.reset_index(drop=True)
        self.added: set[str] = set()
        self._items_version = 0
        self._refresh_catalogue()
        self._seed = self._seed_histories(parts.histories)
        self._user_ids = sorted(self._seed)  # for prefix look-ups
        self.sync()

    @classmethod
    def load(
        cls, bundle: str | Path, store: EventStore | str | Path | None = None, **options: Any
    ) -> Recommender:
        """The bundle in ``bundle``, with events in ``store`` (a path: a SQLite file;
        ``redis://HOST:PORT/DB``: a Redis shared by replicas; None: an in-memory store that
        lasts as long as this object)."""
        from recllm.bundle.load import load_bundle

        if isinstance(store, str | Path):
            store = open_store(store)
        return cls(load_bundle(Path(bundle)), store, **options)

    # -- what the bundle holds ----------------------------------------------------------

    @property
    def info(self) -> dict[str, Any]:
        return self.parts.info

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        """Users the bundle knows (those who only have recorded events not counted)."""
        return len(self._seed)

    @property
    def backend(self) -> str:
        """What scores requests: "torch" or "onnx" (ONNX Runtime)."""
        return "torch" if self._scorer is self.model else "onnx"

    def item(self, item_id: str) -> ItemInfo:
        """The catalogue entry of ``item_id``."""
        self.sync()
        code = self._code(item_id)
        row = self.items.iloc[code]
        fields = {k: _plain(v) for k, v in row.items() if k not in ("item_id", TEXT, POPULARITY)}
        return ItemInfo(str(row["item_id"]), str(row["title"]), fields, str(item_id) in self.added)

    def find_items(self, query: str, limit: int = 10) -> list[ItemMatch]:
        """Items whose title matches ``query`` as typed so far (typos tolerated), best first."""
        limit = _bounded(limit, "limit", MAX_MATCHES)
        self.sync()
        catalog = self.catalog
        return [
            ItemMatch(
                str(catalog.item_ids[code]),
                str(catalog.titles[code]),
                score,
                int(catalog.years[code]) or None,
                catalog.genres_of[code],
            )
            for code, score in catalog.search(str(query), limit)
        ]

    def find_users(self, prefix: str = "", limit: int = 20) -> list[str]:
        """Known users whose id starts with ``prefix``: the bundle's, shortest ids first
        (so "1", "2" ... "10"), and ``prefix`` itself when only the event store knows it."""
        limit = _bounded(limit, "limit", MAX_MATCHES)
        prefix = str(prefix).strip()
        found = with_prefix(self._user_ids, prefix)
        found.sort(key=lambda u: (len(u), u))
        if prefix and prefix not in self._seed and self.store.events_of(prefix):
            found.insert(0, prefix)
        return found[:limit]

    def history(self, user_id: str, limit: int = 20) -> UserHistory:
        """A known user's ``limit`` most recent items (the bundle's then the recorded
        events), newest first."""
        limit = _bounded(limit, "limit", MAX_HISTORY)
        self.sync()
        user = self._user_history(_clean_id(user_id, "user_id"))
        recent = range(len(user.items) - 1, max(len(user.items) - limit, 0) - 1, -1)
        items = tuple(
            PastItem(
                str(self.catalog.item_ids[user.items[i]]),
                str(self.catalog.titles[user.items[i]]),
                None if math.isnan(user.ratings[i]) else float(user.ratings[i]),
            )
            for i in recent
        )
        return UserHistory(user.user_id or "", len(user.items), items)

    # -- recommend / explain / ask ------------------------------------------------------

    def recommend(
        self,
        user_id: str | None = None,
        history: Sequence[HistoryEntry] | None = None,
        k: int | None = None,
        filters: Filters | None = None,
    ) -> Recommendation:
        """Top-``k`` unseen items for a known user or a given history (oldest first)."""
        k = self._k(k)
        self.sync()
        with self._lock:
            user = self._history(user_id, history)
            filters = filters or Filters()
            slots = Slots(
                genres=self._genres(filters.genres),
                year_from=filters.year_from,
                year_to=filters.year_to,
            )
            exclude = np.array([self._code(i) for i in filters.exclude], dtype=np.int64)
            notes: list[str] = []
            ranked = self._rank(user, slots, k, exclude, notes)
        return Recommendation(tuple(ranked), user.user_id, len(user.items), tuple(notes))

    def explain(
        self,
        item_id: str,
        user_id: str | None = None,
        history: Sequence[HistoryEntry] | None = None,
    ) -> ExplanationResult:
        """Why ``item_id`` suits this user, verified against the data before it is returned."""
        self.sync()
        with self._lock:
            user = self._history(user_id, history)
            item = self._code(item_id)
            if item in set(user.items.tolist()):
                raise InvalidRequestError(
                    f"item {item_id!r} is already in the history: explanations are for new items"
                )
        explained, _ = self._explanations_of(user, [item])
        return explained[0]

    def explain_many(
        self, item_ids: Sequence[str], user_id: str | None, history: Sequence[HistoryEntry]
    ) -> list[ExplanationResult]:
        """Explanations of several new items for one history (the explain service's side
        of a rank service's hop); ``user_id`` only labels the explanation cache."""
        self.sync()
        with self._lock:
            user = replace(self._history(None, history), user_id=user_id)
            codes = [self._code(i) for i in item_ids]
            seen = set(user.items.tolist())
            if any(code in seen for code in codes):
                raise InvalidRequestError("explanations are for items not in the history")
            return self._explain_many(user, codes)

    def ask(
        self,
        text: str,
        user_id: str | None = None,
        history: Sequence[HistoryEntry] | None = None,
        k: int | None = None,
    ) -> Answer:
        """A query in words, routed to recommendation, explanation or both."""
        if self.router is None:
            raise InvalidRequestError(
                "this bundle has no router; export it with --router to answer queries in words"
            )
        if not isinstance(text, str):
            raise InvalidRequestError("text must be a string")
        self.sync()
        with self._lock:
            user = self._history(user_id, history)
            route = self.router.route(text)
            if route.intent is Intent.OUT_OF_SCOPE:
                return _answer(route, notes=("out of scope: nothing recommended or explained",))
            answer, to_explain = self._answer(route, user, k)
        if not to_explain:
            return answer
        explained, note = self._explanations_of(user, to_explain)
        if note is not None:
            return replace(answer, notes=(*answer.notes, note), degraded=True)
        return replace(answer, explanations=tuple(explained))

    def history_of(self, user_id: str) -> list[tuple[str, float | None]]:
        """A known user's history (the bundle's and the store's events), oldest first, as
        (item id, rating or None): what a rank service sends its explain service."""
        self.sync()
        with self._lock:
            return self._wire(self._user_history(_clean_id(user_id, "user_id")))

    # -- writes -------------------------------------------------------------------------

    def record(
        self,
        user_id: str,
        item_id: str,
        rating: float | None = None,
        ts: float | None = None,
    ) -> RecordedEvent:
        """Append an interaction; it is durable when this returns and the user's next
        recommendation reflects it. A new user id starts a new history."""
        user_id = _clean_id(user_id, "user_id")
        item_id = _clean_id(item_id, "item_id")
        self.sync()
        self._code(item_id)
        if rating is not None:
            top = self.parts.rating_max
            if not math.isfinite(rating) or rating <= 0 or (top is not None and rating > top):
                allowed = f"(0, {top:g}]" if top is not None else "> 0"
                raise InvalidRequestError(f"rating must be in {allowed}, got {rating}")
        if ts is not None and not math.isfinite(ts):
            raise InvalidRequestError(f"ts must be a finite number of seconds, got {ts}")
        event = self.store.append(user_id, item_id, rating, ts)
        return RecordedEvent(event.user_id, event.item_id, event.rating, event.ts, event.seq)

    def add_items(self, items: Sequence[dict[str, Any]]) -> list[ItemInfo]:
        """Add or update items from their metadata (``item_id``, ``title`` and any text
        fields); they are encoded at once and recommendable through the metadata path.
        They persist in the store, so a restart (or another worker) serves them too."""
        rows = self._validated_items(items)
        frame = pd.DataFrame(rows, dtype=object)
        for name in template_fields(self.parts.encoder_settings.text_template):
            if name not in frame.columns:
                frame[name] = ""
        texts = render_item_texts(frame, self.parts.encoder_settings.text_template)
        settings = self.parts.encoder_settings
        with self._lock:
            encodings = encode_items(
                self.parts.encoder(),
                texts,
                n_tokens=settings.n_tokens,
                max_length=settings.max_length,
                batch_size=settings.batch_size,
                cache_dir=None,
                progress=False,
                bf16=settings.bf16,
            )
        stored = [
            StoredItem(
                row["item_id"],
                {**row, TEXT: text},
                encodings.pooled[i].numpy(),
                encodings.tokens[i].numpy(),
                encodings.token_mask[i].numpy(),
            )
            for i, (row, text) in enumerate(zip(rows, texts, strict=True))
        ]
        self.store.put_items(stored)
        self.sync()
        return [self.item(row["item_id"]) for row in rows]

    def sync(self) -> None:
        """Apply items that the store holds and this process has not yet seen (added by
        another worker or replica, or before a restart)."""
        version = self.store.items_version()
        if version <= self._items_version:
            return
        with self._lock:
            fresh = self.store.items_since(self._items_version)
            if fresh:
                self._apply_items(fresh)
                self._items_version = max(i.version for i in fresh)

    # -- internals ----------------------------------------------------------------------

    def _k(self, k: int | None) -> int:
        return _bounded(self.default_k if k is None else k, "k", MAX_K)

    def _code(self, item_id: str) -> int:
        code = self._index.get(str(item_id).strip())
        if code is None:
            raise NotFoundError(f"unknown item id {item_id!r}")
        return code

    def _history(self, user_id: str | None, history: Sequence[HistoryEntry] | None) -> _History:
        if (user_id is None) == (history is None):
            raise InvalidRequestError("give either user_id or history (a list of item ids)")
        if user_id is not None:
            return self._user_history(_clean_id(user_id, "user_id"))
        assert history is not None
        if isinstance(history, str) or not isinstance(history, Sequence):
            raise InvalidRequestError("history must be a list of item ids, oldest first")
        if not history:
            raise InvalidRequestError("history is empty: give at least one item id")
        if len(history) > MAX_HISTORY:
            raise InvalidRequestError(f"history has {len(history)} items; at most {MAX_HISTORY}")
        ids, ratings = [], []
        for entry in history:
            item_id, rating = entry if isinstance(entry, tuple) else (entry, None)
            ids.append(str(item_id).strip())
            ratings.append(np.nan if rating is None else float(rating))
        unknown = [i for i in ids if i not in self._index]
        if unknown:
            raise NotFoundError(f"unknown item id(s) {unknown[:10]} in the history")
        codes = np.array([self._index[i] for i in ids], dtype=np.int64)
        return _History(None, codes, np.array(ratings, dtype=np.float64))

    def _user_history(self, user_id: str) -> _History:
        seed = self._seed.get(user_id)
        events = self.store.events_of(user_id)
        if any(e.item_id not in self._index for e in events):
            self.sync()  # another replica added the item after this request's sync
        if seed is None and not events:
            raise NotFoundError(f"unknown user {user_id!r}: give a history instead")
        items = [seed[0]] if seed is not None else []
        ratings = [seed[1]] if seed is not None else []
        if events:
            items.append(np.array([self._index[e.item_id] for e in events], dtype=np.int64))
            ratings.append(np.array([np.nan if e.rating is None else e.rating for e in events]))
        return _History(user_id, np.concatenate(items), np.concatenate(ratings))

    def _weights(self, ratings: np.ndarray) -> np.ndarray:
        top = self.parts.rating_max
        if top is None:
            return np.ones(len(ratings), dtype=np.float32)
        weights = (ratings / top).astype(np.float32)
        weights[np.isnan(weights)] = 1.0  # an unrated event counts fully
        return weights

    def _genres(self, genres: Sequence[str]) -> tuple[str, ...]:
        if not genres:
            return ()
        known = {g.lower(): g for g in self.catalog.genres}
        unknown = [g for g in genres if str(g).lower() not in known]
        if unknown:
            raise InvalidRequestError(
                f"unknown genre(s) {unknown}; this catalogue has {sorted(known.values())[:40]}"
            )
        return tuple(known[str(g).lower()] for g in genres)

    def _rank(
        self, user: _History, slots: Slots, k: int, exclude: np.ndarray, notes: list[str]
    ) -> list[RankedItem]:
        if (
            slots.year_from is not None
            and slots.year_to is not None
            and slots.year_from > slots.year_to
        ):
            raise InvalidRequestError(
                f"year_from {slots.year_from} is after year_to {slots.year_to}"
            )
        meets = satisfies(self.catalog, slots)
        scores = score_history(self._scorer, user.items, self._weights(user.ratings))
        scores = apply_constraints(scores, meets, "filter")
        seen = np.concatenate([user.items, exclude]).astype(np.int64)
        top = top_k(scores, seen, k)
        if meets is not None and len(top) < k:
            notes.append(f"only {len(top)} unseen items meet the constraints")
        return [
            RankedItem(
                str(self.catalog.item_ids[item]),
                str(self.catalog.titles[item]),
                round(float(score), 4),
                None if meets is None else bool(meets[item]),
            )
            for item, score in top
        ]

    def _explain_many(self, user: _History, items: Sequence[int]) -> list[ExplanationResult]:
        """Explanations of ``items`` for one history: cached ones as they are, the rest
        written together in one batch."""
        results = [self._cached(user, item) for item in items]
        missing = [k for k, r in enumerate(results) if r is None]
        pairs = [Example(-1, items[k], user.items, user.ratings, "", ()) for k in missing]
        for k, explained in zip(missing, self._explained(pairs), strict=True):
            item = items[k]
            result = ExplanationResult(
                str(self.catalog.item_ids[item]),
                str(self.catalog.titles[item]),
                explained.text,
                explained.verified,
                explained.source,
                explained.claims,
            )
            self._explanations[self._cache_key(user, item)] = result
            results[k] = result
        return [r for r in results if r is not None]

    def _explained(self, pairs: list[Example]) -> list[Explained]:
        """The trained explainer's sentences, or the template's without one."""
        if not pairs:
            return []
        if self.explainer is not None:
            return self.explainer.explain_checked(pairs)
        return [
            describe(
                self.checker,
                template_reason(facts_for(self.catalog, p.history, p.item, p.ratings)),
                p,
                "template",
            )
            for p in pairs
        ]

    def _answer(self, route: Route, user: _History, k: int | None) -> tuple[Answer, list[int]]:
        """Recommend as the route says, and which items to explain; the ranking is fixed
        before any explanation is written, so explaining never changes what is
        recommended."""
        notes: list[str] = []
        mention = route.slots.item
        named = named_item(route, notes)
        seeded = user
        if named is not None:  # "more like X": X joins the history as its most recent item
            seeded = _History(
                user.user_id, np.append(user.items, named), np.append(user.ratings, np.nan)
            )
        empty = np.zeros(0, dtype=np.int64)
        if route.intent is Intent.EXPLAIN:
            if mention is not None and named is None:
                return _answer(route, notes=tuple(notes)), []
            if named is None:
                notes.append("no item named: explaining the top recommendation")
                top = self._rank(user, route.slots, 1, empty, notes)
                if not top:
                    return _answer(route, notes=tuple(notes)), []
                named = self._index[top[0].item_id]
            if named in set(user.items.tolist()):
                notes.append("the named item is already in the history")
                return _answer(route, notes=tuple(notes)), []
            return _answer(route, notes=tuple(notes)), [named]
        size = self._k(route.slots.k or k)
        ranked = self._rank(seeded, route.slots, size, empty, notes)
        wanted = route.intent is Intent.RECOMMEND_AND_EXPLAIN
        return _answer(route, tuple(ranked), notes=tuple(notes)), (
            [self._index[r.item_id] for r in ranked] if wanted else []
        )

    def _explanations_of(
        self, user: _History, items: list[int]
    ) -> tuple[list[ExplanationResult], str | None]:
        """Explanations of ``items`` (codes), written here or by the explain service; when
        that one fails, placeholders marked degraded and a note saying why. A rank service
        keeps its own cache, so a hot user's explanations cost no hop (and survive the
        explain service being down); what it could not fetch is not cached. The hop runs
        outside the lock, so a slow explain service holds up no other request."""
        if self.explain_via is None:
            with self._lock:
                return self._explain_many(user, items), None
        with self._lock:
            found = {item: self._cached(user, item) for item in items}
        known = {item: hit for item, hit in found.items() if hit is not None}
        missing = [item for item in items if item not in known]
        if missing:
            ids = [str(self.catalog.item_ids[item]) for item in missing]
            try:
                fetched = self.explain_via.explain(user.user_id, self._wire(user), ids)
            except ExplainServiceError as exc:
                log.warning("answering without reasons: %s", exc)
                for item, item_id in zip(missing, ids, strict=True):
                    title = str(self.catalog.titles[item])
                    known[item] = ExplanationResult.unavailable(item_id, title)
                return [known[item] for item in items], f"explanations unavailable: {exc}"
            with self._lock:
                for item, result in zip(missing, fetched, strict=True):
                    self._explanations[self._cache_key(user, item)] = replace(result, cached=False)
                    known[item] = result
        return [known[item] for item in items], None

    def _wire(self, user: _History) -> list[tuple[str, float | None]]:
        """A history as the explain service takes it: (item id, rating or None), oldest first."""
        return [
            (str(self.catalog.item_ids[code]), None if math.isnan(rating) else float(rating))
            for code, rating in zip(user.items.tolist(), user.ratings.tolist(), strict=True)
        ]

    def _cache_key(self, user: _History, item: int) -> tuple[str, str, str]:
        return (user.user_id or "", str(self.catalog.item_ids[item]), user.key())

    def _cached(self, user: _History, item: int) -> ExplanationResult | None:
        """The cached explanation of ``item`` for this user and history, counted."""
        cached = self._explanations.get(self._cache_key(user, item))
        if cached is None:
            self.cache_misses += 1
            return None
        self.cache_hits += 1
        return replace(cached, cached=True)

    def _validated_items(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            raise InvalidRequestError("items must be a non-empty list of item objects")
        rows, seen = [], set()
        for position, raw in enumerate(items):
            if not isinstance(raw, dict):
                raise InvalidRequestError(f"items[{position}] must be an object")
            row = {str(k): _plain(v) for k, v in raw.items()}
            row["item_id"] = _clean_id(row.get("item_id"), f"items[{position}].item_id")
            title = row.get("title")
            if not isinstance(title, str) or not title.strip():
                raise InvalidRequestError(f"items[{position}].title must be a non-empty string")
            if row["item_id"] in seen:
                raise InvalidRequestError(f"item id {row['item_id']!r} appears twice")
            seen.add(row["item_id"])
            rows.append(row)
        return rows

    def _seed_histories(
        self, frame: pd.DataFrame | None
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Known users' (item codes, ratings) from the bundle, in their recorded order."""
        if frame is None or frame.empty:
            return {}
        codes = frame["item_id"].astype(str).map(self._index)
        if codes.isna().any():
            raise RecLLMError("the bundle's histories name items its catalogue lacks")
        items = codes.to_numpy(dtype=np.int64)
        ratings = frame["rating"].to_numpy(dtype=np.float64)
        users = frame["user_id"].astype(str).to_numpy()
        order = np.argsort(users, kind="stable")  # each user's events keep their order
        users, items, ratings = users[order], items[order], ratings[order]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        return {
            str(users[a]): (items[a:b], ratings[a:b]) for a, b in zip(starts, ends, strict=True)
        }

    def _apply_items(self, stored: list[StoredItem]) -> None:
        """Put stored items into the model and catalogue (the latest version of each id)."""
        latest = {s.item_id: s for s in stored}
        codes: list[int] = []
        new_rows: list[dict[str, Any]] = []
        items = self.items
        for item_id, entry in latest.items():
            code = self._index.get(item_id)
            if code is None:
                code = len(items) + len(new_rows)
                new_rows.append(_catalogue_row(entry, items.columns))
            else:
                for name, value in entry.fields.items():
                    if name in items.columns:
                        items.at[code, name] = value
            codes.append(code)
            self.added.add(item_id)
        if new_rows:
            items = pd.concat([items, pd.DataFrame(new_rows)], ignore_index=True)
        encodings = ItemEncodings(
            torch.from_numpy(np.stack([s.pooled for s in latest.values()])),
            torch.from_numpy(np.stack([s.tokens for s in latest.values()])),
            torch.from_numpy(np.stack([s.token_mask for s in latest.values()])),
        )
        self.model.update_items(torch.tensor(codes), encodings)
        self.items = items
        self._refresh_catalogue()
        self._explanations.clear()

    def _refresh_catalogue(self) -> None:
        self.items["item_id"] = self.items["item_id"].astype(str)
        self._index = {item: code for code, item in enumerate(self.items["item_id"])}
        self.catalog = Catalog(
            self.parts.dataset, self.items, self.items[POPULARITY].to_numpy(dtype=np.int64)
        )
        self.checker = FaithfulnessChecker(self.catalog)
        classifier = self.parts.router
        self.router = Router(classifier, self.catalog) if classifier is not None else None
        explainer = self.parts.explainer
        self.explainer = (
            Explainer(
                self.model,
                self.catalog,
                explainer.generator,
                explainer.vocab,
                self.parts.rating_max,
                cache_size=0,
            )
            if explainer is not None
            else None
        )


def _answer(
    route: Route,
    items: tuple[RankedItem, ...] = (),
    explanations: tuple[ExplanationResult, ...] = (),
    notes: tuple[str, ...] = (),
) -> Answer:
    data = route.to_json()
    slots = {k: data[k] for k in ("item", "genre", "year_from", "year_to", "k")}
    return Answer(
        route.text,
        route.intent.value,
        round(route.confidence, 4),
        slots,
        items,
        explanations,
        (*route.notes, *notes),
    )


def _catalogue_row(entry: StoredItem, columns: pd.Index) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in columns}
    row.update({k: v for k, v in entry.fields.items() if k in columns})
    row["item_id"] = entry.item_id
    row[POPULARITY] = 0
    return row


def _bounded(value: Any, name: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidRequestError(f"{name} must be an integer from 1 to {most}, got {value!r}")
    return value


def _clean_id(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequestError(f"{name} must be a string id, got {value!r}")
    text = str(value).strip()
    if not text or len(text) > 200:
        raise InvalidRequestError(f"{name} must be a non-empty id of at most 200 characters")
    return text


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a catalogue value (NaN and missing become None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    return value
