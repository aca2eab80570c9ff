"""Errors a user can cause, with messages that name the file, line and fix.

The CLI turns any :class:`RecLLMError` into one line on stderr and exit code 2, so
everything a user can get wrong (bad files, unknown names, bad configs) raises one of
these instead of a bare exception with a traceback.
"""

from __future__ import annotations

from pathlib import Path


class RecLLMError(Exception):
    """Base class of all user-facing errors."""


class ConfigError(RecLLMError, ValueError):
    """An invalid configuration value or combination of values."""

    @classmethod
    def collect(cls, component: str, problems: list[str]) -> None:
        """Raise one error listing every problem found in a config, if there are any."""
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            raise cls(f"invalid {component} configuration:\n{lines}")


class DataFormatError(RecLLMError, ValueError):
    """A data file that cannot be read as the format it claims to be."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class DatasetNotFoundError(RecLLMError, FileNotFoundError):
    """A dataset name or path that does not resolve to readable files."""
