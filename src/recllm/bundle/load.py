"""Read a bundle into :class:`~recllm.bundle.components.Components`.

Everything is checked before it is used (the manifest's format, version and checksums),
read from safetensors, Parquet and JSON only, and built from the bundle's own files: no
dataset, no training code, no download.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from recllm.bundle import format as fmt
from recllm.bundle.components import Components, EncoderSettings, ExplainerParts, lazy_encoder
from recllm.errors import RecLLMError
from recllm.models.backbone import BackboneConfig, load_backbone
from recllm.models.item_encoder import ItemEncodings
from recllm.models.recllm import RecLLMModel

log = logging.getLogger(__name__)
MODEL_INFO = "model.json"


def load_bundle(folder: Path, verify: bool = True) -> Components:
    """The components of the bundle in ``folder``; :class:`BundleError` if unusable."""
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    manifest = fmt.read_manifest(folder, verify=verify)
    hf_logging.disable_progress_bar()  # a per-weight bar on every (re)load is noise in logs
    try:
        return _load(folder, manifest)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise fmt.BundleError(f"bundle {folder} cannot be loaded: {exc}") from exc


def _load(folder: Path, manifest: dict[str, Any]) -> Components:
    info = json.loads((folder / fmt.RECOMMENDER / MODEL_INFO).read_text())
    backbone_config = dict(info["backbone"])
    if backbone_config.get("architecture") is None:
        backbone_config["name_or_path"] = str(folder / fmt.BACKBONE)
        backbone_config["allow_download"] = False
    backbone = load_backbone(_backbone_config(backbone_config))
    encodings = ItemEncodings.load(folder / fmt.ENCODINGS)
    model = RecLLMModel.from_pretrained(folder / fmt.RECOMMENDER, backbone, encodings)
    model.cache_catalogue()
    items = pd.read_parquet(folder / fmt.CATALOGUE)
    if len(items) != model.n_items:
        raise fmt.BundleError(
            f"bundle {folder}: the catalogue has {len(items)} items, the model {model.n_items}"
        )
    encoder_config = dict(info["encoder_backbone"])
    encoder_config["name_or_path"] = str(folder / info["encoder_dir"])
    encoder_config["allow_download"] = False
    reuse = info["encoder_dir"] == fmt.BACKBONE and backbone.config.finetune == "frozen"
    encoder = lazy_encoder(_backbone_config(encoder_config), backbone if reuse else None)
    histories_path = folder / fmt.HISTORIES
    recommender = manifest.get("models", {}).get("recommender", {})
    onnx = folder / recommender["onnx"]["file"] if recommender.get("backend") == "onnx" else None
    return Components(
        dataset=str(manifest.get("dataset", "")),
        items=items,
        model=model,
        encoder=encoder,
        encoder_settings=EncoderSettings(**manifest["encoder"]),
        rating_max=manifest.get("rating_max"),
        histories=pd.read_parquet(histories_path) if histories_path.is_file() else None,
        router=_router(folder / fmt.ROUTER),
        explainer=_explainer(folder / fmt.EXPLAINER),
        info=manifest,
        onnx=onnx,
    )


def _backbone_config(values: dict[str, Any]) -> BackboneConfig:
    known = {f.name for f in fields(BackboneConfig)}
    return BackboneConfig(**{k: v for k, v in values.items() if k in known})


def _router(folder: Path) -> Any:
    if not folder.is_dir():
        return None
    from recllm.routing.classifier import IntentClassifier
    from recllm.routing.router import ROUTER_FILE

    serving = json.loads((folder / ROUTER_FILE).read_text()).get("serving", "student")
    return IntentClassifier.from_pretrained(folder / serving)


def _explainer(folder: Path) -> ExplainerParts | None:
    if not folder.is_dir():
        return None
    from recllm.explain.explainer import MANIFEST
    from recllm.explain.generator import ExplanationGenerator
    from recllm.explain.vocab import Vocab

    try:
        info = json.loads((folder / MANIFEST).read_text())
    except json.JSONDecodeError as exc:
        raise RecLLMError(f"{folder / MANIFEST} is not valid JSON: {exc}") from exc
    return ExplainerParts(
        ExplanationGenerator.from_pretrained(folder), Vocab.load(folder / "vocab.json"), info
    )
