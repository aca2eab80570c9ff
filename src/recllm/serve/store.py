"""Where the service keeps what changes while it runs: users' new events and added items.

The bundle is immutable; the store holds everything written through the API. The service
depends only on :class:`EventStore`; :func:`open_store` picks one from a ``--store`` value.
:class:`SQLiteStore` (the default) uses the standard library's ``sqlite3`` in WAL mode with
``synchronous=FULL``: a write returns only after it is on disk, so no acknowledged event is
lost when the process is killed; several worker processes of one machine share its file.
:class:`recllm.serve.redis_store.RedisStore` is shared by replicas on several machines.

Replicas see each other's writes through the store alone: a user's events are read from
it on every request, and items carry a store-wide version that
:meth:`recllm.serve.api.Recommender.sync` compares with the last one it applied.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from recllm.errors import RecLLMError

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    rating REAL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, seq);
CREATE TABLE IF NOT EXISTS items (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    pooled BLOB NOT NULL,
    tokens BLOB NOT NULL,
    token_mask BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Event:
    """One interaction written through the API."""

    user_id: str
    item_id: str
    rating: float | None
    ts: float
    seq: int = 0


@dataclass(frozen=True)
class StoredItem:
    """An item added or updated through the API, with its metadata encodings.

    ``pooled`` (H,), ``tokens`` (M, H) float32 and ``token_mask`` (M,) bool, as
    :class:`recllm.models.item_encoder.ItemEncodings` holds them per item."""

    item_id: str
    fields: dict[str, Any]
    pooled: np.ndarray
    tokens: np.ndarray
    token_mask: np.ndarray
    version: int = 0


class StoreUnavailableError(RecLLMError):
    """The store cannot be reached (the service answers 503: retry later)."""


class EventStore(Protocol):
    """What the service needs of a store (see the module docstring)."""

    def append(self, user_id: str, item_id: str, rating: float | None, ts: float | None) -> Event:
        """Record an event durably and return it (with its sequence number)."""
        ...

    def events_of(self, user_id: str) -> list[Event]:
        """The user's events in the order they were recorded."""
        ...

    def put_items(self, items: list[StoredItem]) -> int:
        """Record added/updated items durably; return the store's new item version."""
        ...

    def items_since(self, version: int) -> list[StoredItem]:
        """Items recorded after ``version``, oldest first."""
        ...

    def items_version(self) -> int:
        """The version of the latest recorded item (0: none)."""
        ...

    def bind(self, identity: str) -> None:
        """Tie the store to one catalogue identity; refuse a store made for another."""
        ...

    def close(self) -> None: ...


class SQLiteStore:
    """The embedded default: one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")  # other worker processes
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise RecLLMError(f"cannot open the event store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def bind(self, identity: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='catalogue'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('catalogue', ?)", (identity,))
            elif row[0] != identity:
                raise RecLLMError(
                    f"the event store {self.path} belongs to another catalogue ({row[0]}), not "
                    f"this bundle's ({identity}); pass another --store"
                )

    def append(self, user_id: str, item_id: str, rating: float | None, ts: float | None) -> Event:
        when = time.time() if ts is None else float(ts)
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (user_id, item_id, rating, ts) VALUES (?, ?, ?, ?)",
                (user_id, item_id, rating, when),
            )
            seq = int(cursor.lastrowid or 0)
        return Event(user_id, item_id, rating, when, seq)

    def events_of(self, user_id: str) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user_id, item_id, rating, ts, seq FROM events WHERE user_id = ? "
                "ORDER BY seq",
                (user_id,),
            ).fetchall()
        return [Event(*row) for row in rows]

    def put_items(self, items: list[StoredItem]) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    self._db.execute(
                        "INSERT INTO items (item_id, fields, pooled, tokens, token_mask) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (
                            item.item_id,
                            json.dumps(item.fields, default=str),
                            item.pooled.astype("<f4").tobytes(),
                            item.tokens.astype("<f4").tobytes(),
                            item.token_mask.astype(np.uint8).tobytes(),
                        ),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            row = self._db.execute("SELECT MAX(version) FROM items").fetchone()
        return int(row[0] or 0)

    def items_since(self, version: int) -> list[StoredItem]:
        with self._lock:
            rows = self._db.execute(
                "SELECT item_id, fields, pooled, tokens, token_mask, version FROM items "
                "WHERE version > ? ORDER BY version",
                (version,),
            ).fetchall()
        out = []
        for item_id, fields, pooled, tokens, mask, row_version in rows:
            token_mask = np.frombuffer(mask, dtype=np.uint8).astype(bool)
            hidden = len(pooled) // 4
            out.append(
                StoredItem(
                    item_id,
                    json.loads(fields),
                    np.frombuffer(pooled, dtype="<f4").copy(),
                    np.frombuffer(tokens, dtype="<f4").reshape(len(token_mask), hidden).copy(),
                    token_mask,
                    int(row_version),
                )
            )
        return out

    def items_version(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(version) FROM items").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(spec: str | Path) -> EventStore:
    """The store a ``--store`` value names: ``redis://HOST:PORT/DB`` (``rediss://`` for
    TLS) a shared Redis; a path a SQLite file."""
    text = str(spec)
    if "://" not in text:
        return SQLiteStore(Path(text))
    scheme = urlsplit(text).scheme.lower()
    opener = _OPENERS.get(scheme)
    if opener is None:
        raise RecLLMError(
            f"unknown store {text!r}: give a SQLite file path or redis://HOST:PORT/DB "
            f"(schemes: {', '.join(sorted(_OPENERS))})"
        )
    return opener(text)


def _redis(url: str) -> EventStore:
    try:
        from recllm.serve.redis_store import RedisStore
    except ImportError as exc:
        raise RecLLMError(
            f"the store {url!r} needs the redis client package: pip install 'recllm[redis]'"
        ) from exc
    return RedisStore(url)


_OPENERS = {"redis": _redis, "rediss": _redis}
