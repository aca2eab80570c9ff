"""LightGCN / BPR-MF: the normalised graph, propagation, learning, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recllm.errors import ConfigError
from recllm.models.lightgcn import CFConfig, LightGCN, normalised_adjacency


def two_groups(n_users: int = 20, n_items: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Users of the first half interact with items 0-3, the rest with items 5-8
    (items 4 and 9 are held out)."""
    users, items = [], []
    for u in range(n_users):
        block = range(0, 4) if u < n_users // 2 else range(5, 9)
        for i in block:
            users.append(u)
            items.append(i)
    return np.array(users), np.array(items)


def build(
    n_layers: int, users: np.ndarray, items: np.ndarray, n_users: int = 20, n_items: int = 10
):
    torch.manual_seed(0)
    config = CFConfig(d_model=8, n_layers=n_layers, n_users=n_users, n_items=n_items)
    return LightGCN(config, normalised_adjacency(users, items, n_users, n_items))


def test_adjacency_is_symmetric_degree_normalised() -> None:
    # user 0 - items 0, 1; user 1 - item 1 (duplicate pair counted once)
    a = normalised_adjacency(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2, 2).to_dense()
    assert torch.allclose(a, a.T)
    # degrees: user0 2, user1 1, item0 1, item1 2 -> entry (user0, item1) = 1/sqrt(2*2)
    assert a[0, 3] == pytest.approx(0.5) and a[1, 3] == pytest.approx(2**-0.5)
    assert a[0, 1] == 0 and a[2, 3] == 0  # no user-user or item-item edges


def test_zero_layers_is_matrix_factorisation() -> None:
    model = build(0, *two_groups()).eval()
    expected = model.users.weight[:3] @ model.items.weight.T
    assert torch.allclose(model.score_users(np.arange(3)), expected)


@pytest.mark.parametrize("n_layers", [0, 2])
def test_bpr_training_separates_the_groups(n_layers: int) -> None:
    users, items = two_groups()
    model = build(n_layers, users, items)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    u, i = torch.from_numpy(users), torch.from_numpy(items)
    first = None
    for _ in range(200):
        optimizer.zero_grad()
        loss = model.bpr_loss(u, i, generator)
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
    assert float(loss) < first / 2
    scores = model.eval().score_users(np.arange(20))
    # Each group prefers its own trained items to the other group's.
    assert (scores[:10, :4].mean(1) > scores[:10, 5:9].mean(1)).all()
    assert (scores[10:, 5:9].mean(1) > scores[10:, :4].mean(1)).all()


def test_save_load_round_trip_and_size_checks(tmp_path: Path) -> None:
    model = build(2, *two_groups()).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = LightGCN.from_pretrained(tmp_path / "m", n_users=20, n_items=10)
    assert torch.equal(model.score_users(np.arange(20)), loaded.score_users(np.arange(20)))
    with pytest.raises(ConfigError, match="covers 20 users, the data has 21"):
        LightGCN.from_pretrained(tmp_path / "m", n_users=21, n_items=10)
    with pytest.raises(ConfigError, match="not a saved LightGCN"):
        LightGCN.from_pretrained(tmp_path)
    # A graph index outside the matrix is refused, not used.
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "m" / "cf_model.safetensors"
    tensors = load_file(str(weights))
    tensors["graph.indices"][0, 0] = 10_000
    save_file(tensors, str(weights))
    with pytest.raises(ConfigError, match="saved graph is missing or corrupt"):
        LightGCN.from_pretrained(tmp_path / "m")


def test_bad_users_and_config() -> None:
    model = build(1, *two_groups()).eval()
    with pytest.raises(ValueError, match="outside the 20 users"):
        model.score_users(np.array([20]))
    with pytest.raises(ConfigError, match="n_layers must be >= 0"):
        CFConfig(n_layers=-1)
    with pytest.raises(ValueError, match="adjacency is"):
        LightGCN(CFConfig(n_users=3, n_items=3), normalised_adjacency(*two_groups(), 20, 10))
