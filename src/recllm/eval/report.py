"""Plain-text tables of metrics for terminals and Markdown files."""

from __future__ import annotations

from collections.abc import Mapping


def metrics_table(rows: Mapping[str, Mapping[str, float]], keys: list[str] | None = None) -> str:
    """A Markdown table: one row per model, one column per metric (4 decimals)."""
    if not rows:
        return "(no results)"
    keys = keys or sorted(
        {k for r in rows.values() for k in r},
        key=lambda k: (k.split("@")[0], int(k.split("@")[1]) if "@" in k else 0),
    )
    width = max(len(name) for name in rows)
    header = f"| {'model'.ljust(width)} | " + " | ".join(k.rjust(9) for k in keys) + " |"
    rule = f"|{'-' * (width + 2)}|" + "|".join("-" * 10 + ":" for _ in keys) + "|"
    lines = [header, rule]
    for name, metrics in rows.items():
        cells = " | ".join(f"{metrics[k]:9.4f}" if k in metrics else " " * 9 for k in keys)
        lines.append(f"| {name.ljust(width)} | {cells} |")
    return "\n".join(lines)
