"""Generated documentation: results tables, the CLI reference, the README's tables.

``recllm report`` and the MkDocs hook (``docs/hooks.py``) call :func:`generate`, so the
docs never hold a table or an option list typed by hand. :mod:`recllm.docgen.figures`
checks the figures that prose quotes against the results files it names.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from recllm.docgen.cli_reference import render as render_cli
from recllm.docgen.tables import all_tables

__all__ = ["README_BLOCK", "generate", "readme_with_tables", "refresh_docs", "render_cli"]

# A README block that `recllm report` fills: <!-- generated:NAME --> ... <!-- /generated -->
README_BLOCK = re.compile(
    r"(<!-- generated:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S
)


def generate(results: Path, out: Path, parser: argparse.ArgumentParser | None = None) -> list[Path]:
    """Write every table as ``out/<name>.md`` (and ``out/cli.md`` from ``parser``); files
    whose content is unchanged are not rewritten. Returns the files written or kept."""
    pages = dict(all_tables(Path(results)))
    if parser is not None:
        pages["cli"] = render_cli(parser)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in sorted(pages.items()):
        path = out / f"{name}.md"
        if not path.is_file() or path.read_text() != body:
            path.write_text(body)
        written.append(path)
    return written


def readme_with_tables(readme: str, results: Path) -> str:
    """``readme`` with each generated block refilled from the results; an unknown block
    name is an error naming the tables there are."""
    tables = all_tables(Path(results))

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in tables:
            raise KeyError(f"README block {name!r}: no such table (have {sorted(tables)})")
        return match[1] + tables[name] + match[4]

    return README_BLOCK.sub(fill, readme)


def refresh_docs(results: Path, parser: argparse.ArgumentParser | None = None) -> list[Path]:
    """What ``recllm report`` regenerates when ``results`` is a repository's results
    folder (a ``mkdocs.yml`` beside it): ``docs/generated/`` and the README's tables.
    Any other results folder (e.g. ``results/cold-start``) gets nothing; returns []."""
    root = Path(results).resolve().parent
    if not (root / "mkdocs.yml").is_file():
        return []
    written = generate(results, root / "docs" / "generated", parser)
    readme = root / "README.md"
    if readme.is_file():
        text = readme.read_text()
        refilled = readme_with_tables(text, results)
        if refilled != text:
            readme.write_text(refilled)
        written.append(readme)
    return written
