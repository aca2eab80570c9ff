"""``recllm bench routing`` on a tiny trained router and a few labelled queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import save_tiny_bert, write_toy_movielens

from recllm.bench.routing import intent_report
from recllm.cli import main
from recllm.recipes.router import RouterTrainConfig, train_router
from recllm.routing.classifier import ClassifierConfig


def test_intent_report_counts_precision_and_recall() -> None:
    gold = ["recommend", "recommend", "explain", "out_of_scope"]
    predicted = ["recommend", "explain", "explain", "out_of_scope"]
    report = intent_report(gold, predicted)
    assert report["accuracy"] == 0.75
    assert report["per_intent"]["explain"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": 0.6667,
        "support": 1,
    }
    assert report["per_intent"]["recommend"]["recall"] == 0.5
    assert report["per_intent"]["recommend_and_explain"]["support"] == 0


def test_bench_routing_writes_accuracy_slots_and_latency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_toy_movielens(tmp_path / "ml-toy")
    train_router(
        RouterTrainConfig(
            output_dir=str(tmp_path / "router"),
            catalogs=[str(data)],
            per_intent=20,
            classifier=ClassifierConfig(backbone=str(save_tiny_bert(tmp_path / "bert"))),
            student_layers=[0],
            epochs=1,
            student_epochs=1,
            progress=False,
        )
    )
    queries = tmp_path / "queries.jsonl"
    rows = [
        {"catalog": str(data), "text": "why Movie 3?", "intent": "explain", "item": "Movie 3"},
        {"catalog": str(data), "text": "three comedies", "intent": "recommend", "k": 3},
        {"catalog": str(data), "text": "", "intent": "out_of_scope"},
    ]
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["bench", "routing", "--router", str(tmp_path / "router"), "--queries", str(queries)]
    assert main([*argv, "--results-dir", str(tmp_path / "results"), "--repeats", "1"]) == 0
    result = json.loads((tmp_path / "results" / "routing" / "router.json").read_text())
    for member in ("teacher", "student"):
        report = result[member]
        assert 0.0 <= report["accuracy"] <= 1.0
        assert set(report["slot_accuracy"]) == {"item", "genre", "years", "k"}
        assert report["latency_route"]["timed"] == 3
        assert report["latency_route"]["p50_ms"] > 0
    assert result["student"]["layers"] == 1 and result["serving"] == "student"
    assert result["command"].startswith("recllm") and result["git_commit"]
