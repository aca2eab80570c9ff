"""The memory plan of the paper's setting, per GPU, computed from the shipped configs.

``recllm bench memory-plan`` reads ``configs/paper-llama2-13b.yaml`` (the LLaMA-2-13B
teacher: LoRA, bf16, ``trainer.strategy: fsdp``) and ``configs/distill/paper-llama2-13b.yaml``
(the ~700M BERT student, trained data-parallel under DDP) and writes, for each, the bytes
one GPU holds: weights, gradients, optimiser states, activations, FSDP's gathered layers
and the item-encoding buffers of an ML-20M-sized catalogue. Parameter counts are exact:
the backbones and the adapter are built on the ``meta`` device (no memory, no download)
from their architectures; the activation figures are estimates whose formulas are below.

Assumptions (each also in the results file):

* AdamW: two fp32 moments per trainable weight; trainable weights in fp32 (PEFT keeps
  LoRA weights in fp32 under a bf16 base), frozen weights in the backbone's dtype.
* FSDP2 (``recllm.recipes.parallel.wrap``): every weight, gradient and moment sharded over
  the GPUs; each layer gathered whole in bf16 for its forward and backward, with the next
  one prefetched (two layers' weights at a time); buffers (the item encodings) replicated.
* DDP: everything replicated, plus the gradient buckets (one more fp32 copy of the
  gradients, DDP's default ``gradient_as_bucket_view=False``).
* Activations kept for backward, bf16, without recomputation: a LLaMA layer keeps
  ``2 s b (9 h + 4 i)`` bytes (the norms' inputs, q/k/v/o inputs, q, k, v, the attention
  output, and the SwiGLU's gate, up, SiLU and product), plus each LoRA target's dropout
  mask and low-rank input; a BERT layer ``s b h 34 + 5 a s^2 b`` (Korthikanti et al.,
  2022, "Reducing activation recomputation in large transformer models", eq. 1); eager
  attention adds its ``a s^2 b`` probabilities (2 bytes) to the LLaMA layer. ``s`` is the
  adapter's sequence length, ``b`` the GPU's share of the global batch. The ranking
  logits ``(b s, N)`` count twice in fp32 (values and gradient). The adapter's own
  activations (width ``d_model``) are not counted.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recllm.config import from_dict, load_yaml
from recllm.data.synth import SynthConfig
from recllm.errors import RecLLMError

RESULTS_FILE = "scale/memory_plan.json"
GIB = 1024**3
GPU_MEMORY_GIB = 80  # an 80 GB A100 / H100, the paper setting's device
TEACHER_CONFIG = "paper-llama2-13b.yaml"
STUDENT_CONFIG = "distill/paper-llama2-13b.yaml"
# config.json of meta-llama/Llama-2-13b-hf (architecture only: the weights are gated, and
# the plan needs no download).
LLAMA_2_13B: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 5120,
    "intermediate_size": 13824,
    "num_hidden_layers": 40,
    "num_attention_heads": 40,
    "num_key_value_heads": 40,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
}
KNOWN_ARCHITECTURES = {"meta-llama/Llama-2-13b-hf": LLAMA_2_13B}
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Shape:
    """What the activation formulas need of a transformer backbone."""

    layers: int
    hidden: int
    intermediate: int
    heads: int


def count_backbone(architecture: dict[str, Any]) -> tuple[int, list[tuple[str, int, int]], Shape]:
    """Parameters of the Hugging Face model ``architecture`` describes, built on the meta
    device; its linear layers as ``(name, in, out)`` (for LoRA); its shape."""
    import torch
    from transformers import AutoConfig, AutoModel

    fields = dict(architecture)
    config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    linears = [
        (name, m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
    ]
    shape = Shape(
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        config.num_attention_heads,
    )
    return sum(p.numel() for p in model.parameters()), linears, shape


def count_adapter(adapter: Any, n_items: int, meta_dim: int, backbone_hidden: int) -> int:
    """Parameters of the RecAdapter ``adapter`` (an AdapterConfig) over ``n_items`` items."""
    import copy

    import torch

    from recllm.models.adapter.model import RecAdapter

    config = copy.deepcopy(adapter)
    config.n_items, config.meta_dim, config.backbone_hidden = n_items, meta_dim, backbone_hidden
    with torch.device("meta"):
        return sum(p.numel() for p in RecAdapter(config).parameters())


def lora_parameters(linears: list[tuple[str, int, int]], targets: list[str], rank: int) -> int:
    """LoRA's A and B matrices, ``rank (in + out)``, on every linear named by a target."""
    return sum(rank * (i + o) for name, i, o in linears if name.split(".")[-1] in targets)


def decoder_layer_activations(
    s: int, b: int, shape: Shape, eager: bool, lora_targets: int, rank: int
) -> int:
    """Bytes one LLaMA layer keeps for backward (bf16; see the module docstring)."""
    h, i = shape.hidden, shape.intermediate
    kept = 2 * s * b * (9 * h + 4 * i)
    kept += lora_targets * s * b * (h + 2 * h + 2 * rank)  # dropout mask, its output, A x
    if eager:
        kept += 2 * shape.heads * s * s * b
    return kept


def encoder_layer_activations(s: int, b: int, shape: Shape) -> int:
    """Bytes one BERT layer keeps for backward (Korthikanti et al. 2022, eq. 1)."""
    return s * b * shape.hidden * 34 + 5 * shape.heads * s * s * b


def item_encoding_bytes(n_items: int, n_tokens: int, meta_dim: int) -> int:
    """The model's metadata buffers, fp32 pooled and tokens plus the bool mask, padding
    row included (``RecLLMModel``): replicated on every GPU under DDP and FSDP alike."""
    rows = n_items + 1
    return rows * meta_dim * 4 + rows * n_tokens * meta_dim * 4 + rows * n_tokens


def plan(configs: Path, gpus: int, n_items: int) -> dict[str, Any]:
    """The per-GPU memory of the teacher (FSDP and, for contrast, one GPU) and of the
    student (DDP) on ``gpus`` GPUs over a catalogue of ``n_items`` items."""
    from recllm.distill.config import DistillConfig
    from recllm.distill.student import student_architecture
    from recllm.models.backbone import DECODER_LORA_TARGETS
    from recllm.recipes.train import TrainConfig

    teacher_path, student_path = configs / TEACHER_CONFIG, configs / STUDENT_CONFIG
    teacher = from_dict(TrainConfig, load_yaml(teacher_path))
    student = from_dict(DistillConfig, load_yaml(student_path))
    name = teacher.backbone.name_or_path
    if name not in KNOWN_ARCHITECTURES:
        known = sorted(KNOWN_ARCHITECTURES)
        raise RecLLMError(f"{teacher_path}: no architecture known for {name!r} (have {known})")
    if teacher.backbone.finetune != "lora":
        got = teacher.backbone.finetune
        raise RecLLMError(f"{teacher_path}: the plan assumes a LoRA teacher, got {got!r}")
    architecture = KNOWN_ARCHITECTURES[name]
    backbone_params, linears, shape = count_backbone(architecture)
    targets = teacher.backbone.lora_target_modules or DECODER_LORA_TARGETS["llama"]
    r = teacher.backbone.lora_r
    lora = lora_parameters(linears, targets, r)
    n_targets = sum(1 for n, _, _ in linears if n.split(".")[-1] in targets) // shape.layers
    meta_dim, n_tokens, s = shape.hidden, teacher.encoder.n_tokens, teacher.adapter.max_len
    teacher_adapter = count_adapter(teacher.adapter, n_items, meta_dim, shape.hidden)
    eager = teacher.backbone.attn_implementation == "eager"
    encodings = item_encoding_bytes(n_items, n_tokens, meta_dim)
    layer_weights = (backbone_params - architecture["vocab_size"] * shape.hidden) / shape.layers

    def teacher_row(world: int) -> dict[str, Any]:
        b = max(teacher.trainer.batch_size // world, 1)
        trainable = lora + teacher_adapter
        frozen_bytes = backbone_params * BYTES[teacher.backbone.dtype]
        parts = {
            "weights": (frozen_bytes + trainable * 4) / world,
            "gradients": trainable * 4 / world,
            "optimizer_states": trainable * 8 / world,
            "activations": shape.layers
            * decoder_layer_activations(s, b, shape, eager, n_targets, r)
            + 2 * b * s * n_items * 4,
            "gathered_layers": 2 * layer_weights * 2 if world > 1 else 0,
            "item_encodings": encodings,
        }
        params = {
            "total": backbone_params + trainable,
            "frozen": backbone_params,
            "lora": lora,
            "adapter_and_head": teacher_adapter,
            "trainable": trainable,
        }
        return _row("fsdp" if world > 1 else "one GPU", world, b, s, parts, params)

    student_arch = student_architecture(student.student, max(s, 8))
    student_params, _, student_shape = count_backbone(student_arch)
    student_adapter = count_adapter(
        _student_adapter(teacher.adapter, student), n_items, meta_dim, student_shape.hidden
    )
    world = gpus
    b = max(student.trainer.batch_size // world, 1)
    trainable = student_params + student_adapter
    parts = {
        "weights": trainable * 4,
        "gradients": trainable * 4 * 2,  # the gradients and DDP's buckets
        "optimizer_states": trainable * 8,
        "activations": student_shape.layers * encoder_layer_activations(s, b, student_shape)
        + 2 * b * s * n_items * 4,
        "gathered_layers": 0,
        "item_encodings": encodings,
    }
    params = {
        "total": trainable,
        "backbone": student_params,
        "adapter_and_head": student_adapter,
        "trainable": trainable,
    }
    student_row = _row("ddp", world, b, s, parts, params)
    return {
        "configs": {"teacher": str(teacher_path), "student": str(student_path)},
        "gpus": gpus,
        "gpu_memory_gib": GPU_MEMORY_GIB,
        "catalogue_items": n_items,
        "teacher_backbone": {"name": name, "architecture": architecture},
        "rows": {
            f"teacher, FSDP on {gpus} GPUs": teacher_row(gpus),
            "teacher, one GPU (no sharding)": teacher_row(1),
            f"student, DDP on {gpus} GPUs": student_row,
        },
        "assumptions": __doc__.split("Assumptions (each also in the results file):")[1].strip(),
    }


def _student_adapter(adapter: Any, student: Any) -> Any:
    import copy

    config = copy.deepcopy(adapter)
    config.d_model, config.n_heads = student.student.d_model, student.student.adapter_heads
    return config


def _row(
    strategy: str, gpus: int, b: int, s: int, parts: Mapping[str, float], params: dict[str, int]
) -> dict[str, Any]:
    gib = {k: round(v / GIB, 2) for k, v in parts.items()}
    total = sum(parts.values()) / GIB
    return {
        "strategy": strategy,
        "gpus": gpus,
        "sequences_per_gpu": b,
        "sequence_length": s,
        "parameters": params,
        "per_gpu_gib": {**gib, "total": round(total, 2)},
        "fits": total < GPU_MEMORY_GIB,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark entry point: the plan for ``--gpus`` GPUs from the configs in ``--configs``,
    over the ML-20M-sized catalogue of :class:`SynthConfig`."""
    figures = plan(Path(args.configs), int(args.gpus), SynthConfig().n_items)
    for label, row in figures["rows"].items():
        parts = ", ".join(f"{k} {v:g}" for k, v in row["per_gpu_gib"].items())
        print(f"{label}: {parts} GiB per GPU")
    return figures
