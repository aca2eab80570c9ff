"""Which model a run trains: RecLLM-Adapter or a baseline, behind one recipe.

Sequential models (RecLLM-Adapter, SASRec) learn next-item prediction from behaviour
sequences; user-embedding models (BPR-MF, LightGCN) learn from (user, item) pairs. This
module hides that difference from :class:`recllm.recipes.train.TrainRecipe`: it builds
the model, its training data and loss, its scorer for the evaluator, and reloads it, so
every model gets the same optimiser, early stopping, checkpoints and evaluator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from recllm.data.batching import (
    InteractionDataset,
    NextItemBatch,
    NextItemDataset,
    PairBatch,
    SequenceCollator,
    collate_pairs,
)
from recllm.eval.evaluator import Scorer
from recllm.models.adapter.config import CONFIG_NAME as ADAPTER_CONFIG_NAME
from recllm.models.item_age import ItemAgeMixin
from recllm.models.lightgcn import CF_CONFIG_NAME, LightGCN, UserScorer, normalised_adjacency
from recllm.models.recllm import RecLLMModel
from recllm.models.sasrec import SASREC_CONFIG_NAME, SASRec
from recllm.models.sequential import RecOutput, SequenceScorer
from recllm.recipes.model_names import CF_MODELS

if TYPE_CHECKING:
    from recllm.data.splits import Split
    from recllm.recipes.train import Pipeline, TrainConfig, TrainerConfig

TrainableModel = RecLLMModel | SASRec | LightGCN

_SAVED_MARKER = {
    "recllm-adapter": ADAPTER_CONFIG_NAME,
    "sasrec": SASREC_CONFIG_NAME,
    "bpr-mf": CF_CONFIG_NAME,
    "lightgcn": CF_CONFIG_NAME,
}


def needs_backbone(model_name: str) -> bool:
    """Only RecLLM-Adapter uses the language model and the item encodings."""
    return model_name == "recllm-adapter"


def build_model(config: TrainConfig, pipeline: Pipeline) -> TrainableModel:
    """A freshly initialised model of the kind ``config.model`` names; on a cold-start
    split its training never scores the held-out items (see :func:`training_pool`)."""
    model = _new_model(config, pipeline)
    model.training_items = training_pool(pipeline.split)
    aged = model.adapter if isinstance(model, RecLLMModel) else model
    if isinstance(aged, ItemAgeMixin) and aged.item_age is not None:
        aged.set_item_ages(pipeline.split.first_seen())
    return model


def training_pool(split: Split) -> torch.Tensor | None:
    """Item ids a training loss may score: all but a cold-start split's held-out items
    (None: the whole catalogue). Held out of training "entirely" means out of the
    softmax and the negative samples too, or training would learn they are never chosen."""
    if not len(split.cold_items):
        return None
    keep = np.ones(split.n_items, dtype=bool)
    keep[split.cold_items] = False
    return torch.from_numpy(np.flatnonzero(keep))


def _new_model(config: TrainConfig, pipeline: Pipeline) -> TrainableModel:
    data = pipeline.split
    if config.model == "sasrec":
        return SASRec(config.sasrec, n_items=data.n_items)
    if config.model in CF_MODELS:
        layers = 0 if config.model == "bpr-mf" else config.cf.n_layers
        cf = dataclasses.replace(
            config.cf, n_layers=layers, n_users=data.n_users, n_items=data.n_items
        )
        train = data.train
        adjacency = normalised_adjacency(
            train["user"].to_numpy(), train["item"].to_numpy(), data.n_users, data.n_items
        )
        return LightGCN(cf, adjacency)
    assert pipeline.backbone is not None and pipeline.encodings is not None
    config.adapter.catalogue = pipeline.catalogue
    return RecLLMModel(pipeline.backbone, pipeline.encodings, config.adapter)


def training_data(
    model: TrainableModel, split: Split, windows: str = "last"
) -> tuple[NextItemDataset | InteractionDataset, Callable[[list[Any]], Any]]:
    """The training examples of ``model`` (each with a ``lengths`` array for the
    bucket sampler) and the collate function that batches them. ``windows``: which
    parts of long sequences sequential models train on (see NextItemDataset)."""
    if isinstance(model, LightGCN):
        train = split.train
        return InteractionDataset(train["user"].to_numpy(), train["item"].to_numpy()), collate_pairs
    dataset = NextItemDataset(split.sequences("train"), model.max_len, windows)
    return dataset, SequenceCollator(model.pad_id)


def batch_loss(
    model: TrainableModel,
    batch: NextItemBatch | PairBatch,
    trainer: TrainerConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """L_rec of one batch: the trainer's loss for sequential models, BPR for CF ones."""
    if isinstance(model, LightGCN):
        assert isinstance(batch, PairBatch)
        return model.bpr_loss(batch.users, batch.items, generator)
    output = sequence_output(model, batch, trainer, generator)
    assert output.loss is not None
    return output.loss


def sequence_output(
    model: TrainableModel,
    batch: NextItemBatch | PairBatch,
    trainer: TrainerConfig,
    generator: torch.Generator,
) -> RecOutput:
    """A sequential model's whole output on a batch, L_rec included."""
    assert isinstance(batch, NextItemBatch) and not isinstance(model, LightGCN)
    return model(
        batch.inputs,
        batch.weights,
        batch.mask,
        batch.targets,
        loss=trainer.loss,
        n_negatives=trainer.n_negatives,
        generator=generator,
    )


def make_scorer(model: TrainableModel, batch_size: int = 256) -> Scorer:
    """The evaluator's ``scorer(users, history)`` for this model."""
    if isinstance(model, LightGCN):
        return UserScorer(model)
    return SequenceScorer(model, batch_size=batch_size)


def load_model(folder: Path, config: TrainConfig, pipeline: Pipeline) -> TrainableModel:
    """The model saved in ``folder`` by ``save_pretrained``, checked against the data."""
    data = pipeline.split
    if config.model == "sasrec":
        return SASRec.from_pretrained(folder, n_items=data.n_items)
    if config.model in CF_MODELS:
        return LightGCN.from_pretrained(folder, n_users=data.n_users, n_items=data.n_items)
    assert pipeline.backbone is not None and pipeline.encodings is not None
    return RecLLMModel.from_pretrained(
        folder, pipeline.backbone, pipeline.encodings, catalogue=pipeline.catalogue
    )


def saved_model_marker(model_name: str) -> str:
    """The file whose presence says a folder holds a saved model of this kind."""
    return _SAVED_MARKER[model_name]
