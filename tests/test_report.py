"""``recllm report``: tables and plots from results files; bad inputs named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recllm.cli import main


def write_record(
    folder: Path,
    name: str,
    ndcg: float,
    history: bool = True,
    groups: dict | None = None,
    protocol: str = "leave_one_out",
    config: dict | None = None,
) -> None:
    record = {
        "protocol": {"split": {"protocol": protocol}},
        "model": name,
        "test": {
            "recall@10": 2 * ndcg,
            "ndcg@10": ndcg,
            "recall@20": 3 * ndcg,
            "ndcg@20": 1.2 * ndcg,
        },
        "epochs_run": 2,
        "seconds_per_epoch": 1.5,
        "train_seconds": 3.0,
        "peak_rss_mb": 900.0,
        "trainable_parameters": 1234,
        "command": f"recllm train {name}.yaml",
        "git_commit": "abc123",
        "history": [
            {"epoch": 1, "valid": {"ndcg@10": ndcg / 2}},
            {"epoch": 2, "valid": {"ndcg@10": ndcg}},
        ]
        if history
        else [],
        **({"test_groups": groups} if groups else {}),
        **({"config": config} if config else {}),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(record))


def write_recbole_record(
    results: Path, model: str, recall: float, ndcg: float, tag: str = "", stopped_by: str = ""
) -> None:
    folder = results / "recbole" / "ml-100k-recllm"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "tool": "RecBole",
        "model": model,
        "tag": tag,
        "stopped_by": stopped_by or "early stopping or max epochs",
        "test": {"recall@10": recall, "ndcg@10": ndcg},
    }
    stem = model.lower() + (f"-{tag}" if tag else "")
    (folder / f"{stem}.json").write_text(json.dumps(record))


def test_report_has_tables_plots_and_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    write_record(results / "ml-100k", "sasrec-ce", 0.06)
    write_record(results / "ml-100k", "popularity", 0.03, history=False)
    (results / "data").mkdir()
    (results / "data" / "cache.json").write_text(json.dumps({"benchmark": "cache"}))  # not a model
    write_recbole_record(results, "SASRec", 0.212, 0.108, stopped_by="budget")
    write_recbole_record(results, "LightGCN", 0.091, 0.049, tag="default-patience")  # a variant
    out = tmp_path / "report"
    assert main(["report", "--results-dir", str(results), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## ml-100k" in text and "## data" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| popularity", "| sasrec-ce"]  # by NDCG@10
    assert "| 0.1200 | 0.0600 | 0.1800 | 0.0720 |  | 2 | 1.5 | 900 | 1,234 |" in text
    assert "Split protocol: leave_one_out." in text
    references = next(line for line in text.splitlines() if line.startswith("Reference"))
    assert "RecBole SASRec (same split at a time budget) R@10 0.212 / N@10 0.108" in references
    assert "LightGCN" not in references
    assert "`recllm train sasrec-ce.yaml`" in text
    for plot in ("metrics", "validation", "time-vs-accuracy"):
        assert (out / f"ml-100k-{plot}.png").stat().st_size > 1000
        assert f"(ml-100k-{plot}.png)" in text


def test_cold_and_warm_figures_get_their_own_columns(tmp_path: Path) -> None:
    results = tmp_path / "results"
    groups = {
        "cold": {"recall@10": 0.25, "ndcg@10": 0.125, "n_users": 92},
        "warm": {"recall@10": 0.5, "ndcg@10": 0.25, "n_users": 851},
    }
    write_record(results / "ml-100k", "recllm-adapter", 0.1, groups=groups)
    write_record(results / "ml-100k", "popularity", 0.03)  # no groups: empty cells
    out = tmp_path / "report"
    assert main(["report", "--results-dir", str(results), "--out", str(out)]) == 0
    lines = (out / "report.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| model"))
    assert "cold recall@10 | cold ndcg@10 | cold users | warm recall@10" in header
    ours = next(line for line in lines if line.startswith("| recllm-adapter"))
    assert "| 0.2500 | 0.1250 | 92 | 0.5000 | 0.2500 | 851 |" in ours
    popularity = next(line for line in lines if line.startswith("| popularity"))
    assert popularity.count("|") == header.count("|")


def test_table_says_which_windows_each_sequential_model_trained_on(tmp_path: Path) -> None:
    """Rows trained on every window and on the last one only are not comparable on data;
    records from before ``trainer.windows`` existed trained on the last window."""
    results = tmp_path / "results"
    folder = results / "ml-100k"
    write_record(
        folder, "sasrec-ce", 0.1, config={"model": "sasrec", "trainer": {"windows": "all"}}
    )
    write_record(folder, "generic-lora", 0.08, config={"model": "recllm-adapter", "trainer": {}})
    write_record(folder, "bpr-mf", 0.06, config={"model": "bpr-mf", "trainer": {"windows": "all"}})
    write_record(folder, "popularity", 0.04)
    out = tmp_path / "report"
    assert main(["report", "--results-dir", str(results), "--out", str(out)]) == 0
    lines = (out / "report.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| model"))
    column = header.split(" | ").index("windows")

    def windows(model: str) -> str:
        row = next(line for line in lines if line.startswith(f"| {model} |"))
        return row.split(" | ")[column].strip()

    assert windows("sasrec-ce") == "all" and windows("generic-lora") == "last"
    assert windows("bpr-mf") == "" and windows("popularity") == ""


def test_reference_figures_are_left_out_on_other_splits(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_record(results / "amazon-beauty", "sasrec-ce", 0.05, protocol="cold_start")
    out = tmp_path / "report"
    assert main(["report", "--results-dir", str(results), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "Split protocol: cold_start." in text
    assert "Reference figures are left out" in text and "published" not in text


def test_report_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--results-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no results under" in capsys.readouterr().err
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "broken.json").write_text("{not json")
    assert main(["report", "--results-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "broken.json: not valid JSON" in capsys.readouterr().err
