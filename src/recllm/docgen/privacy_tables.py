"""Tables of ``recllm bench privacy``: each attack's AUC (and TPR at 1 % FPR) per model and
defence, with the defence's Recall@10 / NDCG@10, from ``results/privacy/*.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recllm.docgen.markdown import DATASET_LABELS, Column, Record, read_record, source_line, table

NONE_YET = "No `recllm bench privacy` results yet.\n"


def _attack(name: str, signal: str, tpr: bool = False) -> list[Column]:
    columns = [Column(f"{signal} AUC", f"{name}/{signal}/auc")]
    if tpr:
        columns.append(Column(f"{signal} TPR@1%FPR", f"{name}/{signal}/tpr@0.01fpr"))
    return columns


def privacy(results: Path) -> dict[str, str]:
    """``privacy`` (in-process: models x response policies), ``privacy-exclusion`` and
    ``privacy-http`` (the served bundle per service configuration)."""
    files = sorted((results / "privacy").glob("*.json"))
    records = [(file, read_record(file)) for file in files]
    local = [(f, r) for f, r in records if r.get("mode") == "in-process"]
    served = [(f, r) for f, r in records if r.get("mode") == "http"]
    rows: list[tuple[str, Record]] = []
    exclusion: list[tuple[str, Record]] = []
    for _, record in local:
        dataset = DATASET_LABELS.get(record["dataset"], record["dataset"])
        for model, figures in record["models"].items():
            for policy, row in figures["policies"].items():
                rows.append((f"{dataset}, {model}: {policy}", row))
            for defence, row in figures["exclusion"].items():
                exclusion.append((f"{dataset}, {model}: {defence}", row))
    columns = [
        *_attack("threshold", "threshold-rank", tpr=True),
        *_attack("threshold", "threshold-score"),
        *_attack("shadow", "shadow-rank"),
        *_attack("shadow", "shadow-calibrated", tpr=True),
        Column("answered", "threshold/answered", fmt=".0%"),
        Column("R@10", "recall@10", fmt=".4f"),
        Column("N@10", "ndcg@10", fmt=".4f"),
    ]
    excl_columns = [
        Column("AUC", "exclusion/auc"),
        Column("TPR@1%FPR", "exclusion/tpr@0.01fpr"),
        Column("requests", "queries", fmt="d"),
        Column("answered", "answered", fmt=".0%"),
        Column("pairs per side", "exclusion/members", fmt="d"),
    ]
    local_files = [f for f, _ in local]
    out = {
        "privacy": table(rows, columns, "dataset, model: defence")
        + source_line(local_files, results.parent)
        if rows
        else NONE_YET,
        "privacy-exclusion": table(exclusion, excl_columns, "dataset, model: defence")
        + source_line(local_files, results.parent)
        if exclusion
        else NONE_YET,
    }
    http_rows: list[tuple[str, Record]] = []
    for _, record in served:
        dataset = DATASET_LABELS.get(record["dataset"], record["dataset"])
        for name, row in record["service"].items():
            http_rows.append((f"{dataset} bundle: {name}", row))
    http_columns = [
        *_attack("threshold", "threshold-rank"),
        Column("threshold pairs answered", "threshold/answered", fmt=".0%"),
        *_attack("shadow", "shadow-rank"),
        *_attack("shadow", "shadow-calibrated"),
        Column("shadow queries answered", "shadow/answered_queries", fmt="d"),
        *_attack("exclusion", "exclusion"),
        Column("exclusion pairs answered", "exclusion/answered", fmt=".0%"),
        Column("statuses", _statuses, fmt=""),
    ]
    out["privacy-http"] = (
        table(http_rows, http_columns, "dataset: service")
        + source_line([f for f, _ in served], results.parent)
        if http_rows
        else NONE_YET
    )
    return out


def _statuses(record: Record) -> str:
    statuses: dict[str, Any] = record.get("statuses") or {}
    return ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
