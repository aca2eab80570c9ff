"""MkDocs hook: regenerate docs/generated/ (results tables, CLI reference) before a build.

The pages include these files with ``--8<-- "generated/NAME.md"``, so every table shows
what ``results/**/*.json`` holds now and the CLI page lists the installed commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def on_pre_build(config: Any) -> None:
    from recllm.cli import build_parser
    from recllm.docgen import generate

    generate(ROOT / "results", ROOT / "docs" / "generated", build_parser())
