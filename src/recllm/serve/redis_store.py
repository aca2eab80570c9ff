"""The shared store of several service replicas: one Redis server (``--store redis://...``).

Same semantics as :class:`recllm.serve.store.SQLiteStore`, in Redis types:

- ``recllm:events:seq``: the global event counter; ``recllm:events:<user>``: a list of the
  user's events in the order recorded. A Lua script takes the next number and appends the
  event in one atomic step, so numbers are unique and each user's list is in order.
- ``recllm:items``: one list of added items, oldest first; an item's version is its
  position (1-based), so ``LLEN`` is the store's item version and one ``RPUSH`` of a batch
  is atomic. Each entry is a JSON header and the raw little-endian float32 / uint8 arrays
  (nothing pickled).
- ``recllm:catalogue``: the catalogue identity the store was bound to.

Durability is Redis's: a write is acknowledged once Redis has applied it, and it survives
a crash of Redis only if Redis persists it. With ``appendonly yes`` and
``appendfsync always`` Redis writes and fsyncs its append-only file before it replies, the
guarantee the SQLite store gives; with ``appendfsync everysec`` (Redis's default when AOF
is on) up to a second of acknowledged writes can be lost, and without AOF everything since
the last snapshot. The store reads the server's setting when it connects and logs a
warning when it is weaker than ``always``.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import redis

from recllm.errors import RecLLMError
from recllm.serve.store import Event, StoredItem, StoreUnavailableError

log = logging.getLogger(__name__)
PREFIX = "recllm:"
SEQ = f"{PREFIX}events:seq"
ITEMS = f"{PREFIX}items"
CATALOGUE = f"{PREFIX}catalogue"
TIMEOUT_S = 5.0
# KEYS[1] the counter, KEYS[2] the user's list; ARGV[1] the event as JSON.
APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[2], seq .. ' ' .. ARGV[1])
return seq
"""
T = TypeVar("T")


class RedisStore:
    """Events and added items in one Redis database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._db = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
        except ValueError as exc:
            raise RecLLMError(f"cannot read the store URL {url!r}: {exc}") from exc
        try:
            self._db.ping()
        except redis.RedisError as exc:
            raise RecLLMError(f"cannot reach the Redis store {url}: {exc}") from exc
        self._append = self._db.register_script(APPEND)
        self.durability = self._durability()

    def _durability(self) -> str:
        """``appendfsync`` when the append-only file is on, else "none"; "unknown" when the
        server refuses CONFIG (managed services often do)."""
        try:
            config = self._db.config_get("append*")
        except redis.ResponseError:
            log.warning("cannot read the durability settings of %s (CONFIG refused)", self.url)
            return "unknown"
        mode = str(config.get("appendfsync", "")) if config.get("appendonly") == "yes" else "none"
        if mode != "always":
            log.warning(
                "the Redis store %s has appendonly=%s appendfsync=%s: acknowledged events "
                "can be lost if Redis stops; set appendonly yes and appendfsync always",
                self.url,
                config.get("appendonly"),
                config.get("appendfsync"),
            )
        return mode

    def bind(self, identity: str) -> None:
        found = self._call(lambda: self._bind(identity))
        if found != identity:
            raise RecLLMError(
                f"the event store {self.url} belongs to another catalogue ({found}), not "
                f"this bundle's ({identity}); pass another --store"
            )

    def _bind(self, identity: str) -> str:
        self._db.set(CATALOGUE, identity, nx=True)
        return _text(self._db.get(CATALOGUE))

    def append(self, user_id: str, item_id: str, rating: float | None, ts: float | None) -> Event:
        when = time.time() if ts is None else float(ts)
        body = json.dumps([item_id, rating, when])
        seq = self._call(lambda: self._append(keys=[SEQ, _events_key(user_id)], args=[body]))
        return Event(user_id, item_id, rating, when, int(seq))

    def events_of(self, user_id: str) -> list[Event]:
        rows = self._call(lambda: self._db.lrange(_events_key(user_id), 0, -1))
        events = []
        for row in rows:
            seq, body = _text(row).split(" ", 1)
            item_id, rating, when = json.loads(body)
            events.append(Event(user_id, item_id, rating, when, int(seq)))
        return events

    def put_items(self, items: list[StoredItem]) -> int:
        blobs = [pack_item(item) for item in items]
        return int(self._call(lambda: self._db.rpush(ITEMS, *blobs)))

    def items_since(self, version: int) -> list[StoredItem]:
        rows = self._call(lambda: self._db.lrange(ITEMS, version, -1))
        return [unpack_item(row, version + 1 + i) for i, row in enumerate(rows)]

    def items_version(self) -> int:
        return int(self._call(lambda: self._db.llen(ITEMS)))

    def close(self) -> None:
        self._db.close()

    def _call(self, command: Callable[[], T]) -> T:
        with _reachable(self.url):
            return command()


@contextmanager
def _reachable(url: str) -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailableError(f"the Redis store {url} is unreachable: {exc}") from exc


def pack_item(item: StoredItem) -> bytes:
    """One item as bytes: a 4-byte header length, a JSON header, then the arrays."""
    tokens = np.ascontiguousarray(item.tokens, dtype="<f4")  # (M, H)
    header = json.dumps(
        {"item_id": item.item_id, "fields": item.fields, "shape": list(tokens.shape)},
        default=str,
    ).encode()
    return b"".join(
        [
            struct.pack("<I", len(header)),
            header,
            np.ascontiguousarray(item.pooled, dtype="<f4").tobytes(),  # (H,)
            tokens.tobytes(),
            np.ascontiguousarray(item.token_mask, dtype=np.uint8).tobytes(),  # (M,)
        ]
    )


def unpack_item(blob: bytes | str, version: int) -> StoredItem:
    """The inverse of :func:`pack_item`."""
    assert isinstance(blob, bytes), "the client must not decode responses"
    (size,) = struct.unpack_from("<I", blob)
    header: dict[str, Any] = json.loads(blob[4 : 4 + size])
    m, h = header["shape"]
    offset = 4 + size
    pooled = np.frombuffer(blob, dtype="<f4", count=h, offset=offset).copy()
    offset += 4 * h
    tokens = np.frombuffer(blob, dtype="<f4", count=m * h, offset=offset).reshape(m, h).copy()
    offset += 4 * m * h
    mask = np.frombuffer(blob, dtype=np.uint8, count=m, offset=offset).astype(bool)
    return StoredItem(header["item_id"], header["fields"], pooled, tokens, mask, version)


def _events_key(user_id: str) -> str:
    return f"{PREFIX}events:{user_id}"


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
