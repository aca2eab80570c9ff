"""Parquet cache of parsed datasets, keyed by the content hashes of their source files.

Hashing a 500 MB file on every load would cost more than parsing small ones, so each
file's SHA-256 is memoised against its path, size, mtime and inode: a file that
changes on disk gets a new hash and therefore a new cache entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recllm.data.schema import Dataset
from recllm.fsutil import atomic_folder

log = logging.getLogger(__name__)

# Bump whenever a loader's output changes, so that stale parses are not served.
CACHE_FORMAT_VERSION = 2
# LZ4 reads about 3x faster than the default Snappy on text-heavy tables (review text)
# at a similar size; the cache exists to be read fast.
PARQUET_CODEC = "lz4"
_MEMO_NAME = "file-hashes.json"
# A file modified this recently may change again within the same mtime tick (file
# systems stamp times with a coarse clock), so its hash is not memoised yet.
_RACY_SECONDS = 2.0


def file_sha256(path: Path, memo_dir: Path | None = None) -> str:
    """SHA-256 of a file's bytes, memoised by (path, size, mtime, inode) in ``memo_dir``."""
    stat = path.stat()
    signature = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    memo_path = memo_dir / _MEMO_NAME if memo_dir else None
    memo: dict[str, dict] = {}
    if memo_path and memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, json.JSONDecodeError):
            memo = {}
    key = str(path.resolve())
    entry = memo.get(key)
    if entry and entry.get("signature") == signature:
        return str(entry["sha256"])
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if memo_path and time.time() - stat.st_mtime > _RACY_SECONDS:
        memo[key] = {"signature": signature, "sha256": digest}
        try:
            _atomic_write_text(memo_path, json.dumps(memo, indent=0))
        except OSError as exc:
            log.warning("cannot write the file-hash memo %s (%s)", memo_path, exc)
    return digest


def cache_key(
    format_name: str, files: Sequence[Path], memo_dir: Path | None, extra: str = ""
) -> str:
    """Key of a parsed dataset: parser, its version and the hashes of its inputs."""
    parts = {
        "format": format_name,
        "version": CACHE_FORMAT_VERSION,
        "extra": extra,
        "files": sorted((p.name, file_sha256(p, memo_dir)) for p in files),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def load_cached(
    loader: Callable[[], Dataset],
    format_name: str,
    files: Sequence[Path],
    cache_root: Path,
    extra: str = "",
) -> Dataset:
    """Return the dataset from the cache, or parse it with ``loader`` and cache it."""
    cache_root.mkdir(parents=True, exist_ok=True)
    key = cache_key(format_name, files, cache_root, extra)
    entry = cache_root / "datasets" / key
    if (entry / "meta.json").is_file():
        try:
            return read_dataset(entry)
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            log.warning("cache entry %s is unreadable (%s); parsing the source again", entry, exc)
    dataset = loader()
    try:
        write_dataset(dataset, entry)
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
        # A full disk or read-only cache must not stop the load itself.
        log.warning("cannot write the cache entry %s (%s); continuing without it", entry, exc)
    return dataset


def write_dataset(dataset: Dataset, target: Path) -> None:
    """Write a dataset as Parquet + JSON; the folder appears only once complete."""
    with atomic_folder(target) as tmp:
        dataset.interactions.to_parquet(
            tmp / "interactions.parquet", index=False, compression=PARQUET_CODEC
        )
        dataset.items.to_parquet(tmp / "items.parquet", index=False, compression=PARQUET_CODEC)
        pd.DataFrame({"user_id": dataset.user_ids}).to_parquet(
            tmp / "users.parquet", index=False, compression=PARQUET_CODEC
        )
        meta = {
            "name": dataset.name,
            "rating_scale": dataset.rating_scale,
            "text_template": dataset.text_template,
            "info": dataset.info,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))


def read_dataset(folder: Path) -> Dataset:
    """Read a dataset written by :func:`write_dataset`."""
    meta = json.loads((folder / "meta.json").read_text())
    scale = meta.get("rating_scale")
    return Dataset(
        name=meta["name"],
        interactions=pd.read_parquet(folder / "interactions.parquet"),
        user_ids=np.asarray(pd.read_parquet(folder / "users.parquet")["user_id"].astype(str)),
        items=pd.read_parquet(folder / "items.parquet"),
        rating_scale=tuple(scale) if scale else None,
        text_template=meta["text_template"],
        info=meta.get("info", {}),
    )


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
