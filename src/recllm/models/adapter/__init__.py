"""The recommendation-specific adapter (PEFT-style: config, layers, model)."""

from recllm.models.adapter.config import AdapterConfig
from recllm.models.adapter.layer import CrossAttentionFusion, PreferenceAggregator

__all__ = ["AdapterConfig", "CrossAttentionFusion", "PreferenceAggregator"]
