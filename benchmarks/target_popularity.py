"""Accuracy by how often the target item was trained on: the long tail against the head.

    python benchmarks/target_popularity.py --data-dir ../shared/data RUN [RUN ...]

Each RUN is a finished ``recllm train`` folder; its best weights are evaluated on the
validation and test splits (full catalogue, as in training), with the targets grouped by
their item's interactions in the training split. All runs must share one dataset and
split. Writes ``results/<dataset>/target-popularity.json`` (or ``--out``) with the command
and commit. A gap between two models that sits in one bucket says where to look; the share
of targets in each bucket says how much the valid and test splits differ there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from recllm.bench import provenance, write_json

# training interactions of the target item: [low, high)
BUCKETS = ((0, 5), (5, 10), (10, 20), (20, 50), (50, None))


def bucket_name(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high - 1}"


def item_buckets(train_items: np.ndarray, n_items: int) -> dict[str, np.ndarray]:
    """One boolean array over the catalogue per bucket of training interactions."""
    counts = np.bincount(train_items, minlength=n_items)
    return {
        bucket_name(low, high): (counts >= low) & (counts < (high or np.iinfo(np.int64).max))
        for low, high in BUCKETS
    }


def measure(run_dir: Path, data_dir: Path | None) -> tuple[str, dict[str, Any]]:
    """The dataset's name and the run's metrics per stage, overall and per bucket."""
    from recllm.eval.evaluator import evaluate
    from recllm.recipes.inference import load_run
    from recllm.recipes.models import make_scorer

    run = load_run(run_dir, data_dir=data_dir, progress=False)
    split = run.split
    buckets = item_buckets(split.train["item"].to_numpy(), split.n_items)
    scorer = make_scorer(run.model)
    figures: dict[str, Any] = {"model": run.config.model, "split": split.summary()}
    for stage in ("valid", "test"):
        result = evaluate(scorer, split, stage, progress=False, item_groups=buckets)
        figures[stage] = {"all": {**result.metrics, "n_users": result.n_users}, **result.groups}
    return split.dataset.name, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="finished `recllm train` folders")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the datasets are")
    parser.add_argument("--out", type=Path, default=None, help="results file to write")
    args = parser.parse_args(argv)
    measured = {str(run): measure(run, args.data_dir) for run in args.runs}
    datasets = {name for name, _ in measured.values()}
    splits = {repr(figures["split"]) for _, figures in measured.values()}
    if len(datasets) != 1 or len(splits) != 1:
        raise SystemExit(f"the runs must share one dataset and split, got {sorted(datasets)}")
    (dataset,) = datasets
    runs = {run: figures for run, (_, figures) in measured.items()}
    first = next(iter(runs.values()))  # the runs share a split: the same users per group
    for stage in ("valid", "test"):
        print(f"{stage}: NDCG@10 by the target's training interactions (users)")
        for group, counted in first[stage].items():
            cells = [f"{figures[stage][group]['ndcg@10']:.4f}" for figures in runs.values()]
            print(f"  {group:>6} ({counted['n_users']:>6}): " + "  ".join(cells))
    out = args.out or Path("results") / dataset / "target-popularity.json"
    command = " ".join(["python", "benchmarks/target_popularity.py", *sys.argv[1:]])
    buckets = [bucket_name(low, high) for low, high in BUCKETS]
    write_json(
        out,
        {
            "benchmark": "target_popularity",
            **provenance(),
            "command": command,
            "buckets": "training interactions of the target item: " + ", ".join(buckets),
            "runs": runs,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
