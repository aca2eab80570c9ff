"""Incremental decoding of a ``torch.nn.TransformerDecoder``: one new token per step.

Why: ``nn.TransformerDecoder`` has no key/value cache, so writing a sentence token by
token reran every layer over the whole prefix (a quadratic cost, and most of an ``ask``
that explains its picks). Here each layer keeps the keys and values of the positions
already written, and the cross-attention's keys and values of the memory are computed
once per sentence. Each step runs the same weights as the module in eval mode, so the
states match a full decode up to float rounding (tested).

Supports the layers this package builds: pre-norm (``norm_first=True``), batch first,
ReLU or GELU, no final decoder norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _LayerCache:
    """One decoder layer's cached self-attention keys/values and memory keys/values."""

    def __init__(self, layer: nn.TransformerDecoderLayer, memory: Tensor) -> None:
        self.layer = layer
        attn = layer.multihead_attn
        self.heads = attn.num_heads
        d = attn.embed_dim
        weight, bias = attn.in_proj_weight, attn.in_proj_bias
        assert weight is not None and bias is not None
        self.memory_k = self._split(F.linear(memory, weight[d : 2 * d], bias[d : 2 * d]))
        self.memory_v = self._split(F.linear(memory, weight[2 * d :], bias[2 * d :]))
        self.keys: Tensor | None = None  # (B, heads, T, d / heads)
        self.values: Tensor | None = None

    def _split(self, x: Tensor) -> Tensor:
        """(B, T, d) -> (B, heads, T, d / heads)."""
        batch, length, d = x.shape
        return x.view(batch, length, self.heads, d // self.heads).transpose(1, 2)

    def _merge(self, x: Tensor) -> Tensor:
        """(B, heads, 1, d / heads) -> (B, 1, d)."""
        return x.transpose(1, 2).reshape(x.shape[0], 1, -1)

    def step(self, x: Tensor, keep: Tensor, memory_keep: Tensor) -> Tensor:
        """x (B, 1, d) at the newest position -> its output (B, 1, d). ``keep`` (B, T): the
        written positions that are not padding; ``memory_keep`` (B, S) likewise."""
        layer = self.layer
        attn = layer.self_attn
        q, k, v = F.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
        k, v = self._split(k), self._split(v)
        self.keys = k if self.keys is None else torch.cat([self.keys, k], 2)
        self.values = v if self.values is None else torch.cat([self.values, v], 2)
        mixed = F.scaled_dot_product_attention(
            self._split(q), self.keys, self.values, attn_mask=keep[:, None, None, :]
        )
        x = x + attn.out_proj(self._merge(mixed))
        cross = layer.multihead_attn
        d = cross.embed_dim
        assert cross.in_proj_weight is not None and cross.in_proj_bias is not None
        q = F.linear(layer.norm2(x), cross.in_proj_weight[:d], cross.in_proj_bias[:d])
        mixed = F.scaled_dot_product_attention(
            self._split(q), self.memory_k, self.memory_v, attn_mask=memory_keep[:, None, None, :]
        )
        x = x + cross.out_proj(self._merge(mixed))
        return x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))


class IncrementalDecoder:
    """Feeds ``decoder`` one token embedding at a time; :meth:`step` returns the newest
    position's output, as the full decoder's last position would be."""

    def __init__(self, decoder: nn.TransformerDecoder, memory: Tensor, memory_pad: Tensor):
        if decoder.norm is not None:
            raise ValueError("incremental decoding expects a decoder without a final norm")
        for layer in decoder.layers:
            if not layer.norm_first:
                raise ValueError("incremental decoding expects pre-norm (norm_first) layers")
        self.layers = [_LayerCache(layer, memory) for layer in decoder.layers]
        self.memory_keep = ~memory_pad
        self.keep: Tensor = torch.zeros(len(memory), 0, dtype=torch.bool, device=memory.device)

    def step(self, x: Tensor, is_pad: Tensor) -> Tensor:
        """x (B, 1, d): the embedded newest token; ``is_pad`` (B,): whether it is padding."""
        self.keep = torch.cat([self.keep, ~is_pad.unsqueeze(1)], 1)
        for layer in self.layers:
            x = layer.step(x, self.keep, self.memory_keep)
        return x
