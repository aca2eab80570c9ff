"""Configuration of the recommendation adapter, saved as ``adapter_config.json``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recllm.config import lenient_from_dict, load_saved_config, save_config
from recllm.errors import ConfigError
from recllm.models.item_age import group_count_problems

log = logging.getLogger(__name__)

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
ITEM_ID_INITS = ("random", "text")
ITEM_FUSIONS = ("sum", "null_space")
MISSING_IDS = ("zero", "learned")


@dataclass
class AdapterConfig:
    """Shape and switches of the RecAdapter; the ablation flags default to the full model.

    Attributes:
        d_model: adapter width d (the design's 256).
        n_heads: heads of the cross-attention (8); must divide ``d_model``.
        max_len: longest behaviour sequence fed to the model (older items are dropped).
        dropout: dropout inside the adapter.
        ffn_mult: width of the feed-forward block as a multiple of ``d_model``.
        use_item_ids: learn an ID embedding per item (off: metadata only).
        item_id_dropout: in training, the share of items whose ID embedding is zeroed
            (a fresh draw each time the catalogue is embedded), so the metadata path
            learns to score an item whose ID carries nothing, as a cold item's does.
        item_id_init: ``"random"`` (small normal values) or ``"text"``: each item's ID
            embedding starts as the whitened principal components of its pooled text
            embedding, at the random start's scale (LLMInit / LLM-ESR's initialisation),
            so items with similar texts start close; it trains as usual from there.
        missing_id: what stands in for the ID embedding of an item that has none to
            offer: one dropped by ``item_id_dropout`` in a training step, or one that
            never trained (a cold-start split's held-out items, items added after
            training). ``"zero"``: nothing, the item is its metadata alone (a never-trained
            item keeps its small random start). ``"learned"``: one trained vector shared
            by all such items, so their metadata-only scores can be calibrated against
            items whose trained IDs add to theirs.
        item_fusion: how an item's ID and pooled text make its embedding. ``"sum"``: ID
            embedding + a trained projection of the text. ``"null_space"`` (AlphaFuse,
            SIGIR 2025): the text's top ``d_model - id_dims`` principal components,
            whitened and frozen, beside ``id_dims`` trainable ID dimensions that take the
            place of the text's least-varying directions (its near null space), so
            training the IDs cannot overwrite what the text says.
        id_dims: ID dimensions of ``item_fusion: null_space``.
        text_alignment: weight of a contrastive term added to the training loss (0: off):
            each target item's ID embedding is pulled towards its own projected text and
            away from the other target items' texts in the batch (InfoNCE both ways).
        alignment_temperature: the temperature of that term.
        item_age_buckets: 0 (off) or K: each item's embedding adds a learned vector for
            when the item first occurs in training, one of K groups of equally many
            items, oldest to newest; an item never trained on (a cold item, one added
            after training) counts as newest. On Beauty the test targets lean to new
            products, which an ID-only model learns from co-occurrence and the item
            texts cannot say.
        id_dropout_spares_newest: the newest this many of the ``item_age_buckets`` groups
            keep their IDs in training (0: ID dropout applies to all). New items have the
            fewest interactions to train an ID from, and on Beauty their IDs are what
            ranks one new item above another: without ID dropout the newest 5 % gain and
            the older items lose.
        use_metadata: use the items' pooled and token metadata embeddings (off: ID only).
        use_cross_attention: fuse each step with its item's metadata tokens.
        use_behaviour_weights: bias the aggregator and inputs by behaviour weights.
        use_user_vector: add the aggregator's user vector to the final hidden state
            (an ablation: the issue asks to measure, not assume, whether it helps).
        prompt: a short instruction embedded by the backbone and placed before the
            adapter tokens (e.g. "Predict the next movie the user will watch:"); empty
            for none. Needs a backbone with a tokenizer.
        n_items: catalogue size the adapter was built for (set by the model).
        meta_dim: width of the metadata embeddings (the backbone's hidden size).
        n_meta_tokens: metadata token embeddings per item (M).
        backbone_hidden: hidden size of the backbone the tokens are projected to.
        backbone: fingerprint of the backbone it was trained with (checked on load).
        catalogue: hash of the item texts it was trained with (checked on load).
    """

    d_model: int = 256
    n_heads: int = 8
    max_len: int = 50
    dropout: float = 0.1
    ffn_mult: int = 4
    use_item_ids: bool = True
    item_id_dropout: float = 0.0
    item_id_init: str = "random"
    missing_id: str = "zero"
    item_fusion: str = "sum"
    id_dims: int = 64
    text_alignment: float = 0.0
    alignment_temperature: float = 0.1
    item_age_buckets: int = 0
    id_dropout_spares_newest: int = 0
    use_metadata: bool = True
    use_cross_attention: bool = True
    use_behaviour_weights: bool = True
    use_user_vector: bool = False
    prompt: str = ""
    n_items: int = 0
    meta_dim: int = 0
    n_meta_tokens: int = 0
    backbone_hidden: int = 0
    backbone: str = ""
    catalogue: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        for name in ("d_model", "n_heads", "max_len", "ffn_mult"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model >= 1 and self.n_heads >= 1 and self.d_model % self.n_heads:
            problems.append(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.item_id_dropout < 1.0:
            problems.append(f"item_id_dropout must be in [0, 1), got {self.item_id_dropout}")
        if self.item_id_dropout and not (self.use_item_ids and self.use_metadata):
            problems.append(
                "item_id_dropout needs use_item_ids and use_metadata on (it drops IDs so that "
                "metadata alone must score the item)"
            )
        if self.item_id_init not in ITEM_ID_INITS:
            problems.append(
                f"item_id_init must be one of {list(ITEM_ID_INITS)}, got {self.item_id_init!r}"
            )
        if self.item_id_init == "text" and not self.use_item_ids:
            problems.append("item_id_init 'text' needs use_item_ids on (there are no IDs)")
        if self.missing_id not in MISSING_IDS:
            problems.append(
                f"missing_id must be one of {list(MISSING_IDS)}, got {self.missing_id!r}"
            )
        if self.missing_id == "learned" and not (self.use_item_ids and self.use_metadata):
            problems.append(
                "missing_id 'learned' needs use_item_ids and use_metadata on (it stands in for "
                "the ID of an item known by its metadata alone)"
            )
        problems += self.fusion_problems()
        if self.text_alignment < 0 or self.alignment_temperature <= 0:
            problems.append(
                "text_alignment must be >= 0 and alignment_temperature > 0, got "
                f"{self.text_alignment} and {self.alignment_temperature}"
            )
        if self.text_alignment and not (
            self.use_item_ids and self.use_metadata and self.item_fusion == "sum"
        ):
            problems.append(
                "text_alignment needs use_item_ids, use_metadata and item_fusion 'sum' "
                "(it aligns each ID embedding with its item's projected text)"
            )
        problems += group_count_problems(self.item_age_buckets)
        problems += self.spared_group_problems()
        if not (self.use_item_ids or self.use_metadata):
            problems.append(
                "use_item_ids and use_metadata cannot both be off: items need some representation"
            )
        if self.use_cross_attention and not self.use_metadata:
            problems.append(
                "use_cross_attention needs use_metadata (it attends to metadata tokens); turn it off too"
            )
        ConfigError.collect("adapter", problems)

    def spared_group_problems(self) -> list[str]:
        """What is wrong with ``id_dropout_spares_newest``."""
        spared = self.id_dropout_spares_newest
        if not spared:
            return []
        if not 0 < spared < self.item_age_buckets:
            return [
                f"id_dropout_spares_newest must be in [0, item_age_buckets="
                f"{self.item_age_buckets}), got {spared}"
            ]
        if not self.item_id_dropout:
            return ["id_dropout_spares_newest needs item_id_dropout > 0 (nothing is dropped)"]
        return []

    def fusion_problems(self) -> list[str]:
        """What is wrong with the ID/text fusion settings; the adapter asks again once
        ``meta_dim`` (the text's width) is known."""
        if self.item_fusion not in ITEM_FUSIONS:
            return [f"item_fusion must be one of {list(ITEM_FUSIONS)}, got {self.item_fusion!r}"]
        if self.item_fusion == "sum":
            return []
        problems = []
        if not (self.use_item_ids and self.use_metadata):
            problems.append("item_fusion 'null_space' needs use_item_ids and use_metadata on")
        if not 1 <= self.id_dims < self.d_model:
            problems.append(f"id_dims must be in [1, d_model={self.d_model}), got {self.id_dims}")
        if self.meta_dim and self.d_model - self.id_dims > self.meta_dim:
            problems.append(
                f"item_fusion 'null_space' keeps d_model - id_dims = {self.d_model - self.id_dims} "
                f"text dimensions, more than the text's {self.meta_dim}; raise id_dims"
            )
        if self.item_id_init == "text":
            problems.append("item_id_init 'text' does not apply to item_fusion 'null_space'")
        if self.item_age_buckets:
            problems.append(
                "item_age_buckets does not apply to item_fusion 'null_space' (it would shift "
                "the frozen text dimensions)"
            )
        return problems

    def save(self, folder: Path) -> None:
        save_config(folder, CONFIG_NAME, self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AdapterConfig:
        """Build from a dict, ignoring unknown keys with a warning (forward compatibility)."""
        return lenient_from_dict(cls, values, "adapter config")

    @classmethod
    def load(cls, folder: Path) -> AdapterConfig:
        return load_saved_config(folder, CONFIG_NAME, cls, "RecAdapter")
