"""The quick-start job: load the default dataset, split it, fit and evaluate a baseline.

Until the LM adapter lands this runs the popularity baseline end to end; it exercises
every foundation stage (loader, cache, preprocessing, leave-one-out split, full-ranking
evaluation) and prints a metrics table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recllm.data.preprocess import PreprocessConfig, preprocess
from recllm.data.registry import load_dataset
from recllm.data.splits import SplitConfig, split
from recllm.eval.evaluator import EvalConfig, evaluate
from recllm.eval.report import metrics_table
from recllm.models.popularity import Popularity

log = logging.getLogger(__name__)


@dataclass
class QuickstartConfig:
    """Inputs of the quick-start job (defaults: ML-100K, 5-core, leave-one-out)."""

    dataset: str = "ml-100k"
    data_dir: Path | None = None
    cache_dir: Path | None = None
    output: Path | None = None
    progress: bool = True
    download: bool = False


def run_quickstart(config: QuickstartConfig) -> dict[str, Any]:
    """Run the job and return (and optionally write) its results.

    With ``download=True`` a known dataset missing from the data directory is fetched
    from its official source first; otherwise nothing is downloaded.
    """
    if config.download:
        _ensure_downloaded(config)
    dataset = preprocess(
        load_dataset(config.dataset, config.data_dir, config.cache_dir), PreprocessConfig()
    )
    data_split = split(dataset, SplitConfig())
    model = Popularity(data_split.train["item"].to_numpy(), data_split.n_items)
    results: dict[str, Any] = {
        "dataset": dataset.name,
        "model": "popularity",
        "split": data_split.summary(),
        "protocol": "leave-one-out, full-catalogue ranking, history items excluded, ties in expectation",
    }
    for stage in ("valid", "test"):
        result = evaluate(model, data_split, stage, EvalConfig(), progress=config.progress)
        results[stage] = result.to_dict()
    print(
        f"\n{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, "
        f"{dataset.n_interactions} interactions (5-core, leave-one-out)"
    )
    print(metrics_table({f"popularity ({s})": results[s]["metrics"] for s in ("valid", "test")}))
    if config.output:
        config.output.parent.mkdir(parents=True, exist_ok=True)
        config.output.write_text(json.dumps(results, indent=2))
        log.info("wrote %s", config.output)
    return results


def _ensure_downloaded(config: QuickstartConfig) -> None:
    from recllm import paths
    from recllm.data.download import download
    from recllm.data.registry import KNOWN, resolve
    from recllm.errors import DatasetNotFoundError

    try:
        resolve(config.dataset, config.data_dir)
    except DatasetNotFoundError:
        if config.dataset not in KNOWN:
            raise
        download(config.dataset, paths.data_dir(config.data_dir), progress=config.progress)
