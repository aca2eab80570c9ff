"""``recllm bench accuracy``: every model on one dataset, same split and evaluator.

Each trained model runs as its own ``recllm train`` process (so its peak memory and
command are its own) from a config in ``configs/``, and writes
``results/<dataset>/<model>.json``; popularity and the zero-shot LM need no training and
are evaluated in this process. A summary table is printed at the end.
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


# None: evaluated without training, in this process.
MODELS: dict[str, ModelSpec | None] = {
    "popularity": None,
    "zero-shot-lm": None,
    "bpr-mf": ModelSpec("baselines/cf-{dataset}.yaml", ("model=bpr-mf",)),
    "lightgcn": ModelSpec("baselines/cf-{dataset}.yaml", ("model=lightgcn",)),
    "sasrec-bce": ModelSpec("baselines/sasrec-{dataset}.yaml", ("trainer.loss=bce",)),
    "sasrec-ce": ModelSpec("baselines/sasrec-{dataset}.yaml", ("trainer.loss=ce",)),
    # The same backbone adapted generically: LoRA, items as a plain linear projection of
    # their text embedding (no ID embeddings, cross-attention or behaviour weights).
    "generic-lora": ModelSpec(
        "{dataset}.yaml",
        (
            "backbone.finetune=lora",
            "adapter.use_item_ids=false",
            "adapter.use_cross_attention=false",
            "adapter.use_behaviour_weights=false",
        ),
    ),
    "full-finetune": ModelSpec("{dataset}.yaml", ("backbone.finetune=full",)),
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
        *args.set,
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
        if MODELS[name] is None:
            results[name] = _untrained(name, args)
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


def _untrained(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Evaluate a model that needs no training (popularity, the zero-shot LM) on the
    split and item encodings that the dataset's RecLLM-Adapter config describes."""
    from recllm.config import apply_overrides, from_dict, load_yaml
    from recllm.eval.evaluator import Scorer, evaluate
    from recllm.models.popularity import Popularity
    from recllm.models.zero_shot import ZeroShotLM
    from recllm.provenance import peak_rss_mb, provenance, write_json
    from recllm.recipes.train import TrainConfig, build_pipeline

    started = provenance()
    # The same overrides as the trained models get, so the split is the same (e.g. with
    # --set data.split.protocol=cold_start); trainer settings simply go unused here.
    raw = apply_overrides(load_yaml(Path(args.configs) / f"{args.dataset}.yaml"), list(args.set))
    config = from_dict(TrainConfig, raw)
    data_dir = Path(args.data_dir) if args.data_dir else None
    pipeline = build_pipeline(
        config, progress=True, data_dir=data_dir, with_backbone=name == "zero-shot-lm"
    )
    data = pipeline.split
    scorer: Scorer
    if name == "popularity":
        scorer = Popularity(data.train["item"].to_numpy(), data.n_items)
    else:
        assert pipeline.encodings is not None
        scorer = ZeroShotLM(pipeline.encodings.pooled)
    test = evaluate(scorer, data, "test", progress=False)
    valid = evaluate(scorer, data, "valid", progress=False)
    record = {
        "model": name,
        "dataset": data.dataset.name,
        "protocol": {
            "split": data.summary(),
            "evaluation": "full catalogue, history items excluded, ties in expectation; no training",
        },
        "test": test.metrics,
        "valid": valid.metrics,
        "epochs_run": 0,
        "trainable_parameters": 0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **started,
    }
    write_json(Path(args.results_dir) / data.dataset.name / f"{name}.json", record)
    return test.metrics
