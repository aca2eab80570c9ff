"""The paper setting's memory plan: parameter counts from the real architectures (meta
device), the per-GPU arithmetic of FSDP and DDP, the shipped paper configs it reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from recllm.bench import run_benchmark
from recllm.bench.memory_plan import (
    GIB,
    LLAMA_2_13B,
    Shape,
    count_backbone,
    decoder_layer_activations,
    encoder_layer_activations,
    item_encoding_bytes,
    lora_parameters,
    plan,
)
from recllm.config import from_dict, load_yaml
from recllm.recipes.train import TrainConfig

CONFIGS = Path(__file__).parents[2] / "configs"


def test_the_paper_teacher_config_loads_and_shards() -> None:
    config = from_dict(TrainConfig, load_yaml(CONFIGS / "paper-llama2-13b.yaml"))
    assert config.trainer.strategy == "fsdp" and config.trainer.bf16
    assert config.backbone.name_or_path == "meta-llama/Llama-2-13b-hf"
    assert config.backbone.finetune == "lora" and config.backbone.dtype == "bfloat16"


def test_llama_2_13b_counts_as_13b_and_its_lora_as_r_times_in_plus_out() -> None:
    params, linears, shape = count_backbone(LLAMA_2_13B)
    assert shape == Shape(layers=40, hidden=5120, intermediate=13824, heads=40)
    # embeddings + 40 x (4 attention h^2 + 3 MLP h i + 2 norms h) + the final norm
    h, i = 5120, 13824
    assert params == 32000 * h + 40 * (4 * h * h + 3 * h * i + 2 * h) + h
    assert lora_parameters(linears, ["q_proj", "v_proj"], 16) == 40 * 2 * 16 * (h + h)
    assert lora_parameters(linears, ["nothing"], 16) == 0


def test_activation_and_buffer_formulas() -> None:
    shape = Shape(layers=1, hidden=4, intermediate=8, heads=2)
    # 2 bytes x s b (9 h + 4 i), no LoRA, no eager attention
    assert decoder_layer_activations(3, 2, shape, False, 0, 4) == 2 * 3 * 2 * (36 + 32)
    eager = decoder_layer_activations(3, 2, shape, True, 0, 4)
    assert eager - decoder_layer_activations(3, 2, shape, False, 0, 4) == 2 * 2 * 9 * 2
    with_lora = decoder_layer_activations(3, 2, shape, False, 2, 4)
    assert with_lora - decoder_layer_activations(3, 2, shape, False, 0, 4) == 2 * 6 * (12 + 8)
    assert encoder_layer_activations(3, 2, shape) == 3 * 2 * 4 * 34 + 5 * 2 * 9 * 2
    # (N + 1) rows: fp32 pooled and tokens, a bool mask
    assert item_encoding_bytes(9, 2, 4) == 10 * 4 * 4 + 10 * 2 * 4 * 4 + 10 * 2


@pytest.fixture(scope="module")
def paper_plan() -> dict:
    return plan(CONFIGS, gpus=8, n_items=1000)


def test_fsdp_divides_the_teacher_by_the_gpus_and_ddp_replicates_the_student(
    paper_plan: dict,
) -> None:
    rows = paper_plan["rows"]
    sharded, whole = rows["teacher, FSDP on 8 GPUs"], rows["teacher, one GPU (no sharding)"]
    student = rows["student, DDP on 8 GPUs"]
    assert sharded["parameters"] == whole["parameters"]
    assert 12.5e9 < sharded["parameters"]["total"] < 13.5e9
    assert 600e6 < student["parameters"]["backbone"] < 800e6  # the ~700M student
    for part in ("gradients", "optimizer_states"):
        assert sharded["per_gpu_gib"][part] == pytest.approx(
            whole["per_gpu_gib"][part] / 8, abs=0.01
        )
    assert sharded["per_gpu_gib"]["weights"] == pytest.approx(
        whole["per_gpu_gib"]["weights"] / 8, abs=0.01
    )
    assert sharded["sequences_per_gpu"] == 32 // 8 and whole["sequences_per_gpu"] == 32
    assert sharded["per_gpu_gib"]["gathered_layers"] > 0 == whole["per_gpu_gib"]["gathered_layers"]
    # DDP: fp32 weights, gradients + buckets, two Adam moments: 4 + 8 + 8 bytes a weight
    trainable = student["parameters"]["trainable"]
    assert student["per_gpu_gib"]["optimizer_states"] == pytest.approx(
        trainable * 8 / GIB, abs=0.01
    )
    assert student["per_gpu_gib"]["gradients"] == pytest.approx(trainable * 8 / GIB, abs=0.01)
    for row in rows.values():
        parts = {k: v for k, v in row["per_gpu_gib"].items() if k != "total"}
        assert row["per_gpu_gib"]["total"] == pytest.approx(sum(parts.values()), abs=0.05)
        assert row["fits"] == (row["per_gpu_gib"]["total"] < paper_plan["gpu_memory_gib"])


def test_bench_memory_plan_writes_its_results_file(tmp_path: Path) -> None:
    args = argparse.Namespace(configs=CONFIGS, gpus=4, results_dir=tmp_path)
    run_benchmark("memory-plan", args)
    record = json.loads((tmp_path / "scale" / "memory_plan.json").read_text())
    assert record["gpus"] == 4 and "teacher, FSDP on 4 GPUs" in record["rows"]
    assert record["catalogue_items"] > 20_000  # the ML-20M-sized catalogue
    assert "AdamW" in record["assumptions"]


def test_an_unknown_teacher_backbone_is_a_clear_error(tmp_path: Path) -> None:
    from recllm.errors import RecLLMError

    (tmp_path / "distill").mkdir()
    text = (CONFIGS / "paper-llama2-13b.yaml").read_text()
    (tmp_path / "paper-llama2-13b.yaml").write_text(text.replace("Llama-2-13b-hf", "Other"))
    student = CONFIGS / "distill" / "paper-llama2-13b.yaml"
    (tmp_path / "distill" / "paper-llama2-13b.yaml").write_text(student.read_text())
    with pytest.raises(RecLLMError, match="no architecture known for 'meta-llama/Other'"):
        plan(tmp_path, gpus=8, n_items=10)
