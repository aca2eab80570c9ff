"""``recllm bench accuracy`` on toy data: each model trains in its own process from its
config and writes results/<dataset>/<model>.json; mistakes stop it before training."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import yaml
from helpers import save_tiny_bert, write_toy_movielens

from recllm.cli import main


def write_configs(tmp_path: Path) -> Path:
    data = write_toy_movielens(tmp_path / "ml-toy")
    common = {
        "data": {
            "dataset": str(data),
            "cache_dir": str(tmp_path / "cache"),
            "preprocess": {"min_user_interactions": 0, "min_item_interactions": 0},
        },
        "trainer": {
            "epochs": 3,
            "batch_size": 16,
            "lr": 0.01,
            "progress": False,
            "tensorboard": False,
        },
    }
    configs = tmp_path / "configs"
    (configs / "baselines").mkdir(parents=True)
    sasrec = {
        **common,
        "output_dir": "runs/x",
        "model": "sasrec",
        "sasrec": {"d_model": 16, "max_len": 8},
    }
    cf = {
        **common,
        "output_dir": "runs/x",
        "model": "lightgcn",
        "cf": {"d_model": 8, "n_layers": 1},
    }
    (configs / "baselines" / "sasrec-toy.yaml").write_text(yaml.safe_dump(sasrec))
    (configs / "baselines" / "cf-toy.yaml").write_text(yaml.safe_dump(cf))
    ours = {
        **common,
        "output_dir": "runs/x",
        "backbone": {"name_or_path": str(save_tiny_bert(tmp_path / "tiny-bert"))},
        "encoder": {"n_tokens": 4, "max_length": 16},
    }
    (configs / "toy.yaml").write_text(yaml.safe_dump(ours))
    return configs


def bench_argv(tmp_path: Path) -> tuple[list[str], Path]:
    """``recllm bench accuracy`` arguments over the toy configs, and the results folder."""
    results = tmp_path / "results"
    argv = ["bench", "accuracy", "--dataset", "toy", "--configs", str(write_configs(tmp_path))]
    return [*argv, "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(results)], results


def test_bench_accuracy_writes_one_result_per_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, results = bench_argv(tmp_path)
    models = ["popularity", "zero-shot-lm", "sasrec-bce", "bpr-mf"]
    assert main([*argv, "--models", *models, "--set", "trainer.seed=3"]) == 0
    table = capsys.readouterr().out
    assert "sasrec-bce (test)" in table and "zero-shot-lm (test)" in table
    for name in models:
        record = json.loads((results / "ml-toy" / f"{name}.json").read_text())
        assert {"recall@10", "ndcg@10", "recall@20", "ndcg@20"} <= set(record["test"])
        assert record["command"].startswith("recllm") and record["git_commit"]
    sasrec = json.loads((results / "ml-toy" / "sasrec-bce.json").read_text())
    assert sasrec["config"]["trainer"]["loss"] == "bce" and "--name sasrec-bce" in sasrec["command"]
    assert sasrec["config"]["trainer"]["seed"] == 3 and "trainer.seed=3" in sasrec["command"]
    assert json.loads((results / "ml-toy" / "bpr-mf.json").read_text())["model"] == "bpr-mf"


def test_untrained_models_use_the_same_split_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, results = bench_argv(tmp_path)
    overrides = ["data.split.protocol=cold_start", "data.split.cold_share=0.3"]
    assert main([*argv, "--models", "popularity", "sasrec-ce", "--set", *overrides]) == 0
    trained = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    assert {"cold", "warm"} <= set(trained["test_groups"])
    record = json.loads((results / "ml-toy" / "popularity.json").read_text())
    assert record["protocol"]["split"]["protocol"] == "cold_start"
    assert record["protocol"]["split"]["cold_items"] > 0
    groups = record["test_groups"]  # cold and warm test items reported apart
    assert {"cold", "warm"} <= set(groups) and "recall@10" in groups["cold"]
    assert groups["cold"]["n_users"] + groups["warm"]["n_users"] == 40


def test_bench_accuracy_rejects_unknown_models_and_missing_configs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = write_configs(tmp_path)
    argv = ["bench", "accuracy", "--dataset", "toy", "--configs", str(configs)]
    assert main([*argv, "--models", "gpt-5"]) == 2
    assert "unknown model(s) ['gpt-5']" in capsys.readouterr().err
    assert (
        main(
            [
                "bench",
                "accuracy",
                "--dataset",
                "other",
                "--configs",
                str(configs),
                "--models",
                "sasrec-ce",
            ]
        )
        == 2
    )
    assert "no config for sasrec-ce on other" in capsys.readouterr().err


def test_lr_search_keeps_the_best_validation_trial_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, results = bench_argv(tmp_path)
    search = [*argv, "--models", "sasrec-ce", "--lr-factors", "0.1", "1"]
    monkeypatch.setattr(sys, "argv", ["recllm", *search])  # the command the record names
    assert main(search) == 0
    record = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    trials = record["search"]["trials"]
    assert [t["overrides"] for t in trials] == ["trainer.lr=0.001", "trainer.lr=0.01"]
    best = max(trials, key=lambda t: t["valid_ndcg@10"])
    assert record["search"]["chosen"] == best["overrides"]
    assert record["valid_best"]["ndcg@10"] == best["valid_ndcg@10"]
    assert record["config"]["trainer"]["lr"] == float(best["overrides"].split("=")[1])
    assert "--lr-factors 0.1 1" in record["search"]["command"]

    # a rerun reuses finished trials whose config matches, and retrains changed ones
    runs = tmp_path / "runs" / "toy" / "sasrec-ce"
    stamp = {d.name: (d / "results.json").stat().st_mtime_ns for d in runs.iterdir()}
    assert main([*search, "--set", "trainer.num_threads=1"]) == 0
    assert {d.name: (d / "results.json").stat().st_mtime_ns for d in runs.iterdir()} == stamp
    assert main([*search, "--set", "trainer.weight_decay=0.02"]) == 0
    assert all((runs / n / "results.json").stat().st_mtime_ns != t for n, t in stamp.items())


def test_lr_search_resumes_from_the_trial_records_kept_with_the_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the run folders gone (another machine, a fresh clone), the trial records
    kept under results/<dataset>/trials/ are reused instead of training again."""
    import shutil

    argv, results = bench_argv(tmp_path)
    search = [*argv, "--models", "sasrec-ce", "--lr-factors", "0.1", "1"]
    assert main(search) == 0
    kept = results / "toy" / "trials" / "sasrec-ce"
    assert sorted(p.name for p in kept.iterdir()) == ["lr-0.001.json", "lr-0.01.json"]
    chosen = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    runs = tmp_path / "runs" / "toy" / "sasrec-ce"
    assert json.loads((kept / "lr-0.01.json").read_text()) == json.loads(
        (runs / "lr-0.01" / "results.json").read_text()
    )

    shutil.rmtree(runs)
    assert main(search) == 0
    assert not runs.exists()  # nothing was trained again
    again = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    assert again["test"] == chosen["test"]
    assert again["search"]["trials"] == chosen["search"]["trials"]

    # a kept record of a different config is not taken for this trial
    assert main([*search, "--set", "trainer.weight_decay=0.02"]) == 0
    assert (runs / "lr-0.001" / "results.json").is_file()


def test_lr_search_resumes_an_interrupted_trial_from_its_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, results = bench_argv(tmp_path)
    search = [*argv, "--models", "sasrec-ce", "--lr-factors", "1"]
    assert main(search) == 0
    run = tmp_path / "runs" / "toy" / "sasrec-ce" / "lr-0.01"
    finished = json.loads((run / "results.json").read_text())
    # cut off after its last checkpoint, before it wrote its record
    (run / "results.json").unlink()
    (results / "toy" / "trials" / "sasrec-ce" / "lr-0.01.json").unlink()
    assert main([*search, "--set", "trainer.num_threads=1"]) == 0
    resumed = json.loads((run / "results.json").read_text())
    # the epochs' timings come back from the checkpoint: nothing was trained again
    assert resumed["history"] == finished["history"]
    assert resumed["test"] == finished["test"]


def test_seeds_rerun_the_chosen_rate_and_report_mean_and_sd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rate is searched on the first seed; the chosen one reruns on the others, and
    the record's test figures are the seeds' mean with their standard deviation."""
    import statistics

    argv, results = bench_argv(tmp_path)
    command = [*argv, "--models", "sasrec-ce", "--lr-factors", "0.1", "1", "--seeds", "3", "4"]
    assert main(command) == 0
    record = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    assert [t["overrides"].split()[-1] for t in record["search"]["trials"]] == [
        "trainer.seed=3",
        "trainer.seed=3",
    ]
    runs = tmp_path / "runs" / "toy" / "sasrec-ce"
    rate = record["search"]["chosen"].split()[0].removeprefix("trainer.lr=")
    assert sorted(d.name for d in runs.iterdir()) == sorted(
        ["lr-0.001-seed-3", "lr-0.01-seed-3", f"lr-{rate}-seed-4"]
    )
    reseeded = json.loads((runs / f"lr-{rate}-seed-4" / "results.json").read_text())
    assert reseeded["config"]["trainer"]["seed"] == 4
    assert reseeded["config"]["trainer"]["lr"] == float(rate)
    seeds = record["seeds"]
    assert [s["seed"] for s in seeds] == [3, 4]
    assert seeds[1]["test"] == reseeded["test"]
    for metric in ("recall@10", "ndcg@10"):
        per_seed = [s["test"][metric] for s in seeds]
        assert record["test"][metric] == pytest.approx(statistics.mean(per_seed))
        assert record["test_sd"][metric] == pytest.approx(statistics.stdev(per_seed))

    # seeds alone search nothing: the config's rate runs on each seed
    assert main([*argv, "--models", "sasrec-ce", "--seeds", "0", "1"]) == 0
    alone = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    assert alone["search"]["chosen"] == "trainer.lr=0.01 trainer.seed=0"
    assert [s["seed"] for s in alone["seeds"]] == [0, 1]
    assert main([*argv, "--models", "sasrec-ce", "--seeds", "1", "1"]) == 2
    assert "--seeds must be distinct" in capsys.readouterr().err


def test_a_later_seed_run_alone_never_replaces_another_seeds_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--seeds 1`` after ``--seeds 0`` (say, seeds spread over two processes) trains
    seed 1 in its own folder and leaves seed 0's finished run and record as they were."""
    argv, results = bench_argv(tmp_path)
    assert main([*argv, "--models", "sasrec-ce", "--seeds", "0"]) == 0
    runs = tmp_path / "runs" / "toy" / "sasrec-ce"
    kept = results / "toy" / "trials" / "sasrec-ce"
    first = (runs / "lr-0.01" / "results.json").read_text()
    assert main([*argv, "--models", "sasrec-ce", "--seeds", "1"]) == 0
    assert (runs / "lr-0.01" / "results.json").read_text() == first
    assert json.loads((kept / "lr-0.01.json").read_text())["config"]["trainer"]["seed"] == 0
    assert json.loads((kept / "lr-0.01-seed-1.json").read_text())["config"]["trainer"]["seed"] == 1
    # and both seeds together reuse both runs
    stamps = {d.name: (d / "results.json").stat().st_mtime_ns for d in runs.iterdir()}
    assert main([*argv, "--models", "sasrec-ce", "--seeds", "0", "1"]) == 0
    assert {d.name: (d / "results.json").stat().st_mtime_ns for d in runs.iterdir()} == stamps


def test_a_grid_is_extended_past_the_end_where_its_best_rate_lies() -> None:
    from recllm.bench.accuracy import _beyond_edge

    assert _beyond_edge([0.5, 1.0, 2.0], 1.0) is None  # inside: the search is done
    assert _beyond_edge([0.5, 1.0, 2.0], 0.5) == 0.25  # one step of the grid's own ratio
    assert _beyond_edge([0.5, 1.0, 2.0], 2.0) == 4.0
    assert _beyond_edge([0.25, 0.5, 1.0, 2.0], 0.25) == 0.125
    assert _beyond_edge([1.0], 1.0) is None  # one rate is no grid


def test_lr_search_extends_past_an_edge_best_and_warns_when_it_may_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Of two rates the better is always at an end: without --extend-edges the search
    says so; with it, the next rate past that end is tried and the best of all three kept."""
    argv, results = bench_argv(tmp_path)
    search = [*argv, "--models", "sasrec-ce", "--lr-factors", "0.01", "0.1"]
    assert main(search) == 0
    assert "is at an end of the rates tried" in caplog.text
    two = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())["search"]
    low, high = (t["valid_ndcg@10"] for t in two["trials"])  # lr 1e-4, 1e-3
    expected_extra = "trainer.lr=1e-05" if low >= high else "trainer.lr=0.01"

    assert main([*search, "--extend-edges", "1"]) == 0
    record = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    trials = record["search"]["trials"]
    assert len(trials) == 3 and expected_extra in [t["overrides"] for t in trials]
    rates = [float(t["overrides"].split("=")[1]) for t in trials]
    assert rates == sorted(rates)  # listed in grid order
    best = max(trials, key=lambda t: t["valid_ndcg@10"])
    assert record["search"]["chosen"] == best["overrides"]
    assert "searched past it, up to 1 steps" in record["search"]["rule"]
    assert main([*search, "--extend-edges", "-1"]) == 2
    assert "--extend-edges must be >= 0" in capsys.readouterr().err


def test_lr_search_rejects_non_positive_factors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, _ = bench_argv(tmp_path)
    assert main([*argv, "--models", "sasrec-ce", "--lr-factors", "0", "1"]) == 2
    assert "--lr-factors must be positive" in capsys.readouterr().err


def test_generic_baselines_turn_every_recommendation_part_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, results = bench_argv(tmp_path)
    assert main([*argv, "--models", "full-finetune", "--set", "trainer.epochs=15"]) == 0
    config = json.loads((results / "ml-toy" / "full-finetune.json").read_text())["config"]
    assert config["backbone"]["finetune"] == "full"
    assert config["trainer"]["backbone_lr"] == pytest.approx(1e-4)  # its own, smaller rate
    adapter = config["adapter"]
    assert not any(
        adapter[k]
        for k in ("use_item_ids", "use_cross_attention", "use_behaviour_weights", "use_user_vector")
    )
    assert adapter["use_metadata"]


@pytest.mark.parametrize("model", ["generic-lora", "full-finetune"])
def test_generic_lm_baselines_learn_and_reload(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The LM baselines train (beating a random ranking), and their saved best checkpoint
    (LoRA weights or the whole fine-tuned backbone) reloads to the same test figures."""
    argv, results = bench_argv(tmp_path)
    overrides = ["trainer.epochs=15", "trainer.lr=0.005", "trainer.patience=15"]
    assert main([*argv, "--models", model, "--set", *overrides]) == 0
    record = json.loads((results / "ml-toy" / f"{model}.json").read_text())
    # Toy users hold ~8 of 30 items: a random ranking of the rest gets hit@10 about 0.45.
    assert record["test"]["hit@10"] > 0.6, record["test"]
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "runs" / "toy" / model), "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    reloaded = json.loads(out[out.index("{") :])["metrics"]
    assert reloaded["ndcg@10"] == pytest.approx(record["test"]["ndcg@10"], abs=1e-6)


def test_search_reuse_ignores_what_a_run_fills_in_from_its_data() -> None:
    """A finished RecLLM-Adapter run records its catalogue hash and sizes; the fresh
    trial config has them empty, and that alone must not make the run look changed."""
    from recllm.bench.accuracy import _same_training

    fresh = {"adapter": {"catalogue": "", "n_items": 0, "d_model": 64}, "trainer": {"lr": 1e-3}}
    finished = {"adapter": {"catalogue": "b0b4d169", "n_items": 30, "d_model": 64}}
    finished["trainer"] = {"lr": 1e-3}
    assert _same_training(finished, fresh)
    finished["adapter"]["d_model"] = 128
    assert not _same_training(finished, fresh)


def _search_args(configs: Path, dataset: str, out: Path) -> argparse.Namespace:
    """What ``_trials`` reads of the CLI's arguments, for building a search's trials."""
    return argparse.Namespace(
        configs=configs,
        set=[],
        data_dir=None,
        runs_dir=out / "runs",
        dataset=dataset,
        results_dir=out / "results",
    )


def test_search_scales_the_backbone_rate_with_the_head_rate(tmp_path: Path) -> None:
    from recllm.bench.accuracy import MODELS, _trials

    args = _search_args(write_configs(tmp_path), "toy", tmp_path)
    spec = MODELS["full-finetune"]
    assert spec is not None
    trials = _trials("full-finetune", spec, args, [0.5, 2])
    assert [t.overrides for t in trials] == [
        ("trainer.lr=0.005", "trainer.backbone_lr=5e-05"),
        ("trainer.lr=0.02", "trainer.backbone_lr=0.0002"),
    ]
    assert trials[1].config["trainer"]["backbone_lr"] == pytest.approx(2e-4)


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", ["amazon-beauty", "ml-100k"])
def test_each_ablation_and_idea_is_the_shipped_config_with_one_change(name: str) -> None:
    from recllm.bench.accuracy import MODELS, _resolved_config
    from recllm.config import from_dict
    from recllm.recipes.train import TrainConfig

    shipped_path = Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml"
    shipped = _flat(_resolved_config(shipped_path, []))
    variants = [m for m in MODELS if m.startswith(("ablation-", "recllm-adapter-"))]
    assert len(variants) == 16
    for model in variants:
        spec = MODELS[model]
        assert spec is not None
        resolved = _resolved_config(shipped_path, list(spec.overrides))
        from_dict(TrainConfig, resolved)  # valid: a bad combination raises ConfigError
        changed = {k for k, v in _flat(resolved).items() if shipped.get(k) != v}
        assert changed <= {o.split("=")[0] for o in spec.overrides}, model
        # the parts the shipped config already has (or lacks) on that dataset
        no_op = (model, name) in {
            ("ablation-no-id-dropout", "ml-100k"),
            ("ablation-no-item-age", "ml-100k"),
            ("recllm-adapter-item-age", "amazon-beauty"),  # adopted: the same runs reused
        }
        assert bool(changed) != no_op, f"{model} on {name} changes {changed}"


@pytest.mark.parametrize("dataset", ["amazon-beauty", "ml-100k", "ml-1m"])
def test_every_trained_model_has_a_valid_config_on_each_shipped_dataset(
    dataset: str, tmp_path: Path
) -> None:
    """A model whose overrides clash with what a shipped config adopted later (e.g. ID
    dropout on a head without IDs) would fail only when a long benchmark reaches it."""
    from recllm.bench.accuracy import MODELS, _trials

    args = _search_args(Path(__file__).resolve().parents[2] / "configs", dataset, tmp_path)
    for model, spec in MODELS.items():
        if spec is not None:
            _trials(model, spec, args, [1.0])  # a bad combination raises ConfigError


def test_reuse_from_takes_a_kept_run_of_the_same_config_under_another_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An idea adopted by the shipped config is the same run under another name: with
    --reuse-from, a search finds its kept record by config instead of training again."""
    argv, results = bench_argv(tmp_path)
    idea = [*argv[:-4], "--runs-dir", str(tmp_path / "idea-runs")]
    idea += ["--results-dir", str(tmp_path / "ideas"), "--models", "sasrec-ce"]
    assert main([*idea, "--lr-factors", "1"]) == 0
    kept = json.loads(
        (tmp_path / "ideas" / "toy" / "trials" / "sasrec-ce" / "lr-0.01.json").read_text()
    )

    search = [*argv, "--models", "sasrec-ce", "--lr-factors", "1"]
    assert main([*search, "--reuse-from", str(tmp_path / "ideas")]) == 0
    runs = tmp_path / "runs" / "toy" / "sasrec-ce"
    assert not runs.exists()  # nothing was trained again
    assert (
        json.loads((results / "toy" / "trials" / "sasrec-ce" / "lr-0.01.json").read_text()) == kept
    )

    # a kept run that trains something else is not taken
    reuse = ["--reuse-from", str(tmp_path / "ideas")]
    assert main([*search, *reuse, "--set", "trainer.weight_decay=0.02"]) == 0
    assert (runs / "lr-0.01" / "results.json").is_file()
