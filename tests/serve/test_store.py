"""The EventStore contract, run against each store (SQLite file, real Redis): ordered
events with unique numbers, items with their encodings byte for byte, versions that let a
second handle (another worker or replica) catch up, the catalogue binding, and
durability across a restart."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import RedisServer

from recllm.errors import RecLLMError
from recllm.serve.store import (
    EventStore,
    SQLiteStore,
    StoredItem,
    StoreUnavailableError,
    open_store,
)


@pytest.fixture(params=["sqlite", "redis"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ``--store`` value naming an empty store of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "events.sqlite")
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture()
def store(spec: str) -> Iterator[EventStore]:
    opened = open_store(spec)
    yield opened
    opened.close()


def item(item_id: str, seed: int, m: int = 3, h: int = 5) -> StoredItem:
    rng = np.random.default_rng(seed)
    return StoredItem(
        item_id,
        {"item_id": item_id, "title": f"Title {item_id}", "year": 1999, "genres": ["A", "B"]},
        rng.standard_normal(h).astype(np.float32),
        rng.standard_normal((m, h)).astype(np.float32),
        np.array([True] * (m - 1) + [False]),
    )


def same_item(got: StoredItem, want: StoredItem) -> None:
    assert (got.item_id, got.fields) == (want.item_id, want.fields)
    np.testing.assert_array_equal(got.pooled, want.pooled)
    np.testing.assert_array_equal(got.tokens, want.tokens)
    np.testing.assert_array_equal(got.token_mask, want.token_mask)
    assert got.tokens.dtype == np.float32 and got.token_mask.dtype == bool


def test_events_come_back_in_order_with_unique_numbers(store: EventStore) -> None:
    first = store.append("u1", "i1", 4.0, 100.0)
    store.append("u2", "i9", None, None)
    second = store.append("u1", "i2", None, 50.0)
    events = store.events_of("u1")
    assert [(e.item_id, e.rating, e.ts) for e in events] == [("i1", 4.0, 100.0), ("i2", None, 50.0)]
    assert [e.seq for e in events] == [first.seq, second.seq] and 1 <= first.seq < second.seq
    assert store.events_of("u2")[0].ts > 1e9  # now, when not given
    assert store.events_of("nobody") == []


def test_items_round_trip_with_versions(store: EventStore) -> None:
    assert store.items_version() == 0 and store.items_since(0) == []
    batch = [item("a", 0), item("b", 1)]
    version = store.put_items(batch)
    assert version == store.items_version() >= 2
    for got, want in zip(store.items_since(0), batch, strict=True):
        same_item(got, want)
    update = item("a", 2)
    newer = store.put_items([update])
    assert newer > version
    (since,) = store.items_since(version)
    same_item(since, update)
    assert since.version == newer


def test_a_second_handle_sees_every_write(spec: str, store: EventStore) -> None:
    """What another worker or replica relies on: the store, not the process, holds state."""
    other = open_store(spec)
    try:
        store.append("u", "i", 5.0, 1.0)
        store.put_items([item("x", 3)])
        assert [e.item_id for e in other.events_of("u")] == ["i"]
        assert other.items_version() == store.items_version()
        same_item(other.items_since(0)[0], item("x", 3))
        other.append("u", "j", None, 2.0)
        assert [e.item_id for e in store.events_of("u")] == ["i", "j"]
    finally:
        other.close()


def test_a_store_belongs_to_one_catalogue(spec: str, store: EventStore) -> None:
    store.bind("catalogue-1")
    store.bind("catalogue-1")
    other = open_store(spec)
    try:
        with pytest.raises(RecLLMError, match="belongs to another catalogue"):
            other.bind("catalogue-2")
    finally:
        other.close()


def test_writes_survive_closing_and_reopening(spec: str, store: EventStore) -> None:
    store.append("u", "i", None, 1.0)
    store.put_items([item("y", 4)])
    store.close()
    again = open_store(spec)
    try:
        assert [e.item_id for e in again.events_of("u")] == ["i"]
        same_item(again.items_since(0)[0], item("y", 4))
    finally:
        again.close()


def test_open_store_picks_the_store_from_the_value(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "a.sqlite"), SQLiteStore)
    with pytest.raises(RecLLMError, match=r"unknown store 'mongodb://x'.*redis://HOST:PORT/DB"):
        open_store("mongodb://x")


def test_an_unreachable_redis_is_one_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    from recllm.serve.process import free_port

    with pytest.raises(RecLLMError, match="cannot reach the Redis store"):
        open_store(f"redis://127.0.0.1:{free_port()}/0")


def test_redis_durability_and_outage(redis_server: RedisServer, tmp_path: Path) -> None:
    """Acknowledged events survive ``kill -9`` of Redis: they are in its append-only file
    before it replies (``appendfsync always`` also fsyncs it, against a power loss, which
    no test here can cause). While Redis is down the store raises StoreUnavailableError
    (the service's 503), and it recovers when Redis is back."""
    own = RedisServer(tmp_path).start()
    try:
        store = open_store(own.url)
        assert getattr(store, "durability", None) == "always"
        for i in range(30):
            store.append("u", f"i{i}", None, float(i))
        own.stop(signal.SIGKILL)
        with pytest.raises(StoreUnavailableError, match="unreachable"):
            store.append("u", "lost", None, 99.0)
        own.start()
        assert [e.item_id for e in store.events_of("u")] == [f"i{i}" for i in range(30)]
        store.close()
    finally:
        own.stop()


def test_redis_warns_when_acknowledged_writes_can_be_lost(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    admin = redis.Redis.from_url(redis_url)
    admin.config_set("appendfsync", "everysec")
    try:
        with caplog.at_level(logging.WARNING):
            store = open_store(redis_url)
        assert getattr(store, "durability", None) == "everysec"
        assert "acknowledged events can be lost" in caplog.text
        store.close()
    finally:
        admin.config_set("appendfsync", "always")


def test_serve_refuses_an_unknown_store_in_one_line(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from recllm.cli import main

    assert main(["serve", str(bundle), "--store", "mongodb://db:27017"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown store 'mongodb://db:27017'" in err[0]
