"""SASRec (Kang & McAuley, 2018): a causal Transformer over item-ID embeddings.

The strongest classic sequential baseline. Trained with full-softmax cross-entropy it
is the "SASRec+" variant (Klenitskiy & Vasilev, 2023); with ``bce`` and one sampled
negative it is the original. It speaks the same interface as
:class:`recllm.models.recllm.RecLLMModel` (``forward``, ``score_last``,
``save_pretrained``), so the same recipe trains and evaluates both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from recllm.config import load_saved_config, save_config
from recllm.errors import ConfigError
from recllm.models.item_age import ItemAgeMixin, group_count_problems
from recllm.models.sequential import RecOutput, SequenceModelMixin

SASREC_CONFIG_NAME = "sasrec_config.json"
SASREC_WEIGHTS_NAME = "sasrec_model.safetensors"


@dataclass
class SASRecConfig:
    """Shape of a SASRec model.

    Attributes:
        d_model: embedding and hidden width.
        n_layers: Transformer blocks.
        n_heads: attention heads per block; must divide ``d_model``.
        max_len: most recent items fed to the model.
        dropout: dropout on embeddings, attention and feed-forward.
        item_age_buckets: 0 (off) or K: each item's embedding adds a learned vector for
            its age group (see :mod:`recllm.models.item_age`), as RecLLM-Adapter's
            ``adapter.item_age_buckets`` does: the control that says how much of that
            idea's gain an ID-only model gets too.
        n_items: catalogue size (set when the model is built).
    """

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    max_len: int = 50
    dropout: float = 0.2
    item_age_buckets: int = 0
    n_items: int = 0

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("d_model", "n_layers", "n_heads", "max_len")
            if getattr(self, name) < 1
        ]
        if self.d_model >= 1 and self.n_heads >= 1 and self.d_model % self.n_heads:
            problems.append(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        problems += group_count_problems(self.item_age_buckets)
        ConfigError.collect("sasrec", problems)


class SASRec(SequenceModelMixin, ItemAgeMixin):
    """Item embeddings + positions -> causal Transformer -> per-position queries.

    Input and output item embeddings are shared (as in the paper); padding uses the
    extra row ``n_items``.
    """

    def __init__(self, config: SASRecConfig, n_items: int | None = None) -> None:
        super().__init__()
        if n_items is not None:
            config.n_items = n_items
        if config.n_items < 1:
            raise ValueError("SASRecConfig.n_items must be set (the catalogue size)")
        self.config = config
        d = config.d_model
        self.items = nn.Embedding(config.n_items + 1, d, padding_idx=config.n_items)
        self.positions = nn.Embedding(config.max_len, d)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            d,
            config.n_heads,
            dim_feedforward=4 * d,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(d)
        self._add_item_age(config.n_items, d, config.item_age_buckets)
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        if self.item_age is not None:
            nn.init.normal_(self.item_age.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[config.n_items].zero_()

    def item_embeddings(self) -> torch.Tensor:
        """(N, d) output embeddings of the catalogue (padding row dropped)."""
        items = self.items.weight[: self.n_items]
        if self.item_age is None:
            return items
        return items + self.age_vectors()[: self.n_items]

    def forward(
        self,
        items: torch.Tensor,
        weights: torch.Tensor,
        mask: torch.Tensor,
        targets: torch.Tensor | None = None,
        loss: str = "ce",
        n_negatives: int = 1,
        generator: torch.Generator | None = None,
    ) -> RecOutput:
        """Queries for next-item prediction at every position; loss when ``targets``.

        ``weights`` is accepted for interface parity and ignored: SASRec has no notion of
        behaviour strength. Sequences are right-padded, so under the causal mask no real
        position ever sees padding.
        """
        length = items.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.max_len}")
        if items.numel() and int(items.max()) > self.pad_id:
            raise ValueError(
                f"item id {int(items.max())} is outside the catalogue of {self.n_items} items"
            )
        embedded = self.items(items)
        if self.item_age is not None:
            embedded = embedded + self.age_vectors(items)
        steps = embedded * self.config.d_model**0.5 + self.positions.weight[:length]
        steps = self.dropout(steps) * mask.unsqueeze(-1)
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=items.device)
        hidden = self.encoder(steps, mask=causal, is_causal=True)
        output = RecOutput(queries=self.final_norm(hidden))
        if targets is not None:
            output.loss = self.ranking_loss(
                loss, output.queries, targets, mask, n_negatives, generator
            )
        return output

    def save_pretrained(self, folder: Path) -> None:
        save_config(folder, SASREC_CONFIG_NAME, self.config)
        weights = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_file(weights, str(Path(folder) / SASREC_WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, folder: Path, n_items: int | None = None) -> SASRec:
        """Load a saved model; refuse one built for another catalogue size."""
        config = load_saved_config(folder, SASREC_CONFIG_NAME, SASRecConfig, "SASRec model")
        if n_items is not None and config.n_items != n_items:
            raise ConfigError(
                f"checkpoint {folder}: the model covers {config.n_items} items, the catalogue has {n_items}"
            )
        model = cls(config)
        model.load_state_dict(load_file(str(Path(folder) / SASREC_WEIGHTS_NAME)))
        return model.eval()
