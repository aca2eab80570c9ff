"""The tiny end-to-end runs on a CUDA GPU (``benchmarks/gpu_check.sh`` runs this file):
training, bf16 autocast, checkpoint and best-weights reload, and evaluation on the GPU
agreeing with the same weights evaluated on the CPU. Skipped where torch sees no GPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers import save_tiny_bert, write_toy_movielens

from recllm.config import from_dict
from recllm.models.backbone import BackboneConfig, load_backbone
from recllm.models.item_encoder import encode_items
from recllm.recipes.train import TrainConfig, TrainRecipe

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")


def tiny_config(root: Path, out: str, **trainer: object) -> TrainConfig:
    backbone = root / "tiny-bert"
    if not backbone.exists():
        save_tiny_bert(backbone)
    raw = {
        "output_dir": str(root / out),
        "data": {
            "dataset": str(write_toy_movielens(root / "ml-toy")),
            "cache_dir": str(root / "cache"),
            "preprocess": {"min_user_interactions": 0, "min_item_interactions": 0},
        },
        "backbone": {"name_or_path": str(backbone)},
        "adapter": {"d_model": 16, "n_heads": 4, "max_len": 8},
        "encoder": {"n_tokens": 4, "max_length": 16},
        "trainer": {
            "epochs": 2,
            "batch_size": 8,
            "lr": 0.01,
            "loss": "ce",
            "progress": False,
            "tensorboard": False,
            **trainer,
        },
    }
    return from_dict(TrainConfig, raw)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_train_and_evaluate_on_the_gpu(tmp_path: Path, bf16: bool) -> None:
    recipe = TrainRecipe(tiny_config(tmp_path, "gpu", device="cuda", bf16=bf16))
    recipe.setup()
    recipe.train()
    assert next(recipe.model.parameters()).device.type == "cuda"
    assert all(math.isfinite(h["loss"]) for h in recipe.state["history"])
    on_gpu = recipe.test_best()
    recipe.cleanup()
    assert 0.0 <= on_gpu.metrics["ndcg@10"] <= 1.0 and on_gpu.n_users == 40
    # the same best weights, evaluated on the CPU
    config = tiny_config(tmp_path, "gpu", device="cpu", bf16=bf16)
    cpu = TrainRecipe(config, resume=True)
    cpu.setup()
    on_cpu = cpu.test_best()
    cpu.cleanup()
    for name, value in on_cpu.metrics.items():
        assert on_gpu.metrics[name] == pytest.approx(value, abs=0.03), name  # ties may flip


def test_item_encoding_on_the_gpu_matches_the_cpu(tmp_path: Path) -> None:
    texts = [f"title {'abcdefgh'[i % 8] * (1 + i % 5)} | genre {i % 3}" for i in range(20)]
    model = save_tiny_bert(tmp_path / "tiny-bert")
    encoded = {}
    for device in ("cpu", "cuda"):
        backbone = load_backbone(BackboneConfig(name_or_path=str(model))).to(device)
        encoded[device] = encode_items(
            backbone, texts, n_tokens=3, max_length=16, batch_size=8, progress=False
        )
    torch.testing.assert_close(encoded["cuda"].pooled, encoded["cpu"].pooled, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(encoded["cuda"].tokens, encoded["cpu"].tokens, rtol=1e-4, atol=1e-4)
    assert torch.equal(encoded["cuda"].token_mask, encoded["cpu"].token_mask)
