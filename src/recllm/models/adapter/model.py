"""RecAdapter: behaviour sequence + item metadata -> tokens for the LM, and a ranking head.

The adapter has two halves around the backbone:

* :meth:`RecAdapter.encode` (before the LM): E_u = item-ID embedding + projected pooled
  metadata + position + behaviour-weight embedding, fused with the items' metadata
  tokens E_i by cross-attention, pooled by the preference aggregator, projected to the
  backbone's hidden size;
* :meth:`RecAdapter.query` / :meth:`RecAdapter.item_embeddings` (after the LM): the
  LM's hidden state is projected back to d and scored against every catalogue item's
  embedding (ID + projected metadata), so items unseen in training still get a score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from recllm.errors import ConfigError
from recllm.models.adapter.config import AdapterConfig
from recllm.models.adapter.layer import CrossAttentionFusion, PreferenceAggregator
from recllm.models.item_age import ItemAgeMixin

ID_INIT_STD = 0.02  # small: an item never trained (cold start) scores from its metadata


@dataclass
class CatalogueTables:
    """What depends on the catalogue only, computed once for serving: every item's
    embedding (N + 1, d) and projected metadata tokens (N + 1, M, d) or None."""

    items: torch.Tensor
    meta_tokens: torch.Tensor | None


@dataclass
class AdapterEncoding:
    """What the input half produces. Shapes: tokens (B, L, H); user (B, L, d);
    attention (B, L, L)."""

    tokens: torch.Tensor
    user: torch.Tensor
    attention: torch.Tensor


def principal_components(
    pooled: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The texts' mean (H,), their top ``k`` principal directions (k', H) and each text's
    centred coordinates on them (N, k'), where k' is ``k`` or the texts' rank if lower."""
    pooled = pooled.float()
    mean = pooled.mean(0)
    _, _, basis = torch.linalg.svd(pooled - mean, full_matrices=False)
    basis = basis[:k]
    return mean, basis, (pooled - mean) @ basis.T


class TextSpace(nn.Module):
    """The frozen text half of ``item_fusion: null_space``: pooled text (*, H) -> its top
    ``k`` principal components, whitened and scaled so a row's norm is about 1 (*, k).

    The mean, basis and scales are fitted once on the catalogue (:meth:`fit`) and saved
    with the adapter's weights, so a new item's text maps into the same space."""

    mean: torch.Tensor
    basis: torch.Tensor
    scale: torch.Tensor

    def __init__(self, text_dim: int, k: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(text_dim))
        self.register_buffer("basis", torch.zeros(k, text_dim))
        self.register_buffer("scale", torch.ones(k))

    @torch.no_grad()
    def fit(self, pooled: torch.Tensor) -> None:
        k = self.basis.shape[0]
        mean, basis, components = principal_components(pooled, k)
        self.mean.copy_(mean)
        self.basis.copy_(basis)
        self.scale.copy_(components.std(0).clamp(min=1e-8) * k**0.5)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return ((pooled.float() - self.mean) @ self.basis.T) / self.scale


class RecAdapter(ItemAgeMixin):
    """The trainable recommendation adapter (see the module docstring).

    Item metadata is passed in (not owned): ``pooled`` (N + 1, H_meta), ``meta_tokens``
    (N + 1, M, H_meta) and ``meta_mask`` (N + 1, M), whose last row is the padding item.
    """

    has_id: torch.Tensor | None  # (N + 1,) bool, under ``missing_id: learned`` only

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__()
        if config.n_items < 1 or config.backbone_hidden < 1:
            raise ValueError(
                "AdapterConfig.n_items and backbone_hidden must be set before building"
            )
        if config.use_metadata and config.meta_dim < 1:
            raise ValueError("AdapterConfig.meta_dim must be set when use_metadata is on")
        ConfigError.collect("adapter", config.fusion_problems())  # meta_dim is known now
        self.config = config
        d = config.d_model
        self.pad_id = config.n_items
        null_space = config.item_fusion == "null_space"
        id_width = config.id_dims if null_space else d
        self.item_ids = (
            nn.Embedding(config.n_items + 1, id_width, padding_idx=self.pad_id)
            if config.use_item_ids
            else None
        )
        learned = config.missing_id == "learned"
        # the stand-in for an absent ID, and which items have a trained one (saved with
        # the weights: serving must know which items never trained)
        self.missing_id = nn.Parameter(torch.zeros(id_width)) if learned else None
        self.register_buffer(
            "has_id", torch.ones(config.n_items + 1, dtype=torch.bool) if learned else None
        )
        self._add_item_age(config.n_items, d, config.item_age_buckets)
        self.meta_pooled = (
            nn.Linear(config.meta_dim, d) if config.use_metadata and not null_space else None
        )
        self.text_space = TextSpace(config.meta_dim, d - config.id_dims) if null_space else None
        self.meta_tokens = nn.Linear(config.meta_dim, d) if config.use_cross_attention else None
        self.positions = nn.Embedding(config.max_len, d)
        self.behaviour = nn.Linear(1, d) if config.use_behaviour_weights else None
        self.input_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)
        self.fusion = (
            CrossAttentionFusion(d, config.n_heads, config.ffn_mult, config.dropout)
            if config.use_cross_attention
            else None
        )
        self.aggregator = PreferenceAggregator(d, config.use_behaviour_weights)
        self.to_backbone = nn.Linear(d, config.backbone_hidden)
        self.from_backbone = nn.Linear(config.backbone_hidden, d)
        self.output_norm = nn.LayerNorm(d)
        self._init_weights()

    def _init_weights(self) -> None:
        # Small ID embeddings: an item never trained (cold start) then scores from its
        # metadata rather than from a large random vector.
        if self.item_ids is not None:
            nn.init.normal_(self.item_ids.weight, std=ID_INIT_STD)
            with torch.no_grad():
                self.item_ids.weight[self.pad_id].zero_()
        if self.item_age is not None:
            nn.init.normal_(self.item_age.weight, std=ID_INIT_STD)
        nn.init.normal_(self.positions.weight, std=0.02)

    def fit_text(self, pooled: torch.Tensor) -> None:
        """Prepare what the item texts decide before training: the frozen text space of
        ``item_fusion: null_space``, and the IDs' start under ``item_id_init: text``.
        ``pooled``: (N, H) pooled text embeddings of the catalogue."""
        if self.text_space is not None:
            self.text_space.fit(pooled)
        if self.config.item_id_init == "text":
            self.init_ids_from_text(pooled)

    @torch.no_grad()
    def init_ids_from_text(self, pooled: torch.Tensor) -> None:
        """Start the ID embeddings (N, d) from the items' pooled text embeddings (N, H):
        their principal components, whitened and scaled to the random start's std, so
        the IDs carry the texts' similarity structure without outweighing the metadata
        path. Dimensions beyond the text's rank keep their random start."""
        assert self.item_ids is not None, "item_id_init 'text' needs ID embeddings"
        _, _, components = principal_components(pooled, self.config.d_model)  # (N, k)
        k = components.shape[1]
        std = components.std(0, keepdim=True).clamp(min=1e-8)
        self.item_ids.weight[: self.pad_id, :k] = components / std * ID_INIT_STD

    def item_embeddings(self, pooled: torch.Tensor | None) -> torch.Tensor:
        """(N + 1, d) embedding of every item (the last row is padding)."""
        items = self._fused_items(pooled)
        if self.item_age is None:
            return items
        return items + self.age_vectors().to(items.dtype)

    def _fused_items(self, pooled: torch.Tensor | None) -> torch.Tensor:
        """(N + 1, d) each item's ID and text, fused as ``item_fusion`` says."""
        ids = self._id_rows() if self.item_ids is not None else None
        if self.text_space is not None:
            assert pooled is not None and ids is not None, "null_space fuses text and IDs"
            text = self.text_space(pooled)
            text[self.pad_id :] = 0.0  # the padding item has no text
            return torch.cat([text.to(ids.dtype), ids], dim=1)
        if self.meta_pooled is None:
            assert ids is not None  # the config guarantees IDs or metadata
            return ids
        assert pooled is not None, "metadata is on but no pooled item embeddings were given"
        meta = self.meta_pooled(pooled)
        return meta if ids is None else ids + meta  # a plain sum: no stacked copy

    def alignment_loss(self, items: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """InfoNCE between the ID embeddings of ``items`` (any shape; repeats count once)
        and their projected texts, each ID's own text the positive, both directions."""
        assert self.item_ids is not None and self.meta_pooled is not None
        unique = items.unique()
        if len(unique) < 2:  # no negatives: nothing to contrast
            return self.item_ids.weight.sum() * 0.0
        ids = nn.functional.normalize(self.item_ids(unique), dim=-1)
        texts = nn.functional.normalize(self.meta_pooled(pooled[unique]), dim=-1)
        logits = (ids @ texts.T).float() / self.config.alignment_temperature
        labels = torch.arange(len(unique), device=logits.device)
        forward = nn.functional.cross_entropy(logits, labels)
        return (forward + nn.functional.cross_entropy(logits.T, labels)) / 2

    def _id_rows(self) -> torch.Tensor:
        """(N + 1, d_ids) the ID embedding each item is scored with. In training, whole
        rows are dropped with probability ``item_id_dropout`` (not rescaled), so a dropped
        item looks like one that never trained; a dropped or never-trained item gets the
        ``missing_id`` stand-in (zero: its row as it is, near its small initial values).
        Items in the ``id_dropout_spares_newest`` newest age groups are never dropped."""
        assert self.item_ids is not None
        ids = self.item_ids.weight
        rate = self.config.item_id_dropout
        kept = (
            torch.rand(ids.shape[0], 1, device=ids.device) >= rate
            if self.training and rate
            else None
        )
        spared = self.config.id_dropout_spares_newest
        if kept is not None and spared:
            assert self.item_age is not None and self.age_bucket is not None
            newest = self.age_bucket >= self.item_age.num_embeddings - spared  # (N + 1,)
            kept = kept | newest.unsqueeze(-1)
        if self.missing_id is None:
            return ids if kept is None else ids * kept.to(ids.dtype)
        assert self.has_id is not None  # kept whenever missing_id is learned
        has_id = self.has_id.unsqueeze(-1)  # (N + 1, 1)
        if kept is not None:
            has_id = has_id & kept
        return torch.where(has_id, ids, self.missing_id.to(ids.dtype))

    @torch.no_grad()
    def mark_trained_ids(self, trained: torch.Tensor | None) -> None:
        """Record which items have a trained ID: those in ``trained`` (ids; None: all).
        Only ``missing_id: learned`` keeps the record; the padding row counts as trained
        so that it stays zero."""
        if self.has_id is None:
            return
        if trained is None:
            self.has_id.fill_(True)
            return
        self.has_id.fill_(False)
        self.has_id[trained.long().to(self.has_id.device)] = True
        self.has_id[self.pad_id] = True

    def encode(
        self,
        items: torch.Tensor,
        weights: torch.Tensor,
        mask: torch.Tensor,
        pooled: torch.Tensor | None,
        meta_tokens: torch.Tensor | None,
        meta_mask: torch.Tensor | None,
        tables: CatalogueTables | None = None,
    ) -> AdapterEncoding:
        """Adapter tokens for the backbone. ``items``/``weights``/``mask``: (B, L).
        ``tables``: precomputed catalogue tables (serving) instead of recomputing them."""
        length = items.shape[1]
        if length > self.config.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.config.max_len}")
        item_table = tables.items if tables is not None else self.item_embeddings(pooled)
        steps = item_table[items]  # (B, L, d)
        steps = steps + self.positions.weight[:length]
        if self.behaviour is not None:
            steps = steps + self.behaviour(weights.unsqueeze(-1))
        steps = self.dropout(self.input_norm(steps))
        if self.fusion is not None and self.meta_tokens is not None:
            assert meta_tokens is not None and meta_mask is not None
            if tables is not None and tables.meta_tokens is not None:
                meta = tables.meta_tokens[items]  # (B, L, M, d)
            else:
                meta = self.meta_tokens(meta_tokens[items])
            steps = self.fusion(steps, meta, meta_mask[items] & mask.unsqueeze(-1))
        steps = steps * mask.unsqueeze(-1)
        user, attention = self.aggregator(steps, weights, mask)
        return AdapterEncoding(tokens=self.to_backbone(steps), user=user, attention=attention)

    @torch.no_grad()
    def catalogue_tables(
        self, pooled: torch.Tensor | None, meta_tokens: torch.Tensor | None
    ) -> CatalogueTables:
        """The tables :meth:`encode` can reuse across requests (weights must not change)."""
        projected = None
        if self.meta_tokens is not None and meta_tokens is not None:
            projected = self.meta_tokens(meta_tokens)
        return CatalogueTables(items=self.item_embeddings(pooled), meta_tokens=projected)

    def query(self, hidden: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """(B, L, H) backbone states (+ user vectors) -> (B, L, d) ranking queries."""
        query = self.from_backbone(hidden)
        if self.config.use_user_vector:
            query = query + user
        return self.output_norm(query)
