"""Check the figures that prose quotes against the results files it names.

The convention, for the README and every page under ``docs/``:

* A paragraph or list item that quotes a measured figure names its source in a code span:
  a results file (`` `results/ml-100k/sasrec-ce.json` ``) or a folder of them
  (`` `results/ml-100k/ablations/` ``, every JSON file below it).
* Every decimal figure in that paragraph (``0.201``, ``12.3x``, ``94.1 %``) must be a number
  of one of the named files written at the same precision: ``0.201`` matches 0.20103...,
  and ``94.1 %`` matches 0.9409. Code spans and code blocks are not read.
* A list inherits the files named by the paragraph that introduces it (ending in ``:``).
  Paths with placeholders in capitals (``results/DATASET/MODEL.json``) are not sources.
* A figure written after ``~`` (``~0.01``) is derived or approximate and is not checked.
* A figure of the form ``0.ddd`` in a paragraph that names no results file is an error,
  unless the paragraph says it is not ours: it contains ``(paper)`` or ``(published)``.
* Tables are generated (``--8<-- "generated/NAME.md"`` in the docs, generated blocks in the
  README); a table row typed by hand with a decimal figure in it is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FIGURE = re.compile(r"(?<![\w.@/~])(\d+\.\d+)(\s?%)?(?![\w.]|\d)")
SOURCE = re.compile(r"`(results/[^`\s]*?(?:\.json|/))`")
METRIC_LIKE = re.compile(r"(?<![\w.@/~])0\.\d{3}(?![\w.]|\d)")
PLACEHOLDER = re.compile(r"/[A-Z][A-Z_]*(?:/|\.|-|$)|[*<]")  # results/DATASET/MODEL.json, globs
CODE_SPAN = re.compile(r"`[^`]*`")
NOT_OURS = ("(paper)", "(published)")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s")
GENERATED_BLOCK = re.compile(r"<!-- generated:[\w.-]+ -->.*?<!-- /generated -->", re.S)


@dataclass(frozen=True)
class Problem:
    """A quoted figure that its named files do not hold, or an unsourced one."""

    path: Path
    line: int
    figure: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.figure}: {self.reason}"


def blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Paragraphs and list items as ``(first line number, lines)``; code blocks and
    generated blocks are left out, table rows come one per block."""
    text = GENERATED_BLOCK.sub(lambda m: "\n" * m[0].count("\n"), text)
    current: list[str] = []
    start, fenced = 0, False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            line = ""
        if fenced:
            line = ""
        breaks = not line.strip() or LIST_ITEM.match(line) or line.lstrip().startswith("|")
        if breaks and current:
            yield start, current
            current = []
        if line.lstrip().startswith("|"):
            yield number, [line]
        elif line.strip():
            if not current:
                start = number
            current.append(line)
    if current:
        yield start, current


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


@cache
def _file_numbers(path: Path) -> tuple[float, ...]:
    return tuple(_numbers(json.loads(path.read_text())))


def source_numbers(source: str, root: Path) -> tuple[float, ...] | None:
    """Every number in a named results file or folder; None when it does not exist."""
    path = root / source
    if path.is_file():
        return _file_numbers(path)
    if path.is_dir():
        return tuple(n for f in sorted(path.rglob("*.json")) for n in _file_numbers(f))
    return None


def matches(figure: str, percent: bool, numbers: tuple[float, ...]) -> bool:
    """Whether some number, written at ``figure``'s precision, is ``figure``."""
    digits = len(figure.split(".")[1])
    scale = 100.0 if percent else 1.0
    return any(f"{abs(n) * scale:.{digits}f}" == figure for n in numbers)


def check_text(text: str, path: Path, root: Path) -> list[Problem]:
    """Problems in one Markdown text (see the module docstring for the convention)."""
    problems = []
    lead_in: list[str] = []  # sources of a paragraph ending in ":" pass to its list
    for start, lines in blocks(text):
        block = "\n".join(lines)
        if block.lstrip().startswith("|"):
            if FIGURE.search(CODE_SPAN.sub("", block)):
                problems.append(Problem(path, start, block.strip()[:40], "table typed by hand"))
            continue
        own = [s for s in SOURCE.findall(block) if not PLACEHOLDER.search(s)]
        if LIST_ITEM.match(lines[0]):
            sources = own + lead_in
        else:
            sources = own
            lead_in = own if block.rstrip().endswith(":") else []
        prose = CODE_SPAN.sub("", block)
        if not sources:
            if not any(mark in block for mark in NOT_OURS):
                problems += [
                    Problem(path, start, m[0], "no results file named in its paragraph")
                    for m in METRIC_LIKE.finditer(prose)
                ]
            continue
        numbers: list[float] = []
        for source in sources:
            found = source_numbers(source, root)
            if found is None:
                problems.append(Problem(path, start, source, "no such results file"))
            else:
                numbers += found
        for m in FIGURE.finditer(prose):
            if not matches(m[1], bool(m[2]), tuple(numbers)):
                problems.append(Problem(path, start, m[0].strip(), f"not in {', '.join(sources)}"))
    return problems


def check_files(paths: list[Path], root: Path) -> list[Problem]:
    """Problems in every file of ``paths`` (README and docs pages)."""
    return [p for path in paths for p in check_text(path.read_text(), path, root)]
