"""docs/scale.md's tables: from the results files when they are there, a sentence naming
the command that writes them when they are not."""

from __future__ import annotations

import json
from pathlib import Path

from recllm.docgen.scale_tables import scale_tables

ROW = {"processes": 1, "global_batch_size": 128, "samples_per_second": 50.0,
       "peak_rss_mb_per_process": [900.0], "trainable_parameters": 10, "train_sequences": 3000}  # fmt: skip


def test_without_results_each_table_names_its_command(tmp_path: Path) -> None:
    tables = scale_tables(tmp_path)
    assert set(tables) == {"scale-training", "scale-projection", "scale-memory-plan"}
    assert "recllm bench scale" in tables["scale-training"]
    assert "recllm bench memory-plan" in tables["scale-memory-plan"]


def test_training_tables_come_from_the_scale_results(tmp_path: Path) -> None:
    two = {**ROW, "processes": 2, "samples_per_second": 80.0, "speedup": 1.6,
           "scaling_efficiency": 0.8, "peak_rss_mb_per_process": [950.0, 940.0]}  # fmt: skip
    training = {"steps": 20, "models": {"student": {"1": {**ROW, "speedup": 1.0}, "2": two}}}
    (tmp_path / "results" / "data").mkdir(parents=True)
    (tmp_path / "results" / "data" / "scale.json").write_text(json.dumps({"training": training}))
    tables = scale_tables(tmp_path / "results")
    assert (
        "| student, 2 processes | 128 | 80.0 | 1.60x | 80% | 950, 940 | 10 |"
        in (tables["scale-training"])
    )
    assert "`results/data/scale.json`" in tables["scale-projection"]
    assert "| student | 3,000 | 0.750 | 1.0 min | 0.6 min |" in tables["scale-projection"]


def test_no_projection_without_a_one_process_run(tmp_path: Path) -> None:
    training = {"steps": 20, "models": {"student": {"2": {**ROW, "processes": 2}}}}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "scale.json").write_text(json.dumps({"training": training}))
    tables = scale_tables(tmp_path)
    assert "| student, 2 processes |" in tables["scale-training"]
    assert tables["scale-projection"].startswith("No projection: it needs runs on 1")
