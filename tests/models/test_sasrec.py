"""SASRec baseline: causal, learns a sequential pattern, saves and loads exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recllm.errors import ConfigError
from recllm.models.sasrec import SASRec, SASRecConfig


def tiny(n_items: int = 12, **overrides) -> SASRec:
    torch.manual_seed(0)
    return SASRec(SASRecConfig(d_model=16, n_heads=2, max_len=6, dropout=0.0, **overrides), n_items)


def test_queries_are_causal_and_padding_free() -> None:
    model = tiny().eval()
    items = torch.tensor([[1, 2, 3, 4]])
    changed = torch.tensor([[1, 2, 9, 7]])  # differs from position 2 on
    mask = torch.ones(1, 4, dtype=torch.bool)
    a = model(items, torch.ones(1, 4), mask).queries
    b = model(changed, torch.ones(1, 4), mask).queries
    assert torch.allclose(a[:, :2], b[:, :2], atol=1e-6)
    assert not torch.allclose(a[:, 2:], b[:, 2:])
    # Right padding never changes the real positions.
    padded = torch.tensor([[1, 2, 3, 4, 12, 12]])
    pmask = torch.tensor([[True] * 4 + [False] * 2])
    c = model(padded, torch.ones(1, 6), pmask).queries
    assert torch.allclose(a, c[:, :4], atol=1e-6)


@pytest.mark.parametrize("loss", ["ce", "bce", "bpr", "sampled_ce"])
def test_learns_next_item_pattern(loss: str) -> None:
    """Sequences follow i -> i + 1; after training the next item ranks first."""
    model = tiny()
    n = model.n_items
    starts = torch.arange(n - 6)
    seqs = (starts[:, None] + torch.arange(7)[None, :]) % n  # (B, 7)
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    mask = torch.ones_like(inputs, dtype=torch.bool)
    weights = torch.ones(inputs.shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    generator = torch.Generator().manual_seed(0)
    before = model.eval().score_last(inputs, weights, mask)
    model.train()
    for _ in range(150):
        optimizer.zero_grad()
        out = model(inputs, weights, mask, targets, loss=loss, n_negatives=4, generator=generator)
        assert out.loss is not None
        out.loss.backward()
        optimizer.step()
    after = model.eval().score_last(inputs, weights, mask)
    hit_before = (before.argmax(1) == targets[:, -1]).float().mean()
    hit_after = (after.argmax(1) == targets[:, -1]).float().mean()
    assert hit_after >= 0.8 > hit_before


def test_save_load_round_trip_and_catalogue_check(tmp_path: Path) -> None:
    model = tiny().eval()
    model.save_pretrained(tmp_path / "m")
    loaded = SASRec.from_pretrained(tmp_path / "m", n_items=12)
    items, mask = torch.tensor([[3, 4, 5]]), torch.ones(1, 3, dtype=torch.bool)
    assert torch.equal(
        model.score_last(items, torch.ones(1, 3), mask),
        loaded.score_last(items, torch.ones(1, 3), mask),
    )
    with pytest.raises(ConfigError, match="covers 12 items, the catalogue has 13"):
        SASRec.from_pretrained(tmp_path / "m", n_items=13)
    with pytest.raises(ConfigError, match="not a saved SASRec"):
        SASRec.from_pretrained(tmp_path)


def test_bad_inputs_and_config() -> None:
    model = tiny()
    with pytest.raises(ValueError, match="outside the catalogue"):
        model(torch.tensor([[13]]), torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="exceeds max_len"):
        model(
            torch.zeros(1, 7, dtype=torch.long),
            torch.ones(1, 7),
            torch.ones(1, 7, dtype=torch.bool),
        )
    with pytest.raises(ConfigError, match="must divide"):
        SASRecConfig(d_model=10, n_heads=3)


def test_item_age_groups_join_inputs_and_scores_and_are_saved(tmp_path: Path) -> None:
    """``item_age_buckets`` (the ID-only control for RecLLM-Adapter's item age): each
    item's input and output embedding adds its group's vector; off adds nothing."""
    assert "age_bucket" not in tiny().state_dict() and tiny().item_age is None
    model = tiny(item_age_buckets=3)
    assert model.item_age is not None and model.age_bucket is not None
    model.set_item_ages(np.arange(12, dtype=np.float64))  # item 11 is the newest
    assert model.age_bucket.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [2]
    aged = model.items.weight[:12] + model.item_age.weight[model.age_bucket[:12]]
    assert torch.allclose(model.item_embeddings(), aged)
    items, mask = torch.tensor([[1, 5, 9, 12]]), torch.tensor([[True, True, True, False]])
    out = model(items, torch.ones(1, 4), mask, targets=torch.tensor([[5, 9, 10, 12]]))
    assert out.loss is not None
    out.loss.backward()
    assert model.item_age.weight.grad is not None
    assert bool(model.item_age.weight.grad.abs().sum(1).gt(0).all())
    model.save_pretrained(tmp_path)
    loaded = SASRec.from_pretrained(tmp_path, n_items=12)
    assert torch.equal(loaded.age_bucket, model.age_bucket)
    assert torch.equal(loaded.item_embeddings(), model.eval().item_embeddings())
    with pytest.raises(ConfigError, match="item_age_buckets must be 0"):
        SASRecConfig(item_age_buckets=1)
