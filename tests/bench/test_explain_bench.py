"""``recllm bench explain`` on toy MovieLens data: the references verify fully, the
template is faithful, retrieval is scored on the same pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.test_accuracy import bench_argv

from recllm.cli import main


def test_bench_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, results = bench_argv(tmp_path)  # toy configs: dataset "toy" -> ml-toy
    argv = [a if a != "accuracy" else "explain" for a in argv]
    assert main(argv) == 0
    record = json.loads((results / "explain" / "ml-toy.json").read_text())
    systems = record["systems"]
    assert record["held_out_pairs"] == 80  # 40 users x (validation, test)
    assert systems["reference"]["faithfulness"] == 1.0 and systems["reference"]["bleu4"] == 1.0
    assert systems["template"]["faithfulness"] == 1.0
    keys = {"bleu4", "rouge_l", "bertscore_f1", "distinct_1", "distinct_2", "usr", "faithfulness"}
    assert all(keys <= set(row) for row in systems.values())
