"""The training recipe end to end on a tiny backbone and toy data: it learns, it
checkpoints, and a resumed run ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import save_tiny_bert, write_toy_movielens
from safetensors.torch import load_file

from recllm.cli import main
from recllm.config import apply_overrides, from_dict, load_yaml, to_dict
from recllm.errors import ConfigError
from recllm.models.adapter.config import WEIGHTS_NAME
from recllm.recipes.checkpoint import latest_checkpoint
from recllm.recipes.train import TrainConfig, TrainRecipe

CONFIGS = sorted(
    p
    for p in Path(__file__).parents[2].joinpath("configs").rglob("*.yaml")
    if "distill" not in p.parts  # distillation configs: tests/distill
)


def toy_config(tmp_path: Path, out: str, epochs: int = 2, **trainer) -> TrainConfig:
    data = write_toy_movielens(tmp_path / "ml-toy")
    backbone = (
        save_tiny_bert(tmp_path / "tiny-bert")
        if not (tmp_path / "tiny-bert").exists()
        else tmp_path / "tiny-bert"
    )
    raw = {
        "output_dir": str(tmp_path / out),
        "data": {
            "dataset": str(data),
            "cache_dir": str(tmp_path / "cache"),
            "preprocess": {"min_user_interactions": 0, "min_item_interactions": 0},
        },
        "backbone": {"name_or_path": str(backbone)},
        "adapter": {"d_model": 16, "n_heads": 4, "max_len": 8, "dropout": 0.1},
        "encoder": {"n_tokens": 4, "max_length": 16},
        "trainer": {
            "epochs": epochs,
            "batch_size": 8,
            "lr": 0.01,
            "progress": False,
            "tensorboard": False,
            "patience": 10,
            **trainer,
        },
    }
    return from_dict(TrainConfig, raw)


def toy_sasrec_run(tmp_path: Path, epochs: int = 2) -> Path:
    """A small SASRec trained on the toy data; its output_dir (a finished run)."""
    config = toy_config(tmp_path, "sasrec", epochs=epochs)
    config.model = "sasrec"
    config.sasrec.d_model = 16
    config.sasrec.max_len = 8
    run(config)
    return Path(config.output_dir)


def run(config: TrainConfig, resume: bool = False, until_epoch: int | None = None) -> TrainRecipe:
    recipe = TrainRecipe(config, resume=resume)
    recipe.setup()
    recipe.train(until_epoch)
    recipe.cleanup()
    return recipe


def test_training_improves_validation_and_writes_checkpoints(tmp_path: Path) -> None:
    recipe = run(toy_config(tmp_path, "run", epochs=4, loss="ce"))
    history = recipe.state["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["loss"] < history[0]["loss"]
    assert recipe.state["best_ndcg@10"] > 0
    assert latest_checkpoint(Path(recipe.config.output_dir)).name == "epoch-4"
    kept = sorted(p.name for p in (Path(recipe.config.output_dir) / "checkpoints").iterdir())
    assert kept == ["epoch-3", "epoch-4"]  # trainer.keep_checkpoints = 2
    assert (Path(recipe.config.output_dir) / "best" / "adapter_model.safetensors").is_file()
    test = recipe.test_best()
    assert 0.0 <= test.metrics["ndcg@10"] <= 1.0 and test.n_users == 40


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    straight = run(toy_config(tmp_path, "straight", epochs=3))
    interrupted = run(toy_config(tmp_path, "resumed", epochs=3), until_epoch=2)
    # Continue the interrupted run from its epoch-2 checkpoint.
    resumed = run(toy_config(tmp_path, "resumed", epochs=3), resume=True)
    assert interrupted.state["epoch"] == 2 and resumed.state["epoch"] == 3
    a = {n: p for n, p in straight.model.named_parameters() if p.requires_grad}
    b = {n: p for n, p in resumed.model.named_parameters() if p.requires_grad}
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert straight.state["history"][-1]["loss"] == resumed.state["history"][-1]["loss"]


def test_cli_train_evaluate_recommend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = toy_config(tmp_path, "cli", epochs=1)
    yaml_path = tmp_path / "toy.yaml"
    yaml_path.write_text(yaml.safe_dump(to_dict(config)))
    results = tmp_path / "results"
    assert main(["train", str(yaml_path), "trainer.epochs=1", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "recllm-adapter (test" in out and (Path(config.output_dir) / "results.json").is_file()
    record = json.loads((results / "ml-toy" / "recllm-adapter.json").read_text())
    assert set(record["test"]) >= {"recall@10", "recall@20", "ndcg@10", "ndcg@20"}
    assert (
        record["epochs_run"] == 1
        and record["command"].startswith("recllm")
        and record["git_commit"]
    )
    assert main(["evaluate", config.output_dir, "--quiet"]) == 0
    assert "ndcg@10" in capsys.readouterr().out
    assert main(["recommend", config.output_dir, "--user", "1", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "Movie" in lines[0]
    assert main(["recommend", config.output_dir, "--history", "1,2,3", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["recommend", config.output_dir, "--user", "nobody"]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err
    assert main(["recommend", config.output_dir, "--history", "1,9999"]) == 2
    assert "unknown item id(s) ['9999']" in capsys.readouterr().err
    assert main(["train", str(yaml_path), "trainer.bogus=1", "adapter.n_heads=3"]) == 2
    err = capsys.readouterr().err
    assert "trainer.bogus: unknown key" in err and "n_heads (3) must divide" in err


def test_sasrec_baseline_trains_evaluates_and_reloads_without_a_backbone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same recipe trains the SASRec baseline; no language model is loaded."""
    config = toy_config(tmp_path, "sasrec", epochs=6, loss="ce")
    raw = to_dict(config)
    raw["model"] = "sasrec"
    raw["backbone"]["name_or_path"] = str(tmp_path / "no-such-model")  # must not be touched
    raw["sasrec"] = {"d_model": 16, "n_heads": 2, "max_len": 8, "dropout": 0.1}
    yaml_path = tmp_path / "sasrec.yaml"
    yaml_path.write_text(yaml.safe_dump(raw))
    results = tmp_path / "results"
    assert (
        main(["train", str(yaml_path), "--results-dir", str(results), "--name", "sasrec-ce"]) == 0
    )
    assert "sasrec (test" in capsys.readouterr().out
    record = json.loads((results / "ml-toy" / "sasrec-ce.json").read_text())
    assert record["model"] == "sasrec" and record["valid_best"]["ndcg@10"] > 0
    # The toy data moves i -> i + 1: the baseline must beat chance (1 / 30 items) by far.
    assert record["test"]["hit@10"] > 0.6
    assert main(["evaluate", config.output_dir, "--quiet"]) == 0
    assert "sasrec (test)" in capsys.readouterr().out
    assert main(["recommend", config.output_dir, "--history", "1,2,3", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["train", str(yaml_path), "model=gpt", "--overwrite"]) == 2
    assert "model must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["bpr-mf", "lightgcn"])
def test_user_embedding_baselines_train_evaluate_and_recommend(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = toy_config(tmp_path, model, epochs=30, batch_size=64, lr=0.05, weight_decay=0.0)
    raw = to_dict(config)
    raw["model"] = model
    raw["cf"] = {"d_model": 16, "n_layers": 2}
    raw["backbone"]["name_or_path"] = str(tmp_path / "no-such-model")  # must not be touched
    yaml_path = tmp_path / f"{model}.yaml"
    yaml_path.write_text(yaml.safe_dump(raw))
    results = tmp_path / "results"
    assert main(["train", str(yaml_path), "--results-dir", str(results)]) == 0
    record = json.loads((results / "ml-toy" / f"{model}.json").read_text())
    assert record["model"] == model
    # Toy users hold ~8 of 30 items, so a random ranking of the other ~22 gets hit@10
    # about 0.45 and NDCG@10 about 0.2; neighbours in the graph must do far better.
    assert record["test"]["hit@10"] > 0.9 and record["test"]["ndcg@10"] > 0.4
    saved = json.loads((Path(config.output_dir) / "best" / "cf_config.json").read_text())
    assert saved["n_layers"] == (0 if model == "bpr-mf" else 2)
    capsys.readouterr()
    assert main(["evaluate", config.output_dir, "--quiet"]) == 0
    assert f"{model} (test)" in capsys.readouterr().out
    assert main(["recommend", config.output_dir, "--user", "1", "-k", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["recommend", config.output_dir, "--history", "1,2"]) == 2
    assert "give --user" in capsys.readouterr().err


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    config = from_dict(TrainConfig, load_yaml(path))
    assert config.output_dir.startswith("runs/")


def test_overrides_and_errors() -> None:
    data = apply_overrides(
        {"trainer": {"lr": 0.1}}, ["trainer.lr=3e-4", "adapter.use_metadata=false"]
    )
    assert data == {"trainer": {"lr": "3e-4"}, "adapter": {"use_metadata": False}}  # YAML 1.1
    assert from_dict(TrainConfig, data | {"adapter": {}}).trainer.lr == pytest.approx(3e-4)
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["trainer.lr"])
    with pytest.raises(ConfigError) as info:
        from_dict(
            TrainConfig,
            {"trainer": {"lr": "fast", "loss": "mse"}, "adapter": {"use_metadata": False}},
        )
    text = str(info.value)
    assert (
        "trainer.lr: expected float" in text
        and "loss" in text
        and "use_cross_attention needs use_metadata" in text
    )


def test_a_bad_section_is_reported_not_met_by_checks_across_sections() -> None:
    """generation.weight > 0 checks trainer.windows; with the trainer section itself
    invalid that check must not crash, and the trainer's problem is the one named."""
    with pytest.raises(ConfigError, match=r"trainer\.epochs must be >= 1, got 0"):
        from_dict(TrainConfig, {"trainer": {"epochs": 0}, "generation": {"weight": 0.3}})
    with pytest.raises(ConfigError, match=r"generation\.weight > 0 needs trainer\.windows 'last'"):
        from_dict(TrainConfig, {"trainer": {"windows": "all"}, "generation": {"weight": 0.3}})


def test_output_dir_guards_and_final_validation(tmp_path: Path) -> None:
    first = run(toy_config(tmp_path, "guarded", epochs=1, eval_every=5))
    # epochs < eval_every: the final epoch is still validated and saved as best.
    assert first.state["best_epoch"] == 1
    with pytest.raises(ConfigError, match="already holds a run"):
        TrainRecipe(toy_config(tmp_path, "guarded", epochs=1)).setup()
    with pytest.raises(ConfigError, match=r"config differs .*trainer\.lr"):
        TrainRecipe(toy_config(tmp_path, "guarded", epochs=1, lr=0.5), resume=True).setup()
    replaced = TrainRecipe(toy_config(tmp_path, "guarded", epochs=1), overwrite=True)
    replaced.setup()
    assert replaced.state["epoch"] == 0


def test_a_run_started_before_a_setting_existed_resumes_at_its_default(tmp_path: Path) -> None:
    """A setting added since a run started is read as its default, not as a change: the
    run folder's config.json lacks it, and resuming must not refuse the run."""
    config = toy_config(tmp_path, "older", epochs=2, eval_every=1)
    run(config, until_epoch=1)
    saved = Path(config.output_dir) / "config.json"
    started = json.loads(saved.read_text())
    del started["adapter"]["item_age_buckets"]  # as written before the setting existed
    saved.write_text(json.dumps(started))
    resumed = run(toy_config(tmp_path, "older", epochs=2, eval_every=1), resume=True)
    assert resumed.state["epoch"] == 2
    started["adapter"]["item_age_buckets"] = 4  # a real change still refuses
    saved.write_text(json.dumps(started))
    with pytest.raises(ConfigError, match=r"config differs .*adapter\.item_age_buckets"):
        TrainRecipe(toy_config(tmp_path, "older", epochs=3), resume=True).setup()
    started["adapter"]["retired_knob"] = 1  # a setting this version no longer has
    saved.write_text(json.dumps(started))
    with pytest.raises(
        ConfigError, match=r"(?s)resume: .*config.json is not a config .*retired_knob"
    ):
        TrainRecipe(toy_config(tmp_path, "older", epochs=3), resume=True).setup()


def test_early_stop_survives_resume(tmp_path: Path) -> None:
    stopped = run(toy_config(tmp_path, "stop", epochs=6, patience=1, lr=1e-6))
    assert stopped.state["stopped"] and stopped.state["epoch"] < 6
    again = run(toy_config(tmp_path, "stop", epochs=6, patience=1, lr=1e-6), resume=True)
    assert again.state["epoch"] == stopped.state["epoch"]


def cold_start_recipe(config: TrainConfig) -> TrainRecipe:
    """``config`` on a cold-start split holding out a fifth of the items, set up."""
    config.data.split.protocol = "cold_start"
    config.data.split.cold_share = 0.2
    recipe = TrainRecipe(config)
    recipe.setup()
    return recipe


def test_cold_start_items_stay_out_of_training(tmp_path: Path) -> None:
    """On a cold-start split the held-out items are never scored by the training loss,
    so the ID embeddings of the items training never saw do not move."""
    config = toy_config(tmp_path, "cold", epochs=1, loss="ce", weight_decay=0.0)
    config.model = "sasrec"
    config.sasrec.d_model = 16
    config.sasrec.max_len = 8
    recipe = cold_start_recipe(config)
    cold = recipe.split.cold_items
    pool = recipe.model.training_items
    assert len(cold) and pool is not None
    assert set(pool.tolist()) == set(range(recipe.split.n_items)) - set(cold.tolist())
    before = recipe.model.items.weight.detach().clone()
    recipe.train()
    after = recipe.model.items.weight.detach()
    moved = (after - before).abs().sum(1) > 0
    assert not moved[torch.from_numpy(cold)].any()
    assert moved[pool].all()
    recipe.cleanup()


def test_a_learned_missing_id_stands_in_for_the_cold_start_items(tmp_path: Path) -> None:
    """``adapter.missing_id: learned`` on a cold-start split: exactly the held-out items
    are marked as having no trained ID, the stand-in trains (from the dropped IDs), and
    the saved weights carry the mark for serving."""
    config = toy_config(tmp_path, "cold-lm", epochs=1, loss="ce")
    config.adapter.missing_id = "learned"
    config.adapter.item_id_dropout = 0.5
    recipe = cold_start_recipe(config)
    adapter = recipe.model.adapter
    assert adapter.has_id is not None and adapter.missing_id is not None
    n_items = recipe.split.n_items
    untrained = torch.nonzero(~adapter.has_id[:n_items]).squeeze(1)
    assert len(untrained) and set(untrained.tolist()) == set(recipe.split.cold_items.tolist())
    before = adapter.missing_id.detach().clone()
    recipe.train()
    assert not torch.equal(adapter.missing_id.detach(), before)
    saved = load_file(str(Path(config.output_dir) / "best" / WEIGHTS_NAME))
    assert torch.equal(saved["has_id"], adapter.has_id)
    recipe.cleanup()


def test_item_age_groups_come_from_the_training_split(tmp_path: Path) -> None:
    """``adapter.item_age_buckets``: the recipe groups the items by their first training
    interaction; the cold-start split's held-out items, never trained on, are newest."""
    config = toy_config(tmp_path, "aged", epochs=1, loss="ce")
    config.adapter.item_age_buckets = 3
    recipe = cold_start_recipe(config)
    adapter = recipe.model.adapter
    assert adapter.age_bucket is not None
    split = recipe.split
    groups = adapter.age_bucket[: split.n_items].numpy()
    assert set(groups[split.cold_items].tolist()) == {2}
    first = split.first_seen()
    seen = ~np.isnan(first)
    assert not seen[split.cold_items].any()
    oldest, newest = np.nanargmin(first), np.nanargmax(first)
    assert groups[oldest] == 0 and groups[newest] == 2
    recipe.train()
    saved = load_file(str(Path(config.output_dir) / "best" / WEIGHTS_NAME))
    assert torch.equal(saved["age_bucket"], adapter.age_bucket)
    recipe.cleanup()

    control = toy_config(tmp_path, "aged-sasrec", epochs=1, loss="ce")
    control.model = "sasrec"
    control.sasrec.item_age_buckets = 3
    sasrec = cold_start_recipe(control).model
    assert sasrec.age_bucket is not None
    assert torch.equal(sasrec.age_bucket, adapter.age_bucket)  # the same split, the same groups


def test_backbone_lr_gives_the_language_model_its_own_rate(tmp_path: Path) -> None:
    recipe = TrainRecipe(
        toy_config(tmp_path, "two-rates", epochs=1, lr=0.01, backbone_lr=1e-4, warmup_ratio=0.0)
    )
    recipe.config.backbone.finetune = "full"
    recipe.setup()
    head, backbone = recipe.optimizer.param_groups
    assert backbone["initial_lr"] == pytest.approx(1e-4) and head["initial_lr"] == 0.01
    backbone_ids = {id(p) for p in recipe.model.backbone.parameters()}
    assert {id(p) for p in backbone["params"]} == backbone_ids
    assert not backbone_ids & {id(p) for p in head["params"]}
    recipe.train()
    recipe.cleanup()

    frozen = toy_config(tmp_path, "frozen", epochs=1, backbone_lr=1e-4)
    with pytest.raises(ConfigError, match="backbone_lr is set but the model has no trainable"):
        TrainRecipe(frozen).setup()
    with pytest.raises(ConfigError, match="backbone_lr must be > 0"):
        toy_config(tmp_path, "bad", backbone_lr=0.0)


def test_a_log_gets_one_line_per_epoch_and_no_progress_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """With progress on but stderr not a terminal (CI, nohup), no bar writes a line per
    batch, ours or the Hugging Face libraries'; the log has one line per epoch with its
    figures and a final summary."""
    raw = to_dict(toy_config(tmp_path, "run", epochs=3, progress=True))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    with caplog.at_level("INFO"):
        assert main(["train", str(tmp_path / "run.yaml")]) == 0
    assert "\r" not in capsys.readouterr().err
    messages = [r.getMessage() for r in caplog.records]
    epochs = [m for m in messages if m.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("loss" in line and "valid recall@10" in line for line in epochs)
    assert sum(m.startswith("trained 3 epochs") for m in messages) == 1
    assert sum(m.startswith("evaluate[test]") for m in messages) == 1


def test_cpu_training_uses_eager_attention_unless_the_config_names_one(tmp_path: Path) -> None:
    """Flash attention's backward is slow on a CPU at these lengths: a backbone left at
    the library's choice trains eager; an explicit choice is kept."""
    default = TrainRecipe(toy_config(tmp_path, "default-attention", epochs=1))
    default.setup()
    assert default.model.backbone.attn_implementation == "eager"
    default.cleanup()

    chosen = toy_config(tmp_path, "sdpa", epochs=1)
    chosen.backbone.attn_implementation = "sdpa"
    kept = TrainRecipe(chosen)
    kept.setup()
    assert kept.model.backbone.attn_implementation == "sdpa"
    kept.cleanup()
