"""``recllm bench accuracy``: every model on one dataset, same split and evaluator.

Each trained model runs as its own ``recllm train`` process (so its peak memory and
command are its own) from a config in ``configs/``, and writes
``results/<dataset>/<model>.json``; popularity and the zero-shot LM need no training and
are evaluated in this process. A summary table is printed at the end.

With ``--lr-factors`` every trained model gets the same search budget: one run per factor
with the learning rate of its config scaled by it; the run with the best validation
NDCG@10 is the model's result (its test figures were never looked at to choose it), and
the record lists every trial. With ``--extend-edges N`` a best rate at an end of the grid
is searched past that end, up to N more runs, by the same rule for every model. With
``--seeds`` the search runs on the first seed and the
chosen learning rate is rerun on the others; the record's ``test`` is then the mean over
the seeds, ``test_sd`` their sample standard deviation, and ``seeds`` each seed's figures.
Each seed trains in a folder of its own (``lr-RATE``, ``lr-RATE-seed-N`` for seeds other
than 0), so the seeds of one model can run in separate processes (``--seeds 1`` in one,
``--seeds 2`` in another, then ``--seeds 0 1 2`` to collect them).
Finished trials whose saved config matches are reused, and a trial cut off mid-run
continues from its last checkpoint, so an interrupted search resumes. Each trial's record
is also kept under ``results/<dataset>/trials/<model>/``, beside the results it produced,
so a search can be finished on another machine (or after its run folders are gone) from
the committed files.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recllm.errors import ConfigError, RecLLMError

if TYPE_CHECKING:
    from recllm.data.splits import Split
    from recllm.recipes.train import Pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """How to train one model: a config file (``{dataset}`` filled in) and overrides."""

    config: str
    overrides: tuple[str, ...] = ()


GENERIC_HEAD = (
    "adapter.use_item_ids=false",
    "adapter.use_cross_attention=false",
    "adapter.use_behaviour_weights=false",
    "adapter.use_user_vector=false",
    # nor the parts a shipped config adds to the item embedding: with no IDs there are none
    # to drop, and item age groups are ours, not the generic adaptation's
    "adapter.item_id_dropout=0",
    "adapter.item_age_buckets=0",
)

# None: evaluated without training, in this process.
MODELS: dict[str, ModelSpec | None] = {
    "popularity": None,
    "zero-shot-lm": None,
    "bpr-mf": ModelSpec("baselines/cf-{dataset}.yaml", ("model=bpr-mf",)),
    "lightgcn": ModelSpec("baselines/cf-{dataset}.yaml", ("model=lightgcn",)),
    "sasrec-bce": ModelSpec("baselines/sasrec-{dataset}.yaml", ("trainer.loss=bce",)),
    "sasrec-ce": ModelSpec("baselines/sasrec-{dataset}.yaml", ("trainer.loss=ce",)),
    # the control for recllm-adapter-item-age: the same item age groups on the ID-only model
    "sasrec-ce-item-age": ModelSpec(
        "baselines/sasrec-{dataset}.yaml", ("trainer.loss=ce", "sasrec.item_age_buckets=20")
    ),
    # The same backbone adapted generically: items as a plain linear projection of their
    # text embedding (no ID embeddings, cross-attention, behaviour weights or user vector),
    # the backbone tuned with LoRA or in full. The rows measure what the recommendation
    # adapter adds over generic adaptation of the same language model.
    "generic-lora": ModelSpec("{dataset}.yaml", ("backbone.finetune=lora", *GENERIC_HEAD)),
    # Unfrozen in full at the head's rate (1e-3 on ML-100K), MiniLM does not train: in 38
    # epochs at commit bf3accf the loss stayed near its start and test R@10 was 0.063. The
    # backbone gets its own rate, a usual one for BERT-sized fine-tuning; a search scales both.
    "full-finetune": ModelSpec(
        "{dataset}.yaml", ("backbone.finetune=full", "trainer.backbone_lr=1e-4", *GENERIC_HEAD)
    ),
    "recllm-adapter": ModelSpec("{dataset}.yaml"),
    # Ablations: the shipped config less one part (run them at its searched rate, with
    # --set trainer.lr=...). Without metadata, cross-attention has no tokens to attend to
    # and a dropped ID nothing to fall back on, so that ablation turns both off too.
    "ablation-no-cross-attention": ModelSpec(
        "{dataset}.yaml", ("adapter.use_cross_attention=false",)
    ),
    "ablation-no-behaviour-weights": ModelSpec(
        "{dataset}.yaml", ("adapter.use_behaviour_weights=false",)
    ),
    "ablation-no-metadata": ModelSpec(
        "{dataset}.yaml",
        (
            "adapter.use_metadata=false",
            "adapter.use_cross_attention=false",
            "adapter.item_id_dropout=0",
        ),
    ),
    "ablation-no-user-vector": ModelSpec("{dataset}.yaml", ("adapter.use_user_vector=false",)),
    "ablation-no-id-dropout": ModelSpec("{dataset}.yaml", ("adapter.item_id_dropout=0",)),
    "ablation-no-item-age": ModelSpec("{dataset}.yaml", ("adapter.item_age_buckets=0",)),
    # Ideas not (yet) in the shipped config: it plus one change, to measure against it.
    "recllm-adapter-missing-id": ModelSpec("{dataset}.yaml", ("adapter.missing_id=learned",)),
    "recllm-adapter-text-init": ModelSpec("{dataset}.yaml", ("adapter.item_id_init=text",)),
    # (item age groups would shift the frozen text dimensions, so null space goes without)
    "recllm-adapter-null-space": ModelSpec(
        "{dataset}.yaml", ("adapter.item_fusion=null_space", "adapter.item_age_buckets=0")
    ),
    "recllm-adapter-text-alignment": ModelSpec("{dataset}.yaml", ("adapter.text_alignment=0.1",)),
    # more of the IDs dropped, so more of each item rests on its text (aims at the tail)
    "recllm-adapter-id-dropout-0.75": ModelSpec(
        "{dataset}.yaml", ("adapter.item_id_dropout=0.75",)
    ),
    "recllm-adapter-id-dropout-0.9": ModelSpec("{dataset}.yaml", ("adapter.item_id_dropout=0.9",)),
    # a learned vector per item age group (20: 5 % of the items each), for the new
    # products the test targets lean to
    "recllm-adapter-item-age": ModelSpec("{dataset}.yaml", ("adapter.item_age_buckets=20",)),
    # the newest age group (5 %) keeps its IDs in training: without ID dropout the newest
    # items gained and the older ones lost (results/ablations/amazon-beauty/). The groups
    # and the dropout are Beauty's shipped values, which a config without them takes too.
    "recllm-adapter-spare-newest-ids": ModelSpec(
        "{dataset}.yaml",
        (
            "adapter.item_age_buckets=20",
            "adapter.item_id_dropout=0.5",
            "adapter.id_dropout_spares_newest=1",
        ),
    ),
    "recllm-adapter-lora": ModelSpec("{dataset}.yaml", ("backbone.finetune=lora",)),
    "recllm-adapter-full-backbone": ModelSpec(
        "{dataset}.yaml", ("backbone.finetune=full", "trainer.backbone_lr=1e-4")
    ),
}


def config_path(name: str, spec: ModelSpec, dataset: str, args: argparse.Namespace) -> Path:
    config = Path(args.configs) / spec.config.format(dataset=dataset)
    if not config.is_file():
        raise ConfigError(f"no config for {name} on {dataset}: {config} does not exist")
    return config


def train_command(
    name: str,
    spec: ModelSpec,
    dataset: str,
    args: argparse.Namespace,
    trial: tuple[str, ...] = (),
    output_dir: Path | None = None,
) -> list[str]:
    """The ``recllm train`` command line of one model (plus a search ``trial``'s overrides).

    Without ``output_dir`` it writes ``results/<dataset>/<name>.json`` itself; a search
    trial writes only its run folder, and the search picks the record to keep."""
    command = [
        sys.executable,
        "-m",
        "recllm",
        "train",
        str(config_path(name, spec, dataset, args)),
        *spec.overrides,
        *args.set,
        *trial,
        f"output_dir={output_dir or Path(args.runs_dir) / dataset / name}",
        "--overwrite",
    ]
    if output_dir is None:
        command += ["--results-dir", str(args.results_dir), "--name", name]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    return command


def _train(name: str, command: list[str], output_dir: Path) -> dict[str, Any]:
    """Run one ``recllm train`` process; return the record it left in ``output_dir``."""
    log.info("%s: %s", name, " ".join(command))
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise RecLLMError(f"{name} failed (exit {done.returncode}): {' '.join(command)}")
    record: dict[str, Any] = json.loads((output_dir / "results.json").read_text())
    return record


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Train/evaluate ``args.models`` on ``args.dataset``; return test metrics per model."""
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    factors = list(getattr(args, "lr_factors", None) or [])
    if any(f <= 0 for f in factors):
        raise ConfigError(f"--lr-factors must be positive, got {factors}")
    seeds = list(getattr(args, "seeds", None) or [])
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds must be distinct and >= 0, got {seeds}")
    if seeds and not factors:
        factors = [1.0]  # the config's learning rate, as a one-point search
    if getattr(args, "extend_edges", 0) < 0:
        raise ConfigError(f"--extend-edges must be >= 0, got {args.extend_edges}")
    # every config is checked before the first hour of training
    for name in args.models:
        if (spec := MODELS[name]) is not None:
            _trials(name, spec, args, factors or [1.0])
    results: dict[str, dict[str, float]] = {}
    for name in args.models:
        spec = MODELS[name]
        if spec is None:
            results[name] = _untrained(name, args)
        elif not factors:
            output_dir = Path(args.runs_dir) / args.dataset / name
            results[name] = _train(name, train_command(name, spec, args.dataset, args), output_dir)[
                "test"
            ]
        else:
            results[name] = _search(name, factors, args, seeds)
    return results


@dataclass(frozen=True)
class Trial:
    """One point of a search: its overrides, run folder, command and resolved config, and
    where its finished record is kept among the results."""

    overrides: tuple[str, ...]
    output_dir: Path
    command: list[str]
    config: dict[str, Any]
    record_copy: Path
    rate: str  # the learning rate as its folder names it


def _resolved_config(config: Path, overrides: list[str]) -> dict[str, Any]:
    from recllm.config import apply_overrides, from_dict, load_yaml
    from recllm.recipes.train import TrainConfig

    return asdict(from_dict(TrainConfig, apply_overrides(load_yaml(config), overrides)))


def _trials(
    name: str,
    spec: ModelSpec,
    args: argparse.Namespace,
    factors: list[float],
    seed: int | None = None,
) -> list[Trial]:
    """The search's runs for one model: its config's learning rate (and the backbone's,
    when it has its own) times each factor; with ``seed``, all on that seed."""
    config = config_path(name, spec, args.dataset, args)
    trainer = _resolved_config(config, [*spec.overrides, *args.set])["trainer"]
    lr, backbone_lr = trainer["lr"], trainer["backbone_lr"]
    trials = []
    for factor in factors:
        overrides: tuple[str, ...] = (f"trainer.lr={lr * factor:.6g}",)
        if backbone_lr is not None:  # the two rates move together, their ratio fixed
            overrides += (f"trainer.backbone_lr={backbone_lr * factor:.6g}",)
        if seed is not None:
            overrides += (f"trainer.seed={seed}",)
        trials.append(_trial(name, spec, args, overrides, f"{lr * factor:.6g}"))
    return trials


def _beyond_edge(factors: list[float], best: float) -> float | None:
    """The next factor past the end of ``factors`` (sorted) where ``best`` lies, one step
    of the grid's own ratio at that end; None when ``best`` is inside the grid."""
    if len(factors) < 2 or factors[0] < best < factors[-1]:
        return None
    if best == factors[0]:
        return factors[0] * factors[0] / factors[1]
    return factors[-1] * factors[-1] / factors[-2]


def _trial(
    name: str, spec: ModelSpec, args: argparse.Namespace, overrides: tuple[str, ...], rate: str
) -> Trial:
    """One run of ``name`` with ``overrides`` (learning rate ``rate``), in
    ``<runs>/<dataset>/<name>/<folder>`` (:func:`trial_folder`)."""
    config = config_path(name, spec, args.dataset, args)
    resolved = _resolved_config(config, [*spec.overrides, *args.set, *overrides])
    folder = trial_folder(rate, resolved["trainer"]["seed"])
    output_dir = Path(args.runs_dir) / args.dataset / name / folder
    resolved["output_dir"] = str(output_dir)
    command = train_command(name, spec, args.dataset, args, overrides, output_dir)
    record_copy = Path(args.results_dir) / args.dataset / "trials" / name / f"{folder}.json"
    return Trial(overrides, output_dir, command, resolved, record_copy, rate)


def trial_folder(rate: str, seed: int) -> str:
    """A trial's folder (and record) name: ``lr-RATE``, with ``-seed-N`` unless the seed
    is 0. Each seed has its own, so a run on one seed never replaces another seed's."""
    return f"lr-{rate}" + (f"-seed-{seed}" if seed else "")


def _reseeded(trial: Trial, seed: int, name: str, args: argparse.Namespace) -> Trial:
    """``trial`` rerun on another seed."""
    spec = MODELS[name]
    assert spec is not None, f"{name} is not a trained model"
    overrides = tuple(o for o in trial.overrides if not o.startswith("trainer.seed="))
    return _trial(name, spec, args, (*overrides, f"trainer.seed={seed}"), trial.rate)


# Settings that change how a run is executed, not what it learns, and values a run fills in
# from its data and backbone (which the other settings already pin down).
NOT_TRAINING_KEYS = {
    ("output_dir",),
    ("data", "data_dir"),
    ("trainer", "num_threads"),
    ("trainer", "progress"),
    ("sasrec", "n_items"),
    *(
        ("adapter", key)
        for key in (
            "n_items",
            "meta_dim",
            "n_meta_tokens",
            "backbone_hidden",
            "backbone",
            "catalogue",
        )
    ),
}


def _same_training(a: Any, b: Any, path: tuple[str, ...] = ()) -> bool:
    """Whether two resolved configs train the same model (execution settings aside)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = {k for k in set(a) | set(b) if (*path, k) not in NOT_TRAINING_KEYS}
        return all(_same_training(a.get(k), b.get(k), (*path, k)) for k in keys)
    return bool(a == b)


def _trains_as(trial: Trial, saved: dict[str, Any]) -> bool:
    """Whether a run's saved config trains exactly what ``trial`` would."""
    from recllm.config import from_dict
    from recllm.recipes.train import TrainConfig

    try:  # sections added to the config since the run are filled with their defaults
        return _same_training(asdict(from_dict(TrainConfig, saved)), trial.config)
    except ConfigError:
        return False


def _finished(trial: Trial, reuse_from: list[Path]) -> dict[str, Any] | None:
    """The record of an earlier run of exactly this trial, if it finished: from its run
    folder, or else from the copy kept among the results, or else from any trial record
    kept under the folders of ``reuse_from`` (a model run under another name, e.g. an idea
    since adopted by the shipped config, is the same run when its config trains the same)."""
    own = (trial.output_dir / "results.json", trial.record_copy)
    kept = (p for folder in reuse_from for p in sorted(Path(folder).glob("*/trials/*/*.json")))
    for path in itertools.chain(own, kept):
        if path.is_file():
            record: dict[str, Any] = json.loads(path.read_text())
            if _trains_as(trial, record.get("config", {})):
                if path not in own:
                    log.info("reusing the run of the same config kept at %s", path)
                return record
    return None


def _interrupted(trial: Trial) -> bool:
    """Whether ``trial``'s folder holds an unfinished run of exactly this trial with a
    checkpoint (a long search cut off by the end of a session picks up where it was)."""
    from recllm.recipes.run_folder import CHECKPOINTS

    saved = trial.output_dir / "config.json"
    if not saved.is_file() or not any((trial.output_dir / CHECKPOINTS).glob("epoch-*")):
        return False
    try:
        return _trains_as(trial, json.loads(saved.read_text()))
    except json.JSONDecodeError:
        return False


def _record(name: str, trial: Trial, args: argparse.Namespace) -> dict[str, Any]:
    """The finished record of ``trial``: reused when it already ran, else trained now."""
    from recllm.provenance import write_json

    record = _finished(trial, list(getattr(args, "reuse_from", None) or []))
    if record is None:
        command = trial.command
        if _interrupted(trial):  # continue from its last checkpoint, not from scratch
            command = [("--resume" if a == "--overwrite" else a) for a in command]
        record = _train(name, command, trial.output_dir)
    else:
        log.info("%s: reusing the finished run of %s", name, " ".join(trial.overrides))
    write_json(trial.record_copy, record)
    return record


def _searched_rates(
    name: str, factors: list[float], args: argparse.Namespace, seed: int | None, extend: int
) -> tuple[dict[float, Trial], dict[float, dict[str, Any]]]:
    """The trial and finished record of every factor of the grid, and of up to ``extend``
    more past the end where the best lies, one step at a time: an edge best says nothing
    of the rates beyond it."""
    spec = MODELS[name]
    assert spec is not None, f"{name} is not a trained model"
    factors = sorted(factors)
    trials = dict(zip(factors, _trials(name, spec, args, factors, seed), strict=True))
    records = {f: _record(name, trial, args) for f, trial in trials.items()}
    for _ in range(extend):
        beyond = _beyond_edge(sorted(records), _best(records))
        if beyond is None:
            break
        log.info("%s: the best rate is at an end of the grid; trying x%.6g", name, beyond)
        (trials[beyond],) = _trials(name, spec, args, [beyond], seed)
        records[beyond] = _record(name, trials[beyond], args)
    return trials, records


def _best(records: dict[float, dict[str, Any]]) -> float:
    """The factor of the best validation NDCG@10 (the lowest of equals)."""
    return max(sorted(records), key=lambda f: records[f]["valid_best"]["ndcg@10"])


def _search(
    name: str, factors: list[float], args: argparse.Namespace, seeds: list[int] | None = None
) -> dict[str, float]:
    """Run (or reuse) the trial of every factor; keep the one with the best validation
    NDCG@10, and rerun it on the other ``seeds`` when there are several."""
    from recllm.provenance import provenance, write_json

    started = provenance()
    extend = getattr(args, "extend_edges", 0)
    trials, records = _searched_rates(name, factors, args, seeds[0] if seeds else None, extend)
    chosen_factor = _best(records)
    if _beyond_edge(sorted(records), chosen_factor) is not None:
        log.warning(
            "%s: the best learning rate (x%.6g) is at an end of the rates tried; the best may "
            "lie beyond it (--extend-edges searches further)",
            name,
            chosen_factor,
        )
    chosen = dict(records[chosen_factor])
    if seeds and len(seeds) > 1:
        first = trials[chosen_factor]
        repeats = [_record(name, _reseeded(first, s, name, args), args) for s in seeds[1:]]
        chosen.update(seed_summary(seeds, [records[chosen_factor], *repeats]))
    chosen["search"] = {
        "rule": "trainer.lr (and backbone_lr) of the config times each factor; "
        "best validation NDCG@10"
        + (
            f"; a best at an end of the grid searched past it, up to {extend} steps"
            if extend
            else ""
        )
        + ("; on the first seed, then rerun on the others" if seeds and len(seeds) > 1 else ""),
        "command": started["command"],
        "git_commit": started["git_commit"],
        "chosen": " ".join(trials[chosen_factor].overrides),
        "trials": [
            {
                "overrides": " ".join(trials[f].overrides),
                "valid_ndcg@10": records[f]["valid_best"]["ndcg@10"],
                "best_epoch": records[f]["valid_best"]["epoch"],
                "epochs_run": records[f]["epochs_run"],
                "train_seconds": records[f]["train_seconds"],
                "git_commit": records[f]["git_commit"],
            }
            for f in sorted(records)
        ],
    }
    write_json(Path(args.results_dir) / chosen["dataset"] / f"{name}.json", chosen)
    return dict(chosen["test"])


def mean_sd(figures: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """The mean and the sample standard deviation of each figure the seeds' dicts share."""
    import numpy as np

    metrics = sorted(set.intersection(*(set(f) for f in figures)))
    values = {m: np.array([f[m] for f in figures], dtype=float) for m in metrics}
    return (  # counts (a group's users) are the same on every seed and stay counts
        {m: int(v[0]) if m.startswith("n_") else float(v.mean()) for m, v in values.items()},
        {m: float(v.std(ddof=1)) for m, v in values.items()},
    )


def seed_summary(seeds: list[int], records: list[dict[str, Any]]) -> dict[str, Any]:
    """``test`` as the mean over the seeds' runs, ``test_sd`` the sample standard
    deviation, and each seed's test and best validation figures under ``seeds``."""
    test, test_sd = mean_sd([r["test"] for r in records])
    summary: dict[str, Any] = {"test": test, "test_sd": test_sd}
    groups = sorted(set.intersection(*(set(r.get("test_groups", {})) for r in records)))
    if groups:  # e.g. a cold-start split's cold and warm targets, averaged alike
        pairs = {g: mean_sd([r["test_groups"][g] for r in records]) for g in groups}
        summary["test_groups"] = {g: mean for g, (mean, _) in pairs.items()}
        summary["test_groups_sd"] = {g: sd for g, (_, sd) in pairs.items()}
    return {
        **summary,
        "seeds": [
            {
                "seed": seed,
                "test": r["test"],
                "valid_best": r["valid_best"],
                "epochs_run": r["epochs_run"],
                "git_commit": r["git_commit"],
            }
            for seed, r in zip(seeds, records, strict=True)
        ],
    }


def dataset_pipeline(args: argparse.Namespace, with_backbone: bool) -> Pipeline:
    """Data (and item encodings if asked) as the dataset's RecLLM-Adapter config builds
    them, with the same ``--set`` overrides as the trained models get, so the split is the
    same (e.g. with ``data.split.protocol=cold_start``); trainer settings go unused."""
    from recllm.config import apply_overrides, from_dict, load_yaml
    from recllm.recipes.train import TrainConfig, build_pipeline

    raw = apply_overrides(load_yaml(Path(args.configs) / f"{args.dataset}.yaml"), list(args.set))
    config = from_dict(TrainConfig, raw)
    data_dir = Path(args.data_dir) if args.data_dir else None
    return build_pipeline(config, progress=True, data_dir=data_dir, with_backbone=with_backbone)


def dataset_split(dataset: str, args: argparse.Namespace) -> Split:
    """The split of ``dataset`` that ``bench accuracy`` evaluates on."""
    return dataset_pipeline(argparse.Namespace(**{**vars(args), "dataset": dataset}), False).split


def _untrained(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Evaluate a model that needs no training (popularity, the zero-shot LM) on the
    split and item encodings that the dataset's RecLLM-Adapter config describes."""
    from recllm.eval.evaluator import Scorer, evaluate
    from recllm.models.popularity import Popularity
    from recllm.models.zero_shot import ZeroShotLM
    from recllm.provenance import peak_rss_mb, provenance, write_json

    started = provenance()
    pipeline = dataset_pipeline(args, with_backbone=name == "zero-shot-lm")
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
        **({"test_groups": test.groups} if test.groups else {}),
        "valid": valid.metrics,
        "epochs_run": 0,
        "trainable_parameters": 0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **started,
    }
    write_json(Path(args.results_dir) / data.dataset.name / f"{name}.json", record)
    return test.metrics
