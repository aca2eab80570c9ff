"""``benchmarks/target_popularity.py``: a run's accuracy split by how often each target
item was trained on, on a toy run trained for real."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml
from helpers import write_toy_movielens

from recllm.cli import main

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "target_popularity.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("target_popularity", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_toy_sasrec(tmp_path: Path) -> Path:
    config = {
        "output_dir": str(tmp_path / "run"),
        "model": "sasrec",
        "data": {
            "dataset": str(write_toy_movielens(tmp_path / "ml-toy", n_users=60)),
            "cache_dir": str(tmp_path / "cache"),
            "preprocess": {"min_user_interactions": 0, "min_item_interactions": 0},
        },
        "sasrec": {"d_model": 16, "max_len": 8},
        "trainer": {"epochs": 2, "batch_size": 16, "progress": False, "tensorboard": False},
    }
    path = tmp_path / "sasrec.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 0
    return tmp_path / "run"


def test_buckets_cover_every_item_once() -> None:
    script = load_script()
    train_items = np.array([0, 0, 0, 0, 0, 1] + [2] * 60)
    buckets = script.item_buckets(train_items, n_items=4)  # item 3 was never trained on
    assert list(buckets) == ["0-4", "5-9", "10-19", "20-49", "50+"]
    assert np.stack(list(buckets.values())).sum(0).tolist() == [1, 1, 1, 1]
    assert buckets["0-4"].tolist() == [False, True, False, True]
    assert buckets["5-9"].tolist() == [True, False, False, False]
    assert buckets["50+"].tolist() == [False, False, True, False]


def test_age_groups_cover_every_item_once_oldest_first() -> None:
    script = load_script()
    first_seen = np.arange(40, dtype=np.float64)[::-1].copy()  # item 0 is the newest
    first_seen[5] = np.nan  # never trained on
    groups = script.age_buckets(first_seen)
    assert list(groups) == ["oldest 50%", "next 30%", "next 15%", "newest 5%"]
    assert np.stack(list(groups.values())).sum(0).tolist() == [1] * 40
    assert groups["newest 5%"][[0, 5]].all() and groups["oldest 50%"][39]
    seen = np.flatnonzero(~np.isnan(first_seen))
    sizes = [int(members[seen].sum()) for members in groups.values()]
    expected = [0.5 * 39, 0.3 * 39, 0.15 * 39, 0.05 * 39]  # 39 items seen: 50/30/15/5 %
    assert all(abs(size - share) <= 1 for size, share in zip(sizes, expected, strict=True))


def assert_groups_add_up(figures: dict) -> None:
    """Every evaluated user falls in one group, and the groups' NDCG@10 mix to the total."""
    for stage in ("valid", "test"):
        groups = {k: v for k, v in figures[stage].items() if k != "all"}
        assert sum(g["n_users"] for g in groups.values()) == figures[stage]["all"]["n_users"]
        mixed = sum(g["ndcg@10"] * g["n_users"] for g in groups.values())
        assert mixed / figures[stage]["all"]["n_users"] == pytest.approx(
            figures[stage]["all"]["ndcg@10"]
        )


def test_a_run_is_measured_per_bucket_and_the_buckets_add_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train_toy_sasrec(tmp_path)
    out = tmp_path / "target-popularity.json"
    assert load_script().main([str(run), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["git_commit"] and record["command"].startswith("python benchmarks/")
    figures = record["runs"][str(run)]
    trained = json.loads((run / "results.json").read_text())
    assert figures["test"]["all"]["ndcg@10"] == pytest.approx(trained["test"]["ndcg@10"])
    assert_groups_add_up(figures)
    assert "grouped by training interactions of the target item" in capsys.readouterr().out

    aged = tmp_path / "target-age.json"
    assert load_script().main([str(run), "--out", str(aged), "--by", "age"]) == 0
    record = json.loads(aged.read_text())
    assert record["buckets"].startswith("when the target item first occurs in training")
    by_age = record["runs"][str(run)]
    assert by_age["test"]["all"] == figures["test"]["all"]
    assert_groups_add_up(by_age)
    assert set(by_age["valid"]) - {"all"} <= {"oldest 50%", "next 30%", "next 15%", "newest 5%"}
    assert "grouped by when the target item first occurs" in capsys.readouterr().out


def test_a_popularity_correction_is_chosen_on_validation(tmp_path: Path) -> None:
    run = train_toy_sasrec(tmp_path)
    out = tmp_path / "target-popularity.json"
    assert load_script().main([str(run), "--out", str(out), "--adjust", "0.5", "5"]) == 0
    figures = json.loads(out.read_text())["runs"][str(run)]
    by_alpha = figures["adjusted"]["by_alpha"]
    assert list(by_alpha) == ["0.0", "0.5", "5.0"]
    # no correction ranks exactly as the plain evaluation does
    assert by_alpha["0.0"]["test"] == figures["test"]
    best = max(by_alpha, key=lambda alpha: by_alpha[alpha]["valid"]["all"]["ndcg@10"])
    assert figures["adjusted"]["chosen_alpha"] == float(best)
    # a heavy correction changes the ranking
    assert by_alpha["5.0"]["valid"]["all"] != by_alpha["0.0"]["valid"]["all"]
    for stage in ("valid", "test"):
        shares = figures["top10_share"][stage]
        assert list(shares) == ["0-4", "5-9", "10-19", "20-49", "50+"]
        assert sum(shares.values()) == pytest.approx(1.0)
    assert list(figures["item_norm"]) == ["item"]  # SASRec's items are IDs alone
    assert figures["item_norm"]["item"] and all(
        norm > 0 for norm in figures["item_norm"]["item"].values()
    )


def test_negative_alphas_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_script().main([str(tmp_path), "--adjust", "-1"])
    assert exit_info.value.code == 2
