"""Benchmarks behind ``recllm bench NAME``; each writes JSON under ``results/``.

Every results file records the exact command, the git commit, package versions and
the machine, so that any number quoted from it can be reproduced.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Any

from recllm.provenance import peak_rss_mb, provenance, write_json

__all__ = ["BENCHMARKS", "peak_rss_mb", "provenance", "run_benchmark", "write_json"]

BENCHMARKS = {
    "cache": "recllm.bench.cache",
    "batching": "recllm.bench.batching",
    "scale": "recllm.bench.scale",
    "memory-plan": "recllm.bench.memory_plan",
    "routing": "recllm.bench.routing",
    "constraints": "recllm.bench.constraints",
    "explain": "recllm.bench.explain",
    "distill": "recllm.bench.distill",
    "serve": "recllm.bench.serve",
    "privacy": "recllm.bench.privacy",
}


def run_benchmark(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import ``recllm.bench.<name>`` and call its ``run(args) -> dict``; write the JSON."""
    module = importlib.import_module(BENCHMARKS[name])
    origin = provenance()  # the commit the run starts from, not one made while it runs
    started = time.time()
    figures = module.run(args)
    result = {
        "benchmark": name,
        **origin,
        "wall_seconds": round(time.time() - started, 1),
        **figures,
    }
    # a module may name its file, with fields of its figures: "routing/constraints-{dataset}.json"
    out = Path(args.results_dir) / getattr(module, "RESULTS_FILE", f"data/{name}.json").format(
        **figures
    )
    write_json(out, result)
    print(f"wrote {out}")
    return result
