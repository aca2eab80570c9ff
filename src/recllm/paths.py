"""Where data and caches live: environment variables first, then per-user defaults.

Nothing here is an absolute path of any particular machine: the data directory comes
from ``--data-dir`` / ``RECLLM_DATA_DIR``, the cache from ``RECLLM_CACHE_DIR``, and
both fall back to ``~/.cache/recllm``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "RECLLM_DATA_DIR"
CACHE_DIR_ENV = "RECLLM_CACHE_DIR"


def default_cache_root() -> Path:
    """The per-user cache root, honouring ``XDG_CACHE_HOME``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "recllm"


def data_dir(explicit: str | Path | None = None) -> Path:
    """Directory holding raw datasets, one sub-folder per dataset name."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else default_cache_root() / "data"


def cache_dir(explicit: str | Path | None = None) -> Path:
    """Directory for derived files (parsed Parquet, encodings); safe to delete."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else default_cache_root() / "cache"
