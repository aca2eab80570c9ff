"""The intent classifier: a (possibly shortened) BERT-style encoder and a linear head.

Mean-pooled token states feed one linear layer over the four intents. ``shrink`` keeps a
subset of encoder layers (DistilBERT's initialisation: every other layer of the teacher),
which is how the router's student is built. Saved as ``model.safetensors`` plus
``classifier_config.json``, the encoder's ``config.json`` and the tokenizer's files, so a
saved router loads with no download and nothing unpickled.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from recllm.config import lenient_from_dict
from recllm.errors import ConfigError, RecLLMError
from recllm.routing.schema import INTENTS

CONFIG_FILE = "classifier_config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ClassifierConfig:
    """What the classifier reads and predicts."""

    backbone: str = field(
        default="default",
        metadata={"help": "'default' (all-MiniLM-L6-v2), a local model folder or a hub id"},
    )
    max_length: int = field(default=64, metadata={"help": "query tokens read; longer is cut"})
    labels: list[str] = field(default_factory=lambda: list(INTENTS))
    dropout: float = field(default=0.1, metadata={"help": "dropout before the head"})

    def __post_init__(self) -> None:
        problems = []
        if self.max_length < 8:
            problems.append(f"max_length must be >= 8, got {self.max_length}")
        if len(set(self.labels)) < 2:
            problems.append(f"labels must hold at least 2 distinct intents, got {self.labels}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        ConfigError.collect("classifier", problems)


class IntentClassifier(nn.Module):
    """Query tokens -> intent logits."""

    def __init__(self, encoder: Any, tokenizer: Any, config: ClassifierConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.config = config
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(hidden, len(config.labels))

    @classmethod
    def build(cls, config: ClassifierConfig) -> IntentClassifier:
        """A classifier on the pretrained backbone with a fresh head."""
        from transformers import AutoModel, AutoTokenizer

        from recllm.models.backbone import BackboneConfig, resolve_model_dir

        folder = resolve_model_dir(BackboneConfig(name_or_path=config.backbone))
        encoder = AutoModel.from_pretrained(folder)
        return cls(encoder, AutoTokenizer.from_pretrained(folder), config)

    @property
    def n_layers(self) -> int:
        return len(self.encoder.encoder.layer)

    def shrink(self, layers: list[int]) -> IntentClassifier:
        """A copy keeping only the given encoder layers (in order), head included."""
        if not layers or any(not 0 <= i < self.n_layers for i in layers):
            raise ConfigError(
                f"layers must be a non-empty subset of 0..{self.n_layers - 1}, got {layers}"
            )
        student = copy.deepcopy(self)
        student.encoder.encoder.layer = nn.ModuleList(
            copy.deepcopy(self.encoder.encoder.layer[i]) for i in layers
        )
        student.encoder.config.num_hidden_layers = len(layers)
        return student

    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        """``input_ids`` and ``attention_mask`` of a padded batch (nothing else)."""
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, T) token ids and mask -> (B, n_labels) logits."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)  # (B, T, 1)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)
        return self.head(self.dropout(pooled))

    @torch.inference_mode()
    def predict(self, texts: list[str]) -> Tensor:
        """(len(texts), n_labels) probabilities."""
        self.eval()
        return torch.softmax(self(**self.tokenize(texts)), dim=-1)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, truncation=False)["input_ids"])

    def save_pretrained(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        self.encoder.config.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    @classmethod
    def from_pretrained(cls, folder: Path) -> IntentClassifier:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise RecLLMError(
                f"{folder} is not a saved intent classifier (expected {CONFIG_FILE} and "
                f"{WEIGHTS_FILE}); train one with `recllm train-router`"
            )
        config = lenient_from_dict(
            ClassifierConfig, json.loads((folder / CONFIG_FILE).read_text()), "classifier config"
        )
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder))
        model = cls(encoder, AutoTokenizer.from_pretrained(folder), config)
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        model.eval()
        return model
