"""First load (parse the native files) vs second load (Parquet cache), per dataset.

The issue's target: the cached load is at least 10x faster than parsing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from recllm.data.registry import KNOWN, load_dataset, resolve
from recllm.errors import DatasetNotFoundError

DEFAULT_DATASETS = ["ml-100k", "ml-1m", "amazon-beauty", "amazon-musical-instruments"]
REPEATS = 3
TARGET_SPEEDUP = 10.0


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(source: str, data_dir: Path | None, repeats: int = REPEATS) -> dict[str, Any]:
    """Median first-load and cached-load seconds over ``repeats`` fresh cache folders."""
    first, second = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            first.append(_time(lambda: load_dataset(source, data_dir, Path(cache))))
            second.append(
                statistics.median(
                    _time(lambda: load_dataset(source, data_dir, Path(cache))) for _ in range(5)
                )
            )
    parse, cached = statistics.median(first), statistics.median(second)
    return {
        "first_load_s": round(parse, 4),
        "cached_load_s": round(cached, 4),
        "speedup": round(parse / cached, 1),
        "meets_10x": parse / cached >= TARGET_SPEEDUP,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    names = args.datasets or DEFAULT_DATASETS
    rows: dict[str, Any] = {}
    for name in names:
        try:
            resolve(name, args.data_dir)
        except DatasetNotFoundError as exc:
            rows[name] = {"skipped": str(exc)}
            continue
        rows[name] = measure(name, args.data_dir)
    print(f"{'dataset':<28} {'parse (s)':>10} {'cached (s)':>11} {'speedup':>8}")
    for name, row in rows.items():
        if "skipped" in row:
            print(f"{name:<28} skipped: not in the data directory")
            continue
        print(
            f"{name:<28} {row['first_load_s']:>10.3f} {row['cached_load_s']:>11.4f} {row['speedup']:>7.1f}x"
        )
    return {
        "what": "first load parses the native files and writes the Parquet cache; the cached load reads it "
        f"(medians of {REPEATS} fresh caches x 5 cached loads)",
        "target": f">= {TARGET_SPEEDUP:g}x",
        "datasets": rows,
        "known_datasets": list(KNOWN),
    }
