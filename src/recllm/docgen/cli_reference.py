"""The CLI reference page, read from the argparse parsers (never written by hand)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

WIDTH = 100  # help text wraps at this width whatever the terminal, so the page is stable


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` of every subcommand of ``parser``, in the order they were added."""
    found = []
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.items())
    return found


def _walk(
    parser: argparse.ArgumentParser, path: list[str]
) -> list[tuple[list[str], argparse.ArgumentParser, str]]:
    """Every command with its path and help line, depth first."""
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps.update({a.dest: a.help or "" for a in action._choices_actions})
    out = []
    for name, sub in _subcommands(parser):
        out.append(([*path, name], sub, helps.get(name, "")))
        out += _walk(sub, [*path, name])
    return out


@contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse reads the help width from ``$COLUMNS``."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def render(parser: argparse.ArgumentParser) -> str:
    """Markdown: one section per command with its help line and ``--help`` text."""
    with _columns(WIDTH):
        return _render(parser)


def _render(parser: argparse.ArgumentParser) -> str:
    lines = [
        "# Command line reference",
        "",
        "Generated from the `recllm` argparse parsers by `recllm report` (and on every docs "
        "build), so it lists exactly the commands and options the installed version has.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    for path, sub, help_line in _walk(parser, [parser.prog]):
        lines += ["", f"## `{' '.join(path)}`", ""]
        if help_line:
            lines += [help_line[:1].upper() + help_line[1:] + ".", ""]
        lines += ["```text", sub.format_help().rstrip(), "```"]
    return "\n".join(lines) + "\n"
