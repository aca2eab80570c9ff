"""Adapter layers and config: causality, behaviour bias, empty metadata, round trip."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from recllm.errors import ConfigError
from recllm.models.adapter.config import AdapterConfig
from recllm.models.adapter.layer import CrossAttentionFusion, PreferenceAggregator


def test_aggregator_is_causal_and_normalised() -> None:
    torch.manual_seed(0)
    agg = PreferenceAggregator(16)
    steps = torch.randn(2, 5, 16)
    weights = torch.rand(2, 5) * 0.8 + 0.2
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    user, attention = agg(steps, weights, mask)
    changed = steps.clone()
    changed[:, 3] += 10.0
    user2, _ = agg(changed, weights, mask)
    assert torch.allclose(user[:, :3], user2[:, :3])
    assert torch.allclose(attention[0].sum(-1), torch.ones(5))
    assert torch.allclose(attention[1, :3].sum(-1), torch.ones(3))
    assert (attention[1, 3:] == 0).all() and (attention[:, :, 4][:, :4] == 0).all()  # no look-ahead


def test_higher_behaviour_weight_gets_more_attention() -> None:
    agg = PreferenceAggregator(8)
    steps = torch.ones(1, 2, 8)  # identical content: only the weights differ
    _, attention = agg(steps, torch.tensor([[0.2, 1.0]]), torch.ones(1, 2, dtype=torch.bool))
    assert attention[0, 1, 1] > attention[0, 1, 0]
    flat = PreferenceAggregator(8, use_behaviour_weights=False)
    _, attention = flat(steps, torch.tensor([[0.2, 1.0]]), torch.ones(1, 2, dtype=torch.bool))
    assert torch.allclose(attention[0, 1], torch.tensor([0.5, 0.5]))


def test_fusion_handles_items_without_metadata() -> None:
    fusion = CrossAttentionFusion(16, 4, dropout=0.0)
    steps = torch.randn(2, 3, 16)
    meta = torch.randn(2, 3, 4, 16)
    meta_mask = torch.ones(2, 3, 4, dtype=torch.bool)
    meta_mask[0, 1] = False  # an item with no metadata tokens
    out = fusion(steps, meta, meta_mask)
    assert out.shape == (2, 3, 16) and torch.isfinite(out).all()


def test_config_round_trip_and_unknown_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = AdapterConfig(d_model=64, n_heads=4, use_user_vector=True, n_items=10)
    config.save(tmp_path)
    assert AdapterConfig.load(tmp_path) == config
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    data["from_the_future"] = 1
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        assert AdapterConfig.load(tmp_path) == config
    assert "from_the_future" in caplog.text
    with pytest.raises(ConfigError, match=r"no adapter_config\.json"):
        AdapterConfig.load(tmp_path / "missing")


def test_config_rejects_bad_combinations() -> None:
    with pytest.raises(ConfigError) as info:
        AdapterConfig(d_model=100, n_heads=8, dropout=1.5, use_item_ids=False, use_metadata=False)
    text = str(info.value)
    assert (
        "must divide" in text
        and "dropout" in text
        and "both be off" in text
        and "use_cross_attention" in text
    )
