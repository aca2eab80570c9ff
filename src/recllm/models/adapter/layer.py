"""Adapter layers: metadata cross-attention and the behaviour-weighted aggregator."""

from __future__ import annotations

import torch
from torch import nn


class CrossAttentionFusion(nn.Module):
    """Each sequence step attends to the metadata tokens of its own item.

    Attending to the step's own item (not to later ones) keeps the model causal, and
    lets a step pick which metadata fields (title words, genres, brand) matter for it.
    Post-norm residual blocks: attention, then feed-forward.

    Shapes: ``steps`` (B, L, d); ``meta`` (B, L, M, d); ``meta_mask`` (B, L, M) bool,
    True for real tokens. Returns (B, L, d).
    """

    def __init__(self, d_model: int, n_heads: int, ffn_mult: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, d_model * ffn_mult),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(d_model * ffn_mult, d_model),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, steps: torch.Tensor, meta: torch.Tensor, meta_mask: torch.Tensor
    ) -> torch.Tensor:
        batch, length, d = steps.shape
        m = meta.shape[2]
        query = steps.reshape(batch * length, 1, d)  # (B*L, 1, d)
        keys = meta.reshape(batch * length, m, d)  # (B*L, M, d)
        # Items without any metadata token (and padding) attend to nothing: give them one
        # visible key so softmax stays finite; their output is zeroed below.
        empty = ~meta_mask.reshape(batch * length, m).any(1)
        padding = ~meta_mask.reshape(batch * length, m)
        padding[empty, 0] = False
        attended, _ = self.attention(
            query, keys, keys, key_padding_mask=padding, need_weights=False
        )
        attended = attended.masked_fill(empty[:, None, None], 0.0).reshape(batch, length, d)
        fused = self.norm1(steps + self.dropout(attended))
        return self.norm2(fused + self.dropout(self.ffn(fused)))


class PreferenceAggregator(nn.Module):
    """Causal attention pooling whose scores are biased by behaviour weights.

    At step t the user vector pools steps 1..t with attention
    ``softmax_j(v . tanh(W h_j) + beta * log w_j)``: a 5-star interaction (w = 1) gets a
    larger share than a 1-star one (w = 0.2) for the same content score, and ``beta``
    (learned, starts at 1) says how much. The attention weights are returned because
    explanations use them as attribution.

    Shapes: ``steps`` (B, L, d); ``weights`` (B, L) in (0, 1]; ``mask`` (B, L) bool.
    Returns user vectors (B, L, d) and attention (B, L, L) (row t: weights over j <= t).
    """

    def __init__(self, d_model: int, use_behaviour_weights: bool = True) -> None:
        super().__init__()
        self.project = nn.Linear(d_model, d_model)
        self.score = nn.Linear(d_model, 1, bias=False)
        self.beta = nn.Parameter(torch.ones(())) if use_behaviour_weights else None

    def forward(
        self, steps: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        length = steps.shape[1]
        logits = self.score(torch.tanh(self.project(steps))).squeeze(-1)  # (B, L)
        if self.beta is not None:
            logits = logits + self.beta * torch.log(weights.clamp(min=1e-3))
        causal = torch.ones(length, length, dtype=torch.bool, device=steps.device).tril()
        allowed = causal.unsqueeze(0) & mask.unsqueeze(1)  # (B, L, L): row t sees real j <= t
        allowed = allowed | ~allowed.any(-1, keepdim=True)  # padding rows: avoid all -inf
        scores = logits.unsqueeze(1).masked_fill(~allowed, float("-inf"))  # (B, L, L)
        attention = torch.softmax(scores, dim=-1) * mask.unsqueeze(-1)
        return attention @ steps, attention
