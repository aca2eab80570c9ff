"""``recllm report``: all results files -> one Markdown report with tables and plots.

Reads ``results/<dataset>/<model>.json`` (the records written by ``recllm train`` and
``recllm bench accuracy``) and writes ``<out>/report.md`` plus, per dataset, three
plots: test metrics per model with the reference figures marked, validation NDCG@10
per epoch, and training time against accuracy. Nothing is recomputed: the report shows
exactly what the results files hold, and names each file.

Reference figures hold only for leave-one-out splits: published ones for Beauty, and
RecBole's on this repository's exact ML-100K split, read from the files that
``benchmarks/recbole/run.py`` writes to ``<results>/recbole/<dataset>-recllm/``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recllm.errors import RecLLMError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Anchor:
    """A reference figure marked beside the measured rows."""

    name: str
    recall_at_10: float
    ndcg_at_10: float


# Published figures on leave-one-out Beauty with full ranking, as quoted in issue 4.
PUBLISHED_ANCHORS: dict[str, list[Anchor]] = {
    "amazon-beauty": [
        Anchor("SASRec-CE (published)", 0.086, 0.050),
        Anchor("TIGER (published)", 0.065, 0.038),
    ],
}
ANCHOR_PROTOCOL = "leave_one_out"  # the protocol every reference figure was measured on
METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
GROUP_METRICS = ("recall@10", "ndcg@10")  # per target group (cold / warm items)


@dataclass
class ModelResult:
    """One results file, reduced to what the report shows."""

    name: str
    path: Path
    test: dict[str, float]
    epochs: int
    seconds_per_epoch: float | None
    train_seconds: float | None
    peak_rss_mb: float | None
    trainable_parameters: int | None
    valid_curve: list[tuple[int, float]]
    command: str
    git_commit: str
    groups: dict[str, dict[str, float]]  # test metrics per target group (cold / warm items)
    protocol: str  # the split's protocol, "" when the record does not say
    windows: str  # which windows of each history a sequential model trained on, else ""


def _read_record(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecLLMError(f"{path}: not valid JSON ({exc})") from exc


def _training_windows(record: dict[str, Any]) -> str:
    """``trainer.windows`` of a sequential model's run; records made before the setting
    existed trained on the last window only. Empty for untrained and CF models."""
    from recllm.recipes.model_names import CF_MODELS

    config = record.get("config", {})
    if "trainer" not in config or config.get("model") in CF_MODELS:
        return ""
    return str(config["trainer"].get("windows", "last"))


def load_results(results_dir: Path) -> dict[str, list[ModelResult]]:
    """Results per dataset folder; files without a ``test`` section are skipped (they
    are other benchmarks' outputs), malformed JSON is an error naming the file."""
    datasets: dict[str, list[ModelResult]] = {}
    for path in sorted(Path(results_dir).glob("*/*.json")):
        record = _read_record(path)
        if not isinstance(record, dict) or "test" not in record:
            continue
        curve = [
            (int(h["epoch"]), float(h["valid"]["ndcg@10"]))
            for h in record.get("history", [])
            if "valid" in h
        ]
        datasets.setdefault(path.parent.name, []).append(
            ModelResult(
                name=path.stem,
                path=path,
                test={k: float(v) for k, v in record["test"].items()},
                epochs=int(record.get("epochs_run", 0)),
                seconds_per_epoch=record.get("seconds_per_epoch"),
                train_seconds=record.get("train_seconds"),
                peak_rss_mb=record.get("peak_rss_mb"),
                trainable_parameters=record.get("trainable_parameters"),
                valid_curve=curve,
                command=str(record.get("command", "")),
                git_commit=str(record.get("git_commit", ""))[:12],
                groups=record.get("test_groups", {}),
                protocol=str(record.get("protocol", {}).get("split", {}).get("protocol", "")),
                windows=_training_windows(record),
            )
        )
    return datasets


def _table(results: list[ModelResult]) -> str:
    """One row per model, by NDCG@10; with per-group columns (e.g. a cold-start split's
    cold and warm test targets, and their user counts) when any record has groups."""
    groups = sorted({g for r in results for g in r.groups})
    group_columns = [f"{g} {m}" for g in groups for m in (*GROUP_METRICS, "users")]
    header = (
        "| model | "
        + " | ".join([*METRICS, *group_columns])
        + " | windows | epochs | s/epoch | peak MB | trainable params |"
    )
    rule = "|---|" + "---:|" * (len(METRICS) + len(group_columns)) + "---|" + "---:|" * 4
    rows = [header, rule]
    for r in sorted(results, key=lambda r: r.test.get("ndcg@10", 0.0)):
        cells = [f"{r.test[m]:.4f}" if m in r.test else "" for m in METRICS]
        for g in groups:
            figures = r.groups.get(g, {})
            cells += [f"{figures[m]:.4f}" if m in figures else "" for m in GROUP_METRICS]
            cells.append(f"{int(figures['n_users']):,}" if "n_users" in figures else "")
        spe = f"{r.seconds_per_epoch:.1f}" if r.seconds_per_epoch else ""
        mem = f"{r.peak_rss_mb:,.0f}" if r.peak_rss_mb else ""
        params = f"{r.trainable_parameters:,}" if r.trainable_parameters else "0"
        rows.append(
            f"| {r.name} | "
            + " | ".join(cells)
            + f" | {r.windows} | {r.epochs} | {spe} | {mem} | {params} |"
        )
    return "\n".join(rows)


def load_anchors(results_dir: Path, dataset: str) -> list[Anchor]:
    """Reference figures for ``dataset``: the published ones, then RecBole's runs on the
    same split (``<results_dir>/recbole/<dataset>-recllm/``; variants with a tag and
    files that are not RecBole records are left out)."""
    anchors = list(PUBLISHED_ANCHORS.get(dataset, []))
    for path in sorted((Path(results_dir) / "recbole" / f"{dataset}-recllm").glob("*.json")):
        record = _read_record(path)
        if record.get("tool") != "RecBole" or record.get("tag") or "test" not in record:
            continue
        stopped = " at a time budget" if record.get("stopped_by") == "budget" else ""
        anchors.append(
            Anchor(
                f"RecBole {record['model']} (same split{stopped})",
                float(record["test"]["recall@10"]),
                float(record["test"]["ndcg@10"]),
            )
        )
    return anchors


def _protocols(results: list[ModelResult]) -> set[str]:
    return {r.protocol for r in results if r.protocol}


def _plots(
    dataset: str, results: list[ModelResult], anchors: list[Anchor], out: Path
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ordered = sorted(results, key=lambda r: r.test.get("ndcg@10", 0.0))
    names = [r.name for r in ordered]

    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(names) + 2), squeeze=False)
    for axis, metric in zip(axes[0], ("recall@10", "ndcg@10"), strict=True):
        axis.barh(names, [r.test.get(metric, 0.0) for r in ordered], color="tab:blue")
        for index, anchor in enumerate(anchors):
            value = anchor.recall_at_10 if metric == "recall@10" else anchor.ndcg_at_10
            axis.axvline(value, linestyle="--", color=f"C{index + 1}", label=anchor.name)
        axis.set_xlabel(f"test {metric}")
        if anchors:
            axis.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{dataset}: test metrics" + (" (dashed: reference figures)" if anchors else ""))
    fig.tight_layout()
    written.append(_save(fig, out / f"{dataset}-metrics.png"))

    curves = [r for r in results if r.valid_curve]
    if curves:
        fig, axis = plt.subplots(figsize=(7, 4))
        for r in curves:
            epochs, ndcgs = zip(*r.valid_curve, strict=True)
            axis.plot(epochs, ndcgs, marker=".", label=r.name)
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation NDCG@10")
        axis.set_title(f"{dataset}: validation curves")
        axis.legend(fontsize=7)
        fig.tight_layout()
        written.append(_save(fig, out / f"{dataset}-validation.png"))

    timed = [(r, r.train_seconds) for r in results if r.train_seconds]
    if timed:
        fig, axis = plt.subplots(figsize=(7, 4))
        for r, seconds in timed:
            axis.scatter(seconds, r.test.get("ndcg@10", 0.0))
            axis.annotate(r.name, (seconds, r.test.get("ndcg@10", 0.0)), fontsize=7)
        axis.set_xscale("log")
        axis.set_xlabel("training time (s, log scale)")
        axis.set_ylabel("test NDCG@10")
        axis.set_title(f"{dataset}: time vs accuracy")
        fig.tight_layout()
        written.append(_save(fig, out / f"{dataset}-time-vs-accuracy.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def build_report(results_dir: Path, out: Path) -> Path:
    """Write ``out/report.md`` and its plots; return the report's path."""
    datasets = load_results(results_dir)
    if not datasets:
        raise RecLLMError(
            f"no results under {results_dir} (expected <dataset>/<model>.json files with a "
            "'test' section); run `recllm bench accuracy` or `recllm train --results-dir` first"
        )
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# RecLLM-Adapter results",
        "",
        f"Generated by `recllm report` from `{results_dir}`. Test metrics on the full "
        "catalogue (history items excluded); each row names the file it comes from, which "
        "records the exact command and commit.",
    ]
    for dataset, results in sorted(datasets.items()):
        lines += ["", f"## {dataset}", ""]
        protocols = _protocols(results)
        if protocols:
            lines += [f"Split protocol: {', '.join(sorted(protocols))}.", ""]
        lines += [_table(results), ""]
        anchors = load_anchors(results_dir, dataset)
        if anchors and protocols - {ANCHOR_PROTOCOL}:
            lines += [
                f"Reference figures are left out: they were measured on {ANCHOR_PROTOCOL} "
                "splits, not on this one.",
                "",
            ]
            anchors = []
        if anchors:
            refs = "; ".join(
                f"{a.name} R@10 {a.recall_at_10:.3f} / N@10 {a.ndcg_at_10:.3f}" for a in anchors
            )
            lines += [f"Reference figures (not measured by this report): {refs}.", ""]
        for plot in _plots(dataset, results, anchors, out):
            lines.append(f"![{plot.stem}]({plot.name})")
        lines += ["", "Sources:", ""]
        lines += [f"- `{r.path}`: `{r.command}` at `{r.git_commit}`" for r in results]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
