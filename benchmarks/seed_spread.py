"""Spread over seeds of the runs in a results folder: mean, sd and range of test metrics.

Runs named ``<group>-s<seed>.json`` (as written by ``recllm train --name <group>-s<seed>``)
are grouped by ``<group>``, so one figure per setting says how much of a gap between two
settings is seed noise.

    python benchmarks/seed_spread.py results/ml-100k/ablations/seeds

Prints a table and writes ``seed-spread.json`` beside the runs.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from recllm.bench import provenance, write_json

METRICS = ("recall@10", "ndcg@10")
RUN_NAME = re.compile(r"^(?P<group>.+)-s(?P<seed>\d+)$")


def spread(folder: Path) -> dict[str, dict[str, Any]]:
    """Per group: the seeds and, per metric, mean, sd (n - 1), min and max."""
    runs: dict[str, list[tuple[int, dict[str, float]]]] = defaultdict(list)
    for path in sorted(folder.glob("*.json")):
        match = RUN_NAME.match(path.stem)
        if match is None:
            continue
        record = json.loads(path.read_text())
        if "test" not in record:
            raise SystemExit(f"{path}: no 'test' section; is it a training result?")
        runs[match["group"]].append((int(match["seed"]), record["test"]))
    if not runs:
        raise SystemExit(f"{folder}: no files named <group>-s<seed>.json")
    summary: dict[str, dict[str, Any]] = {}
    for group, members in runs.items():
        entry: dict[str, Any] = {"seeds": sorted(seed for seed, _ in members)}
        for metric in METRICS:
            values = [test[metric] for _, test in members]
            entry[metric] = {
                "mean": statistics.mean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
            }
        summary[group] = entry
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of <group>-s<seed>.json results")
    args = parser.parse_args(argv)
    summary = spread(args.folder)
    print(f"{'group':<12} {'seeds':>5}  " + "  ".join(f"{m:>26}" for m in METRICS))
    for group, entry in summary.items():
        cells = [
            f"{s['mean']:.3f} ± {s['sd']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"
            for s in (entry[m] for m in METRICS)
        ]
        print(f"{group:<12} {len(entry['seeds']):>5}  " + "  ".join(f"{c:>26}" for c in cells))
    out = args.folder / "seed-spread.json"
    command = " ".join(["python", "benchmarks/seed_spread.py", *sys.argv[1:]])
    write_json(
        out, {"benchmark": "seed_spread", **provenance(), "command": command, "groups": summary}
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
