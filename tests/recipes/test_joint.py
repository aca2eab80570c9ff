"""Joint training of ranking and explanation (L_rec + w_gen L_gen) on toy data: L_gen
reaches the adapter through the user vector, the generator is checkpointed and resumed
with the model, and the best epoch's generator is an explainer that loads and explains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from recipes.test_train import run, toy_config

from recllm.errors import ConfigError
from recllm.explain.generator import GeneratorConfig
from recllm.explain.joint import EXPLAINER_DIR, GenerationConfig
from recllm.recipes.explain import Explainer, pair_for
from recllm.recipes.inference import user_history
from recllm.recipes.train import TrainConfig, TrainRecipe


def joint_config(tmp_path: Path, out: str, epochs: int = 2) -> TrainConfig:
    config = toy_config(tmp_path, out, epochs=epochs, loss="ce")
    config.generation = GenerationConfig(
        weight=0.3, generator=GeneratorConfig(d_model=32, n_heads=2, max_target=24)
    )
    return config


def test_generation_loss_reaches_the_adapter_through_the_user_vector(tmp_path: Path) -> None:
    recipe = TrainRecipe(joint_config(tmp_path, "joint"))
    recipe.setup()
    assert recipe.generation is not None
    batch = next(iter(recipe.loader))
    output = recipe.model(batch.inputs, batch.weights, batch.mask)
    loss_gen = recipe.generation.loss(batch, output)
    loss_gen.backward()
    aggregator = recipe.model.adapter.aggregator
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in aggregator.parameters())
    generator_params = {id(p) for p in recipe.generation.generator.parameters()}
    optimised = {id(p) for group in recipe.optimizer.param_groups for p in group["params"]}
    assert generator_params <= optimised


def test_joint_run_trains_saves_an_explainer_and_resumes_exactly(tmp_path: Path) -> None:
    full = run(joint_config(tmp_path, "full", epochs=3))
    history = full.state["history"]
    assert all("loss_gen" in h for h in history)
    assert history[-1]["loss_gen"] < history[0]["loss_gen"]
    explainer = Explainer.load(Path(full.config.output_dir) / EXPLAINER_DIR)
    _, owned, _ = user_history(explainer.run, "1")
    items = explainer.run.dataset.items["item_id"].astype(str)
    new = next(items.iloc[i] for i in range(len(items)) if i not in set(owned.tolist()))
    (text,) = explainer.explain([pair_for(explainer, "1", new)], verify=True)
    assert isinstance(text, str) and text

    run(joint_config(tmp_path, "resumed", epochs=3), until_epoch=1)
    resumed = run(joint_config(tmp_path, "resumed", epochs=3), resume=True)
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_generation_needs_the_adapter_model() -> None:
    with pytest.raises(ConfigError, match="needs model recllm-adapter"):
        TrainConfig(model="sasrec", generation=GenerationConfig(weight=0.3))
