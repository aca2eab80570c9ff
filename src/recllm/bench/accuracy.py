"""``recllm bench accuracy``: every model on one dataset, same split and evaluator.

Each trained model runs as its own ``recllm train`` process (so its peak memory and
command are its own) from a config in ``configs/``, and writes
``results/<dataset>/<model>.json``; popularity is evaluated in this process. A summary
table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from recllm.errors import ConfigError, RecLLMError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """How to train one model: a config file (``{dataset}`` filled in) and overrides."""

    config: str
    overrides: tuple[str, ...] = ()


MODELS: dict[str, ModelSpec | None] = {
    "popularity": None,
    "bpr-mf": ModelSpec("baselines/cf-{dataset}.yaml", ("model=bpr-mf",)),
    "lightgcn": ModelSpec("baselines/cf-{dataset}.yaml", ("model=lightgcn",)),
    "sasrec-bce": ModelSpec("baselines/sasrec-{dataset}.yaml", ("trainer.loss=bce",)),
    "sasrec-ce": ModelSpec("baselines/sasrec-{dataset}.yaml", ("trainer.loss=ce",)),
    "recllm-adapter": ModelSpec("{dataset}.yaml"),
}


def train_command(name: str, spec: ModelSpec, dataset: str, args: argparse.Namespace) -> list[str]:
    """The ``recllm train`` command line that produces ``results/<dataset>/<name>.json``."""
    config = Path(args.configs) / spec.config.format(dataset=dataset)
    if not config.is_file():
        raise ConfigError(f"no config for {name} on {dataset}: {config} does not exist")
    command = [
        sys.executable,
        "-m",
        "recllm",
        "train",
        str(config),
        *spec.overrides,
        f"output_dir={Path(args.runs_dir) / dataset / name}",
        "--results-dir",
        str(args.results_dir),
        "--name",
        name,
        "--overwrite",
    ]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    return command


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Train/evaluate ``args.models`` on ``args.dataset``; return test metrics per model."""
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    commands = {
        name: train_command(name, spec, args.dataset, args)
        for name in args.models
        if (spec := MODELS[name]) is not None
    }  # all configs checked before the first hour of training
    results: dict[str, dict[str, float]] = {}
    for name in args.models:
        if name == "popularity":
            results[name] = _popularity(args)
            continue
        log.info("%s: %s", name, " ".join(commands[name]))
        done = subprocess.run(commands[name], check=False)
        if done.returncode != 0:
            raise RecLLMError(f"{name} failed (exit {done.returncode}): {' '.join(commands[name])}")
        # `recllm train` also leaves the record in its output_dir.
        record = json.loads(
            (Path(args.runs_dir) / args.dataset / name / "results.json").read_text()
        )
        results[name] = record["test"]
    return results


def _popularity(args: argparse.Namespace) -> dict[str, float]:
    """Most-popular items, on the split the dataset's RecLLM-Adapter config describes."""
    from recllm.config import from_dict, load_yaml
    from recllm.data.preprocess import preprocess
    from recllm.data.registry import load_dataset
    from recllm.data.splits import split
    from recllm.eval.evaluator import evaluate
    from recllm.models.popularity import Popularity
    from recllm.provenance import peak_rss_mb, provenance, write_json
    from recllm.recipes.train import TrainConfig

    config = from_dict(TrainConfig, load_yaml(Path(args.configs) / f"{args.dataset}.yaml"))
    dataset = preprocess(
        load_dataset(config.data.dataset, Path(args.data_dir) if args.data_dir else None),
        config.data.preprocess,
    )
    data = split(dataset, config.data.split)
    model = Popularity(data.train["item"].to_numpy(), data.n_items)
    test = evaluate(model, data, "test", progress=False)
    valid = evaluate(model, data, "valid", progress=False)
    record = {
        "model": "popularity",
        "dataset": dataset.name,
        "protocol": {"split": data.summary(), "evaluation": "full catalogue, history excluded"},
        "test": test.metrics,
        "valid_best": {"ndcg@10": valid.metrics["ndcg@10"], "epoch": 0},
        "epochs_run": 0,
        "parameters": 0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **provenance(),
    }
    write_json(Path(args.results_dir) / dataset.name / "popularity.json", record)
    return test.metrics
