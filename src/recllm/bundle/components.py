"""What serving needs, as loaded objects, whichever way they were obtained.

A bundle on disk (:func:`recllm.bundle.load.load_bundle`) and a training run in memory
(``recllm.recipes.export``) both produce :class:`Components`; the Python API and the
service are built on them and never see a dataset or a training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recllm.explain.generator import ExplanationGenerator
from recllm.explain.vocab import Vocab
from recllm.models.backbone import Backbone, BackboneConfig, load_backbone
from recllm.models.recllm import RecLLMModel
from recllm.routing.classifier import IntentClassifier

TEXT = "text"  # catalogue column: the item text the encoder read
POPULARITY = "popularity"  # catalogue column: training interactions per item


def lazy_encoder(config: BackboneConfig, loaded: Backbone | None = None) -> Callable[[], Backbone]:
    """The item-text encoder, loaded on first call (only new items need it). ``loaded``:
    a backbone already in memory that is this same frozen model (a frozen teacher's)."""
    held = [loaded] if loaded is not None else []

    def encoder() -> Backbone:
        if not held:
            held.append(load_backbone(config))
        return held[0]

    return encoder


@dataclass(frozen=True)
class EncoderSettings:
    """How item texts become metadata embeddings (must match training for new items)."""

    n_tokens: int
    max_length: int
    batch_size: int
    bf16: bool
    text_template: str


@dataclass
class ExplainerParts:
    """A trained explanation generator and its vocabulary."""

    generator: ExplanationGenerator
    vocab: Vocab
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Components:
    """The served recommender with its catalogue, and optionally router and explainer.

    Attributes:
        dataset: the dataset name the model was trained on.
        items: the catalogue in item-code order: ``item_id``, ``title``, every text field,
            ``text`` (the item text encoded) and ``popularity``.
        model: the recommender (teacher or student) over exactly these items.
        encoder: loads the text encoder on first use (only new items need it).
        encoder_settings: how texts were encoded.
        rating_max: ratings / this are behaviour weights; None for implicit data.
        histories: known users' interactions in order (``user_id``, ``item_id``,
            ``rating``), or None.
        router: the intent classifier, or None.
        explainer: the explanation generator, or None.
        info: what the bundle says of itself (its manifest, or a run's summary).
        onnx: the ONNX graph of the recommender when the bundle serves through ONNX
            Runtime (chosen at export: same top 10 on the test users, and faster).
    """

    dataset: str
    items: pd.DataFrame
    model: RecLLMModel
    encoder: Callable[[], Backbone]
    encoder_settings: EncoderSettings
    rating_max: float | None
    histories: pd.DataFrame | None = None
    router: IntentClassifier | None = None
    explainer: ExplainerParts | None = None
    info: dict[str, Any] = field(default_factory=dict)
    onnx: Path | None = None  # the recommender as an ONNX graph, when it is the one served

    def item_codes(self) -> dict[str, int]:
        return {str(item): code for code, item in enumerate(self.items["item_id"])}

    def popularity(self) -> np.ndarray:
        return self.items[POPULARITY].to_numpy(dtype=np.int64)
