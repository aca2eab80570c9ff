"""Progress bars on a terminal, nothing per batch in a log.

Every loop that shows progress goes through :func:`progress_bar`. On a terminal it is a
normal tqdm bar. When the bar's stream is not a terminal (CI, ``nohup``, a log file) it
is disabled, because tqdm would write a carriage-return line per update there; the loops
log one line per epoch or evaluation instead, with the figures that matter.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: ``sys.stderr``, where bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(
    iterable: Iterable[T] | None = None, *, enabled: bool = True, **kwargs: Any
) -> tqdm:
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``), shown only when
    ``enabled`` and its stream (``file=``, default ``sys.stderr``) is a terminal.

    A disabled bar still iterates, and ``update`` / ``set_postfix`` / ``close`` are no-ops,
    so callers use it the same way in both cases.
    """
    stream = kwargs.get("file")
    return tqdm(iterable, disable=not (enabled and is_terminal(stream)), **kwargs)


def quiet_library_bars(stream: IO[str] | None = None) -> None:
    """Turn off the bars of Hugging Face libraries (loading weights, writing shards) when
    ``stream`` (default ``sys.stderr``) is not a terminal, as :func:`progress_bar` does."""
    if is_terminal(stream):
        return
    import huggingface_hub.utils
    import transformers.utils.logging

    transformers.utils.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()
