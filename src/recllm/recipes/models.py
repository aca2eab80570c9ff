"""Which sequential model a run trains: RecLLM-Adapter or an ID-only baseline.

Every model here speaks one interface (``forward`` with a loss, ``score_last``,
``save_pretrained``, ``max_len``/``pad_id``/``n_items``), so one recipe trains,
early-stops, checkpoints and evaluates them all on the same data and evaluator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recllm.models.recllm import RecLLMModel
from recllm.models.sasrec import SASRec

if TYPE_CHECKING:
    from recllm.recipes.train import Pipeline, TrainConfig

SequentialModel = RecLLMModel | SASRec

MODEL_NAMES = ("recllm-adapter", "sasrec")


def needs_backbone(model_name: str) -> bool:
    """ID-only baselines need neither the language model nor item encodings."""
    return model_name == "recllm-adapter"


def build_model(config: TrainConfig, pipeline: Pipeline) -> SequentialModel:
    """A freshly initialised model of the kind ``config.model`` names."""
    if config.model == "sasrec":
        return SASRec(config.sasrec, n_items=pipeline.split.n_items)
    assert pipeline.backbone is not None and pipeline.encodings is not None
    config.adapter.catalogue = pipeline.catalogue
    return RecLLMModel(pipeline.backbone, pipeline.encodings, config.adapter)


def load_model(folder: Path, config: TrainConfig, pipeline: Pipeline) -> SequentialModel:
    """The model saved in ``folder`` by ``save_pretrained``, checked against the data."""
    if config.model == "sasrec":
        return SASRec.from_pretrained(folder, n_items=pipeline.split.n_items)
    assert pipeline.backbone is not None and pipeline.encodings is not None
    return RecLLMModel.from_pretrained(
        folder, pipeline.backbone, pipeline.encodings, catalogue=pipeline.catalogue
    )


def saved_model_marker(model_name: str) -> str:
    """The file whose presence says a folder holds a saved model of this kind."""
    if model_name == "sasrec":
        from recllm.models.sasrec import SASREC_CONFIG_NAME

        return SASREC_CONFIG_NAME
    from recllm.models.adapter.config import CONFIG_NAME

    return CONFIG_NAME
