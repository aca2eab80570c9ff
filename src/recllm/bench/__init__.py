"""Benchmarks behind ``recllm bench NAME``; each writes JSON under ``results/``.

Every results file records the exact command, the git commit, package versions and
the machine, so that any number quoted from it can be reproduced.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS = {
    "cache": "recllm.bench.cache",
    "batching": "recllm.bench.batching",
    "scale": "recllm.bench.scale",
}


def run_benchmark(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import ``recllm.bench.<name>`` and call its ``run(args) -> dict``; write the JSON."""
    module = importlib.import_module(BENCHMARKS[name])
    started = time.time()
    figures = module.run(args)
    result = {
        "benchmark": name,
        **provenance(),
        "wall_seconds": round(time.time() - started, 1),
        **figures,
    }
    out = Path(args.results_dir) / "data" / f"{name}.json"
    write_json(out, result)
    print(f"wrote {out}")
    return result


def provenance() -> dict[str, Any]:
    """Command, commit, versions and machine, for every results file."""
    import numpy
    import pandas
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {
        "command": " ".join(["recllm", *sys.argv[1:]]),
        "git_commit": commit + ("-dirty" if dirty else ""),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux: ru_maxrss is in KB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
