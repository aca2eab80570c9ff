"""Every results table of the docs and the README, built from ``results/**/*.json``.

Each function reads its files and returns ``{name: markdown}``; :func:`all_tables`
collects them. Nothing here holds a figure: labels are words, numbers come from files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from recllm.bench.accuracy import mean_sd, seed_summary
from recllm.docgen.bench_tables import data_benchmarks, routing, serving
from recllm.docgen.markdown import (
    DATASET_LABELS,
    Column,
    Record,
    get,
    read_record,
    source_line,
    table,
    text,
)
from recllm.docgen.privacy_tables import privacy
from recllm.docgen.scale_tables import scale_tables
from recllm.errors import RecLLMError
from recllm.report import PUBLISHED_ANCHORS


def _mean_sd_cell(metric: str, section: str = "test") -> Callable[[Record], Any]:
    """A metric of ``section`` (test, or valid_best); "mean ± sd" when the record
    averages several seeds."""

    def cell(record: Record) -> Any:
        value, sd = get(record, f"{section}/{metric}"), get(record, f"{section}_sd/{metric}")
        if value is None or sd is None:
            return value
        return f"{value:.3f} ± {sd:.3f}"

    return cell


METRIC_COLUMNS = [
    Column("R@10", _mean_sd_cell("recall@10")),
    Column("N@10", _mean_sd_cell("ndcg@10")),
    Column("R@20", _mean_sd_cell("recall@20")),
    Column("N@20", _mean_sd_cell("ndcg@20")),
]
# Words for the results files' names; a file without one is shown by its name.
MODEL_LABELS = {
    "popularity": "Popularity",
    "zero-shot-lm": "Zero-shot LM (MiniLM, no training)",
    "bpr-mf": "BPR-MF",
    "lightgcn": "LightGCN",
    "sasrec-bce": "SASRec (BCE, original)",
    "sasrec-ce": "SASRec-CE",
    "generic-lora": "Generic LoRA head (same backbone)",
    "full-finetune": "Full fine-tuning, generic head",
    "recllm-adapter-frozen": "RecLLM-Adapter, frozen backbone, no user vector",
    "recllm-adapter": "**RecLLM-Adapter**",
    "recllm-adapter-id-dropout": "RecLLM-Adapter, `adapter.item_id_dropout=0.5`",
    "recllm-adapter-plain": "L_rec",
    "recllm-adapter-joint": "L_rec + 0.3 L_gen",
}
OURS = "recllm-adapter"
# An ID-only control for a part of ours that uses no language model (its results under
# results/ideas/): shown beside ours once our shipped config has the part.
CONTROLS = {
    "sasrec-ce-item-age": (
        ("adapter", "item_age_buckets"),
        "SASRec-CE with the same item age groups (ID-only control)",
    ),
}


def _label(path: Path) -> str:
    return f"{MODEL_LABELS.get(path.stem, path.stem)} (`{path.stem}`)"


def _model_files(folder: Path) -> list[Path]:
    """Model records (with a ``test`` section) directly in ``folder``, by test NDCG@10."""
    records = [(p, read_record(p)) for p in sorted(folder.glob("*.json"))]
    models = [(p, r) for p, r in records if "test" in r]
    return [p for p, _ in sorted(models, key=lambda pr: get(pr[1], "test/ndcg@10") or 0.0)]


def _lr(record: Record) -> str | None:
    """The learning rate a trained model ran at, marked when a search chose it."""
    if not record.get("epochs_run"):
        return None
    lr = get(record, "config/trainer/lr")
    backbone = get(record, "config/trainer/backbone_lr")
    value = f"{lr:g}" + (f" (backbone {backbone:g})" if backbone else "")
    return value + (", searched" if "search" in record else "")


def _best_epoch(record: Record) -> str | None:
    best, allowed = get(record, "valid_best/epoch"), get(record, "config/trainer/epochs")
    if not record.get("epochs_run") or best is None:
        return None
    return f"{best} of {allowed}"


TRAINING_COLUMNS = [
    text("lr", _lr),
    Column("best epoch", _best_epoch, fmt=""),
    Column("epochs run", "epochs_run", fmt="d"),
    Column("s/epoch", "seconds_per_epoch", fmt=".1f"),
]


def accuracy(results: Path) -> dict[str, str]:
    """One table per dataset folder holding model records (leave-one-out benchmark), and
    one per dataset of ablations run like models (``results/ablations/<dataset>/``:
    ``accuracy-ablations-<dataset>``)."""
    out = {}
    folders = [p for p in results.iterdir() if p.is_dir()]
    folders += [p for p in (results / "ablations").glob("*") if p.is_dir()]
    for folder in sorted(folders):
        files = _model_files(folder)
        if not files or folder.name in ("cold-start", "recbole", "explain", "distill"):
            continue
        rows = [(_label(p), read_record(p)) for p in files]
        name = folder.relative_to(results).as_posix().replace("/", "-")
        out[f"accuracy-{name}"] = table(
            rows, [*METRIC_COLUMNS, *TRAINING_COLUMNS], "model (`results file`)"
        ) + source_line([folder], results.parent)
    return out


def _recbole_rows(results: Path, variant: str) -> list[tuple[str, Record, Path]]:
    rows = []
    for path in sorted((results / "recbole" / variant).glob("*.json")):
        record = read_record(path)
        if record.get("tool") == "RecBole" and "test" in record:
            tag = f", {record['tag']}" if record.get("tag") else ""
            rows.append((f"RecBole {record['model']}{tag} (`{path.stem}`)", record, path))
    return rows


def references(results: Path) -> dict[str, str]:
    """RecBole's runs (on our split and on RecBole's own filtering) and published figures."""
    out = {}
    columns = [
        *METRIC_COLUMNS,
        Column("best epoch", "valid_best/epoch", fmt="d"),
        Column("epochs run", "epochs_run", fmt="d"),
        text("stopped by", "stopped_by"),
    ]
    for variant in sorted(p.name for p in (results / "recbole").iterdir() if p.is_dir()):
        rows = _recbole_rows(results, variant)
        if rows:
            out[f"recbole-{variant}"] = table(
                [(label, record) for label, record, _ in rows], columns, "model (`file`)"
            ) + source_line([results / "recbole" / variant], results.parent)
    published = [
        (f"{a.name} on {DATASET_LABELS.get(d, d)}", {"r": a.recall_at_10, "n": a.ndcg_at_10})
        for d, anchors in PUBLISHED_ANCHORS.items()
        for a in anchors
    ]
    out["published"] = table(
        published, [Column("R@10", "r"), Column("N@10", "n")], "published figure"
    ) + ("\n<small>Generated by `recllm report` from `recllm.report.PUBLISHED_ANCHORS`.</small>\n")
    return out


def seeds(results: Path) -> dict[str, str]:
    """Mean ± sd over seeds, from ``benchmarks/seed_spread.py``'s summary files."""
    out = {}
    for path in sorted(results.glob("**/seed-spread.json")):
        record = read_record(path)
        rows = [(f"`{group}`", figures) for group, figures in record["groups"].items()]
        columns = [
            Column("seeds", lambda r: len(r["seeds"]), fmt="d"),
            *(
                Column(f"{name} mean ± sd", _mean_sd(metric), fmt="")
                for name, metric in (("R@10", "recall@10"), ("N@10", "ndcg@10"))
            ),
            *(
                Column(f"{name} range", _range(metric), fmt="")
                for name, metric in (("R@10", "recall@10"), ("N@10", "ndcg@10"))
            ),
        ]
        dataset = path.relative_to(results).parts[0]
        out[f"seeds-{dataset}"] = table(rows, columns, "setting") + source_line(
            [path], results.parent
        )
    return out


def _mean_sd(metric: str) -> Callable[[Record], str]:
    return lambda r: f"{r[metric]['mean']:.3f} ± {r[metric]['sd']:.3f}"


def _range(metric: str) -> Callable[[Record], str]:
    return lambda r: f"{r[metric]['min']:.3f}–{r[metric]['max']:.3f}"


def cold_start(results: Path) -> dict[str, str]:
    """All, cold-target and warm-target metrics per model on the cold-start split."""
    out = {}
    for folder in sorted(p for p in (results / "cold-start").iterdir() if p.is_dir()):
        files = _model_files(folder)
        records = [read_record(p) for p in files]
        columns = [Column("all R@10", "test/recall@10"), Column("all N@10", "test/ndcg@10")]
        for group in ("cold", "warm"):
            users = max((get(r, f"test_groups/{group}/n_users") or 0) for r in records)
            columns += [
                Column(f"{group} R@10 ({users:,} users)", f"test_groups/{group}/recall@10"),
                Column(f"{group} N@10", f"test_groups/{group}/ndcg@10"),
            ]
        columns.append(Column("best epoch", _best_epoch, fmt=""))
        rows = [(_label(p), r) for p, r in zip(files, records, strict=True)]
        out[f"cold-start-{folder.name}"] = table(rows, columns, "model (`file`)") + source_line(
            [folder], results.parent
        )
    return out


def ablations(results: Path) -> dict[str, str]:
    """Single-seed ablation runs (``results/<dataset>/ablations/*.json``)."""
    out = {}
    for folder in sorted(results.glob("*/ablations")):
        files = sorted(folder.glob("*.json"))
        rows = [(f"`{p.stem}`", read_record(p)) for p in files]
        rows = [(label, r) for label, r in rows if "test" in r]
        columns = [
            Column("valid N@10", "valid_best/ndcg@10"),
            *METRIC_COLUMNS,
            text("windows", lambda r: get(r, "config/trainer/windows") or "last"),
            Column("epochs run", "epochs_run", fmt="d"),
            text("commit", lambda r: str(r.get("git_commit", ""))[:7] + _dirty(r)),
        ]
        out[f"ablations-{folder.parent.name}"] = table(rows, columns, "variant") + source_line(
            [folder], results.parent
        )
    return out


def _dirty(record: Record) -> str:
    return "-dirty" if str(record.get("git_commit", "")).endswith("-dirty") else ""


def joint(results: Path) -> dict[str, str]:
    """Ranking with and without the generation loss."""
    out = {}
    for folder in sorted((results / "explain" / "joint").iterdir()):
        if folder.is_dir() and folder.name != "explain":
            files = sorted(folder.glob("*.json"))
            rows = [(_label(p), read_record(p)) for p in files]
            columns = [*METRIC_COLUMNS, Column("best epoch", "valid_best/epoch", fmt="d")]
            out[f"joint-{folder.name}"] = table(rows, columns, "training (`file`)") + (
                source_line([folder], results.parent)
            )
    return out


EXPLAIN_SYSTEMS = {
    "template": "template",
    "retrieval": "retrieval (nearest training sentence)",
    "ours": "generator, greedy",
    "ours_verified": "**generator, verified**",
}


def explanations(results: Path) -> dict[str, str]:
    """Explanation quality per system, one table per benchmark file."""
    out = {}
    for path in sorted((results / "explain").rglob("*.json")):
        record = read_record(path)
        if record.get("benchmark") != "explain":
            continue
        rows = [
            (label, record["systems"][key])
            for key, label in EXPLAIN_SYSTEMS.items()
            if key in record["systems"]
        ]
        has_fmr = any("fmr" in r for _, r in rows)
        columns = [
            Column("BLEU-4", "bleu4"),
            Column("ROUGE-L", "rouge_l"),
            Column("BERTScore", "bertscore_f1"),
            Column("distinct-1", "distinct_1"),
            Column("distinct-2", "distinct_2"),
            Column("unique sentences", "usr"),
            *([Column("FMR", "fmr")] if has_fmr else []),
            Column("faithfulness", "faithfulness"),
            Column("claims", "claims", fmt=",d"),
            Column("template fallbacks", "template_fallbacks", fmt=",d"),
        ]
        name = "-".join(path.relative_to(results / "explain").with_suffix("").parts)
        latency = record.get("latency_one_thread_batch_1", {})
        lat_rows = [(k.replace("_", " "), v) for k, v in latency.items()]
        lat = table(
            lat_rows,
            [Column("p50 ms", "p50_ms", fmt=".2f"), Column("p99 ms", "p99_ms", fmt=".2f")],
            "latency (one thread, batch 1)",
        )
        out[f"explain-{name}"] = (
            table(rows, columns, "system") + "\n" + lat + source_line([path], results.parent)
        )
    return out


DISTILL_ROWS = {
    "teacher": "teacher",
    "distilled": "**student, distilled**",
    "alone": "student alone",
    "distilled-int8": "student distilled, int8",
}


def distillation(results: Path) -> dict[str, str]:
    """Teacher against students (size, speed, memory, accuracy) and the paper's targets."""
    files = sorted((results / "distill").glob("*.json"))
    rows, targets = [], []
    for path in files:
        record = read_record(path)
        dataset = str(DATASET_LABELS.get(record["dataset"], record["dataset"]))
        rows += [
            (f"{dataset}: {label}", record["rows"][key])
            for key, label in DISTILL_ROWS.items()
            if key in record["rows"]
        ]
        targets.append((dataset, record))
    columns = [
        Column("parameters", "parameters", fmt=",d"),
        Column("model MB", lambda r: r["model_bytes"] / 2**20, fmt=".1f"),
        Column("p50 ms", "latency_p50_ms", fmt=".1f"),
        Column("p99 ms", "latency_p99_ms", fmt=".1f"),
        Column("req/s at batch 64", "throughput_per_s", fmt=",.0f"),
        Column("peak MB", "peak_rss_mb", fmt=",.0f"),
        Column("R@10", "recall@10"),
        Column("N@10", "ndcg@10"),
        Column("R@20", "recall@20"),
        Column("N@20", "ndcg@20"),
    ]
    target_columns = [
        Column("p50 speedup (target 8.2x)", "speedup", fmt=".1f", suffix="x"),
        Column("int8 speedup", "int8/speedup", fmt=".1f", suffix="x"),
        Column("model bytes smaller (target 93 %)", "memory_reduction", fmt=".1%"),
        Column("R@10 kept (target 97 %)", "recall_retention", fmt=".1%"),
        Column("R@10 vs student alone", "recall_vs_alone", fmt=".2f", suffix="x"),
    ]
    source = source_line(files, results.parent)
    out = {
        "distill": table(rows, columns, "model") + source,
        "distill-targets": table(targets, target_columns, "dataset") + source,
    }
    columns = [Column("valid N@10", _mean_sd_cell("ndcg@10", "valid_best")), *METRIC_COLUMNS]
    for folder in sorted((results / "distill" / "runs").iterdir()):
        runs = [(f"`{p.stem}`", read_record(p)) for p in sorted(folder.glob("*.json"))]
        out[f"distill-ablations-{folder.name}"] = table(runs, columns, "variant") + source_line(
            [folder], results.parent
        )
    # students of another teacher run: results/distill/teacher-<name>/<dataset>/
    for folder in sorted((results / "distill").glob("teacher-*/*")):
        out[f"distill-{folder.parent.name}-{folder.name}"] = table(
            _variants_over_seeds(folder), columns, "variant"
        ) + source_line([folder], results.parent)
    return out


def _variants_over_seeds(folder: Path) -> list[tuple[str, Record]]:
    """One row per variant of the run records in ``folder``: ``<variant>-seed-<n>.json``
    is another seed of ``<variant>.json``, and a variant run on several seeds shows the
    mean ± sd of its test and best validation figures."""
    groups: dict[str, list[Record]] = {}
    for path in sorted(folder.glob("*.json")):
        groups.setdefault(re.sub(r"-seed-\d+$", "", path.stem), []).append(read_record(path))
    rows: list[tuple[str, Record]] = []
    for variant, records in groups.items():
        if len(records) == 1:
            rows.append((f"`{variant}`", records[0]))
            continue
        records = sorted(records, key=lambda r: int(r["seed"]))
        summary = seed_summary([int(r["seed"]) for r in records], records)
        summary["valid_best"], summary["valid_best_sd"] = mean_sd(
            [r["valid_best"] for r in records]
        )
        rows.append((f"`{variant}`, {len(records)} seeds", summary))
    return rows


def _with_seeds(label: str, record: Record) -> str:
    """``label``, saying over how many seeds when the record averages several."""
    seeds = record.get("seeds")
    return f"{label}, mean ± sd of {len(seeds)} seeds" if seeds and "test_sd" in record else label


def _controls(results: Path, dataset: str, ours: Record) -> list[tuple[str, Record]]:
    """The ID-only controls of the parts our shipped config uses on ``dataset``: a gain
    that any ID model gets from the same part is not the language model's."""
    rows = []
    for name, ((section, key), label) in CONTROLS.items():
        path = results / "ideas" / dataset / f"{name}.json"
        if path.is_file() and ours.get("config", {}).get(section, {}).get(key):
            rows.append((label, read_record(path) | {"file": str(path.relative_to(results))}))
    return rows


def headline(results: Path) -> dict[str, str]:
    """Per dataset: our model, the strongest baseline and the reference figures."""
    out = {}
    for dataset in ("ml-100k", "amazon-beauty"):
        folder = results / dataset
        files = _model_files(folder)
        if not files:
            continue
        records = {p.stem: read_record(p) for p in files}
        baselines = [s for s in records if s != OURS and not s.startswith(OURS)]
        best = max(baselines, key=lambda s: get(records[s], "test/ndcg@10"))
        rows: list[tuple[str, Record]] = [
            (MODEL_LABELS[OURS], records[OURS] | {"file": f"{dataset}/{OURS}.json"}),
            (
                f"{MODEL_LABELS.get(best, best)} (strongest baseline)",
                records[best] | {"file": f"{dataset}/{best}.json"},
            ),
        ]
        rows += _controls(results, dataset, records[OURS])
        for path in sorted(results.glob(f"{dataset}/**/seed-spread.json")):
            for group, figures in read_record(path)["groups"].items():
                if group.startswith("all"):  # trained on every window, as the rows above
                    rows.append(
                        (
                            f"SASRec-CE, {len(figures['seeds'])} seeds (`{group}`)",
                            {
                                "test": {
                                    m: f"{figures[m]['mean']:.3f} ± {figures[m]['sd']:.3f}"
                                    for m in ("recall@10", "ndcg@10")
                                },
                                "file": str(path.relative_to(results)),
                            },
                        )
                    )
        recbole = [
            (record, path)
            for _, record, path in _recbole_rows(results, f"{dataset}-recllm")
            if not record.get("tag")
        ]
        if recbole:  # the strongest RecBole run on the same split
            record, path = max(recbole, key=lambda rp: rp[0]["test"]["ndcg@10"])
            name = f"RecBole {record['model']} on the same split (reference)"
            rows.append((name, record | {"file": str(path.relative_to(results))}))
        for anchor in PUBLISHED_ANCHORS.get(dataset, []):
            rows.append(
                (
                    f"{anchor.name.replace(' (published)', '')}, published (reference)",
                    {
                        "test": {"recall@10": anchor.recall_at_10, "ndcg@10": anchor.ndcg_at_10},
                        "file": "",
                    },
                )
            )
        columns = [
            Column("R@10", _mean_sd_cell("recall@10")),
            Column("N@10", _mean_sd_cell("ndcg@10")),
            text("results file", lambda r: f"`results/{r['file']}`" if r["file"] else "paper"),
        ]
        rows = [(_with_seeds(label, record), record) for label, record in rows]
        out[f"headline-{dataset}"] = table(rows, columns, "model")
    return out


# Overrides that say how a run executed, not what it learnt.
_EXECUTION_SETTINGS = ("trainer.num_threads=", "trainer.progress=", "output_dir=")


def _changed_settings(record: Record) -> str:
    """The overrides on a run's command line that change what it learns."""
    words = str(record.get("command", "")).split()
    settings = [w for w in words if "=" in w and not w.startswith(("-", *_EXECUTION_SETTINGS))]
    return " ".join(f"`{w}`" for w in settings)


def _training_settings(record: Record) -> dict[str, Any]:
    """A run's resolved config, flattened to ``section.key``, defaults filled in for
    settings added since it ran, without what only says how it executed."""
    from recllm.bench.accuracy import NOT_TRAINING_KEYS
    from recllm.config import from_dict
    from recllm.recipes.train import TrainConfig

    flat: dict[str, Any] = {}

    def walk(data: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, value in data.items():
            if (*path, key) in NOT_TRAINING_KEYS:
                continue
            if isinstance(value, dict):
                walk(value, (*path, key))
            else:
                flat[".".join((*path, key))] = value

    walk(asdict(from_dict(TrainConfig, record.get("config", {}))), ())
    return flat


def _settings_against(base: Record | None) -> Callable[[Record], str]:
    """The settings in which a run differs from ``base`` (the shipped config's run), or,
    without one, the overrides on its command line."""
    if base is None:
        return _changed_settings
    reference = _training_settings(base)

    def cell(record: Record) -> str:
        if record is base:
            return _changed_settings(record)
        settings = _training_settings(record)
        changed = [f"{k}={v}" for k, v in settings.items() if reference.get(k) != v]
        return " ".join(f"`{c}`" for c in changed)

    return cell


def _best_valid(metric: str) -> Callable[[Record], Any]:
    """A validation metric at the run's best epoch (the one its test figures come from)."""

    def cell(record: Record) -> Any:
        best = get(record, "valid_best/epoch")
        return next(
            (h["valid"][metric] for h in record.get("history", []) if h.get("epoch") == best),
            None,
        )

    return cell


def _run_record(path: Path) -> Record:
    """A training run's record; an analysis file among them is named, not ranked."""
    record = read_record(path)
    if get(record, "valid_best/ndcg@10") is None:
        raise RecLLMError(
            f"{path}: not a training run's record (no valid_best); the ideas folders hold "
            "one record per run, so keep analyses such as target_popularity.py's elsewhere"
        )
    return record


def ideas(results: Path) -> dict[str, str]:
    """Issue 26's ideas on validation, one seed each, beside the shipped config's run:
    trained by hand (``results/<dataset>/ideas/``) or as models of ``recllm bench
    accuracy`` (``--results-dir results/ideas``: ``results/ideas/<dataset>/``)."""
    out = {}
    folders: dict[str, list[Path]] = {}
    for folder in results.glob("*/ideas/"):
        folders.setdefault(folder.parent.name, []).append(folder)
    for folder in (results / "ideas").glob("*/"):
        folders.setdefault(folder.name, []).append(folder)
    for dataset, found in sorted(folders.items()):
        trials = sorted(
            ((f"`{p.stem}`", _run_record(p)) for folder in found for p in folder.glob("*.json")),
            key=lambda row: get(row[1], "valid_best/ndcg@10"),
        )
        shipped_path = results / dataset / f"{OURS}.json"
        shipped = read_record(shipped_path) if shipped_path.is_file() else None
        rows = [(f"shipped config (`{OURS}`)", shipped)] if shipped is not None else []
        rows += trials
        columns = [
            text("settings (the others' against the shipped run)", _settings_against(shipped)),
            Column("valid R@10", _best_valid("recall@10"), fmt=".4f"),
            Column("valid N@10", "valid_best/ndcg@10", fmt=".4f"),
            Column("best epoch", _best_epoch, fmt=""),
            text("commit", lambda r: str(r.get("git_commit", ""))[:7]),
        ]
        out[f"ideas-{dataset}"] = table(rows, columns, "run (`file`)") + source_line(
            sorted(found), results.parent
        )
    return out


BUILDERS: list[Callable[[Path], dict[str, str]]] = [
    headline,
    accuracy,
    references,
    ideas,
    seeds,
    cold_start,
    ablations,
    joint,
    explanations,
    distillation,
    routing,
    data_benchmarks,
    serving,
    scale_tables,
    privacy,
]


def all_tables(results: Path) -> dict[str, str]:
    """Every table, by the name of the file it is written to (without ``.md``)."""
    tables: dict[str, str] = {}
    for build in BUILDERS:
        tables.update(build(Path(results)))
    return tables
