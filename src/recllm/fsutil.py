"""File-system helpers shared by caches and checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recllm.errors import RecLLMError


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` that replaces it only on success.

    A crash mid-write leaves the previous ``target`` (or nothing), never a half-written
    folder that a later run would take for a complete cache entry or checkpoint.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def damaged_file_errors(where: Path) -> Iterator[None]:
    """Turn what reading a truncated, corrupt or unreadable saved file raises (safetensors,
    JSON, text decoding, the OS) into one :class:`RecLLMError` line naming ``where``."""
    from safetensors import SafetensorError

    try:
        yield
    except RecLLMError:
        raise
    except json.JSONDecodeError as exc:
        raise RecLLMError(f"{where}: a JSON file is damaged ({exc})") from exc
    except (SafetensorError, UnicodeDecodeError) as exc:
        raise RecLLMError(f"{where}: a saved file is damaged or truncated ({exc})") from exc
    except OSError as exc:
        raise RecLLMError(
            f"{where}: cannot read {exc.filename or 'a file'} ({exc.strerror})"
        ) from exc
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        # well-formed files whose content is not what was saved (missing or extra tensors)
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise RecLLMError(f"{where}: the saved files do not match ({first[:300]})") from exc


@contextmanager
def write_errors(what: str, hint: str = "") -> Iterator[None]:
    """Turn a failed write (a full disk, no permission) into one :class:`RecLLMError` line
    saying what could not be written, why, and ``hint``."""
    try:
        yield
    except OSError as exc:
        raise RecLLMError(f"could not write {what}: {exc.strerror or exc}{hint}") from exc
