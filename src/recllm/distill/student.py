"""The student: a small BERT-architecture RecLLM-Adapter described as an ordinary
training config, so a student run loads, evaluates and serves like any other run.

Its backbone is built from an architecture (no pretrained weights; every weight trains
and is saved with the run) and it reads the metadata embeddings that the teacher's
pretrained backbone made (``encoder.backbone``), so a new item needs only its text
encoded, never student retraining.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch

from recllm.distill.config import DistillConfig, StudentConfig
from recllm.errors import ConfigError
from recllm.models.backbone import BackboneConfig
from recllm.models.recllm import RecLLMModel
from recllm.recipes.train import TrainConfig

log = logging.getLogger(__name__)


def student_architecture(student: StudentConfig, max_positions: int) -> dict[str, Any]:
    """The transformers config (as a dict) of the student backbone."""
    return {
        "model_type": "bert",
        "num_hidden_layers": student.layers,
        "hidden_size": student.hidden,
        "num_attention_heads": student.heads,
        "intermediate_size": student.intermediate,
        "vocab_size": student.vocab_size,
        "max_position_embeddings": max_positions,
    }


def student_train_config(teacher: TrainConfig, config: DistillConfig) -> TrainConfig:
    """The student's run config: the teacher's data and split, a student backbone and
    adapter, the teacher's item encoder, and the distillation run's trainer."""
    if teacher.model != "recllm-adapter":
        raise ConfigError(
            f"the teacher must be a RecLLM-Adapter run, {config.teacher} trained {teacher.model!r}"
        )
    student = config.student
    adapter = copy.deepcopy(teacher.adapter)
    adapter.d_model = student.d_model
    adapter.n_heads = student.adapter_heads
    if adapter.prompt:
        log.warning("the student has no tokenizer: the teacher's prompt is not given to it")
        adapter.prompt = ""
    # filled in again by the model from the student's own backbone and the encodings
    adapter.backbone, adapter.backbone_hidden = "", 0
    positions = max(adapter.max_len, 8)
    backbone = BackboneConfig(
        finetune="full",
        # attention maps for distillation need eager attention; serving may switch to sdpa
        attn_implementation="eager",
        architecture=student_architecture(student, positions),
    )
    encoder = copy.deepcopy(teacher.encoder)
    encoder.backbone = encoder.backbone or copy.deepcopy(teacher.backbone)
    return TrainConfig(
        output_dir=config.output_dir,
        model="recllm-adapter",
        data=copy.deepcopy(teacher.data),
        backbone=backbone,
        adapter=adapter,
        encoder=encoder,
        trainer=copy.deepcopy(config.trainer),
    )


def layer_map(student: StudentConfig, teacher_layers: int) -> list[int]:
    """The teacher layer each student layer learns from: ``student.layer_map`` or evenly
    spaced ending at the last teacher layer (as DistilBERT keeps every other layer)."""
    if student.layer_map is not None:
        bad = [i for i in student.layer_map if not 0 <= i < teacher_layers]
        if bad:
            raise ConfigError(
                f"student.layer_map {student.layer_map} names layers the teacher does not have "
                f"(it has {teacher_layers}: 0..{teacher_layers - 1})"
            )
        return list(student.layer_map)
    return [round((i + 1) * teacher_layers / student.layers) - 1 for i in range(student.layers)]


def n_layers(model: RecLLMModel) -> int:
    return int(model.backbone.base_model.config.num_hidden_layers)


def init_from_teacher(student: RecLLMModel, teacher: RecLLMModel, mapping: list[int]) -> list[str]:
    """Copy every teacher weight whose name (after layer renumbering) and shape match.

    Student backbone layer ``i`` takes teacher layer ``mapping[i]``; embeddings and the
    adapter are matched by name. Returns the names copied (empty when no shape allows,
    e.g. a narrower student). Only works between models of one architecture family."""
    teacher_state = teacher.state_dict()
    renamed = {f".layer.{s}.": f".layer.{t}." for s, t in enumerate(mapping)}
    copied = []
    with torch.no_grad():
        for name, tensor in student.state_dict().items():
            source = name
            for student_part, teacher_part in renamed.items():
                if name.startswith("backbone.") and student_part in name:
                    source = name.replace(student_part, teacher_part)
                    break
            value = teacher_state.get(source)
            if value is not None and value.shape == tensor.shape and value.dtype == tensor.dtype:
                tensor.copy_(value)
                copied.append(name)
    return copied
