"""The Parquet cache: hits skip parsing, equal the parse, follow source changes, heal."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recllm.data import cache, registry
from recllm.data.schema import Dataset

RATINGS = "1::10::5::978300760\n1::20::3::978300761\n2::10::4::978300762\n"
MOVIES = "10::Heat (1995)::Action|Crime\n20::Usual Suspects, The (1995)::Crime\n"


def write_ml1m(data_dir: Path, ratings: str = RATINGS) -> Path:
    """A tiny ml-1m folder in the native ``::`` layout."""
    root = data_dir / "ml-1m"
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.dat").write_text(ratings)
    (root / "movies.dat").write_text(MOVIES)
    return root


def entries(cache_dir: Path) -> list[Path]:
    """Complete cache entries (folders with a meta.json)."""
    return sorted(p.parent for p in (cache_dir / "datasets").glob("*/meta.json"))


def assert_same(a: Dataset, b: Dataset) -> None:
    """Everything a later stage reads is identical, dtypes included."""
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    assert (a.name, a.rating_scale, a.text_template) == (b.name, b.rating_scale, b.text_template)
    assert a.info == b.info


class Spy:
    """Counts calls of the registry's parse step, which a cache hit must not reach."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original: Callable[..., Dataset] = registry._load_named

        def counted(*args: object) -> Dataset:
            self.calls += 1
            return original(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(registry, "_load_named", counted)


def test_second_load_reads_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader runs once; the second load comes from the cache and equals the first."""
    root = write_ml1m(tmp_path / "data")
    spy = Spy(monkeypatch)
    first = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    assert spy.calls == 1
    assert len(entries(tmp_path / "cache")) == 1

    reads: list[Path] = []
    original_read = cache.read_dataset
    monkeypatch.setattr(cache, "read_dataset", lambda f: reads.append(f) or original_read(f))
    second = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    assert spy.calls == 1, "a cache hit must not parse the source files"
    assert reads == entries(tmp_path / "cache")
    assert_same(first, second)


@pytest.mark.parametrize("name", ["ml-100k", "amazon-beauty", "amazon-musical-instruments"])
def test_shared_round_trip(
    name: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real datasets (NA timestamps, NaN ratings, review text) survive the cache."""
    first = registry.load_dataset(name, data_dir=shared_data, cache_dir=tmp_path)
    spy = Spy(monkeypatch)
    second = registry.load_dataset(name, data_dir=shared_data, cache_dir=tmp_path)
    assert spy.calls == 0
    assert_same(first, second)


def test_changed_source_gives_new_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing a source file invalidates the cache, even within one mtime tick."""
    root = write_ml1m(tmp_path / "data")
    spy = Spy(monkeypatch)
    first = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    ratings = root / "ratings.dat"
    before = ratings.stat()

    # Same size, same mtime: only the content differs (a coarse file-system clock).
    ratings.write_text(RATINGS.replace("::3::", "::1::"))
    os.utime(ratings, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ratings.stat().st_size == before.st_size
    second = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    assert spy.calls == 2
    assert first.interactions["rating"].tolist() == [5, 3, 4]
    assert second.interactions["rating"].tolist() == [5, 1, 4]

    ratings.write_text(RATINGS + "3::20::2::978300763\n")
    third = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    assert spy.calls == 3
    assert third.n_interactions == 4
    assert len(entries(tmp_path / "cache")) == 3


def test_unchanged_old_file_uses_hash_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file last modified long ago is hashed once, then recognised by its stat."""
    path = tmp_path / "old.txt"
    path.write_text("abc")
    old = time.time() - 3600
    os.utime(path, (old, old))
    digest = cache.file_sha256(path, tmp_path)
    assert (tmp_path / "file-hashes.json").is_file()

    def no_hashing(*args: object, **kwargs: object) -> None:
        raise AssertionError("hashed again although the memo matches")

    monkeypatch.setattr(cache.hashlib, "file_digest", no_hashing)
    assert cache.file_sha256(path, tmp_path) == digest
    monkeypatch.undo()
    path.write_text("xyz")  # same size; the new mtime changes the signature
    assert cache.file_sha256(path, tmp_path) != digest


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda e: (e / "interactions.parquet").write_bytes(b"garbage"), id="parquet"),
        pytest.param(lambda e: (e / "meta.json").write_text("{not json"), id="meta"),
        pytest.param(lambda e: (e / "items.parquet").unlink(), id="missing-file"),
    ],
)
def test_corrupt_entry_falls_back_to_parsing(
    damage: Callable[[Path], object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unreadable entry is reported, the source parsed again and the entry rewritten."""
    root = write_ml1m(tmp_path / "data")
    first = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    (entry,) = entries(tmp_path / "cache")
    damage(entry)

    spy = Spy(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="recllm"):
        second = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    assert spy.calls == 1
    assert "is unreadable" in caplog.text and "parsing the source again" in caplog.text
    assert_same(first, second)

    third = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    assert spy.calls == 1, "the rewritten entry serves the next load"
    assert_same(first, third)


def test_unwritable_cache_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache that cannot be written (full disk) warns and returns the parsed data."""
    root = write_ml1m(tmp_path / "data")

    def fail(dataset: Dataset, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "write_dataset", fail)
    with caplog.at_level(logging.WARNING, logger="recllm"):
        ds = registry.load_dataset(root, cache_dir=tmp_path / "cache")
    assert ds.n_interactions == 3
    assert "cannot write the cache entry" in caplog.text


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    """``use_cache=False`` parses and leaves the cache folder alone."""
    root = write_ml1m(tmp_path / "data")
    registry.load_dataset(root, cache_dir=tmp_path / "cache", use_cache=False)
    assert not (tmp_path / "cache").exists()


def test_column_mapping_is_part_of_the_key(tmp_path: Path) -> None:
    """The same CSV read with two mappings gives two entries, not a stale one."""
    from recllm.data.loaders.tabular import ColumnMap

    path = tmp_path / "log.csv"
    path.write_text("a,b\nu1,i1\nu2,i1\n")
    forward = registry.load_dataset(
        path, cache_dir=tmp_path / "cache", columns=ColumnMap(user_id="a", item_id="b")
    )
    swapped = registry.load_dataset(
        path, cache_dir=tmp_path / "cache", columns=ColumnMap(user_id="b", item_id="a")
    )
    assert (forward.n_users, forward.n_items) == (2, 1)
    assert (swapped.n_users, swapped.n_items) == (1, 2)
    assert len(entries(tmp_path / "cache")) == 2


@pytest.mark.slow
def test_ml1m_cache_is_faster(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reading 1M interactions from Parquet beats parsing the gzip CSV."""
    start = time.perf_counter()
    first = registry.load_dataset("ml-1m", data_dir=shared_data, cache_dir=tmp_path)
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    second = registry.load_dataset("ml-1m", data_dir=shared_data, cache_dir=tmp_path)
    cached_s = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nml-1m: parse {parse_s:.3f} s, cached {cached_s:.3f} s")
    assert_same(first, second)
    assert cached_s < parse_s
