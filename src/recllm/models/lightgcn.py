"""LightGCN (He et al., 2020) and BPR-MF, the collaborative-filtering baselines.

LightGCN learns user and item embeddings E0 and scores with the mean of K rounds of
propagation over the normalised user-item graph, ``E_{k+1} = D^-1/2 A D^-1/2 E_k``. With
K = 0 no propagation happens and the model is exactly matrix factorisation, so BPR-MF is
this class with ``n_layers=0``. Both train with BPR on (user, item, sampled negative)
triples and an L2 penalty on the batch's ego embeddings, as in the LightGCN paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from recllm.config import load_saved_config, save_config
from recllm.data.sequences import UserSequences
from recllm.errors import ConfigError
from recllm.models.losses import sample_negatives

CF_CONFIG_NAME = "cf_config.json"
CF_WEIGHTS_NAME = "cf_model.safetensors"


@dataclass
class CFConfig:
    """Shape of a LightGCN / BPR-MF model.

    Attributes:
        d_model: embedding width.
        n_layers: LightGCN propagation rounds K (``bpr-mf`` always uses 0).
        l2: weight of the L2 penalty on the ego embeddings of each batch.
        n_users, n_items: sizes of the tables (set when the model is built).
    """

    d_model: int = 64
    n_layers: int = 3
    l2: float = 1e-4
    n_users: int = 0
    n_items: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.d_model < 1:
            problems.append(f"d_model must be >= 1, got {self.d_model}")
        if self.n_layers < 0:
            problems.append(f"n_layers must be >= 0, got {self.n_layers}")
        if self.l2 < 0:
            problems.append(f"l2 must be >= 0, got {self.l2}")
        ConfigError.collect("cf", problems)


def normalised_adjacency(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> torch.Tensor:
    """Sparse (U + N) x (U + N) matrix D^-1/2 A D^-1/2 of the bipartite interaction graph."""
    pairs = np.unique(np.stack([users, items], 1).astype(np.int64), axis=0)
    rows = np.concatenate([pairs[:, 0], n_users + pairs[:, 1]])
    cols = np.concatenate([n_users + pairs[:, 1], pairs[:, 0]])
    degree = np.bincount(rows, minlength=n_users + n_items).astype(np.float32)
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    values = inv_sqrt[rows] * inv_sqrt[cols]
    size = n_users + n_items
    indices = torch.from_numpy(np.stack([rows, cols]))
    values_t = torch.from_numpy(values)
    return torch.sparse_coo_tensor(
        indices, values_t, (size, size), check_invariants=True
    ).coalesce()


class LightGCN(nn.Module):
    """User/item embeddings, optionally propagated over the training graph.

    Args:
        config: sizes and penalty.
        adjacency: the normalised graph of the training interactions
            (:func:`normalised_adjacency`); unused when ``n_layers == 0``.
    """

    adjacency: torch.Tensor

    def __init__(self, config: CFConfig, adjacency: torch.Tensor) -> None:
        super().__init__()
        # item ids a training loss may score (None: all); set for cold-start splits
        self.training_items: torch.Tensor | None = None
        if config.n_users < 1 or config.n_items < 1:
            raise ValueError("CFConfig.n_users and n_items must be set before building")
        expected = config.n_users + config.n_items
        if tuple(adjacency.shape) != (expected, expected):
            raise ValueError(
                f"adjacency is {tuple(adjacency.shape)}, expected ({expected}, {expected})"
            )
        self.config = config
        self.users = nn.Embedding(config.n_users, config.d_model)
        self.items = nn.Embedding(config.n_items, config.d_model)
        nn.init.normal_(self.users.weight, std=0.1)
        nn.init.normal_(self.items.weight, std=0.1)
        self.register_buffer("adjacency", adjacency, persistent=False)
        self._frozen: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def n_items(self) -> int:
        return self.config.n_items

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (U, d) user and (N, d) item embeddings: the mean over rounds 0..K."""
        ego = torch.cat([self.users.weight, self.items.weight])
        if self.config.n_layers == 0:
            final = ego
        else:
            layers, current = [ego], ego
            for _ in range(self.config.n_layers):
                current = torch.sparse.mm(self.adjacency, current)
                layers.append(current)
            final = torch.stack(layers).mean(0)
        return final[: self.config.n_users], final[self.config.n_users :]

    def train(self, mode: bool = True) -> LightGCN:
        self._frozen = None  # propagated embeddings are cached only while evaluating
        return super().train(mode)

    def bpr_loss(
        self, users: torch.Tensor, items: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """BPR over (user, item, uniform negative) plus the L2 penalty; shapes (B,)."""
        user_final, item_final = self.propagate()
        negatives, clash = sample_negatives(
            items.unsqueeze(-1), self.n_items, 1, generator, self.training_items
        )
        negatives = negatives.reshape(-1)
        u = user_final[users]
        margin = (u * (item_final[items] - item_final[negatives])).sum(-1)
        keep = ~clash.reshape(-1)
        ranking = -(F.logsigmoid(margin) * keep).sum() / keep.sum().clamp(min=1)
        ego = (
            self.users.weight[users].pow(2).sum()
            + self.items.weight[items].pow(2).sum()
            + self.items.weight[negatives].pow(2).sum()
        )
        return ranking + self.config.l2 * ego / (2 * len(users))

    @torch.no_grad()
    def score_users(self, users: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, N) catalogue scores of the given users."""
        if self._frozen is None or self.training:
            self._frozen = self.propagate()
        user_final, item_final = self._frozen
        index = torch.as_tensor(np.asarray(users), dtype=torch.long)
        if len(index) and (int(index.max()) >= self.config.n_users or int(index.min()) < 0):
            raise ValueError(f"user id outside the {self.config.n_users} users of this model")
        return user_final[index] @ item_final.T

    def save_pretrained(self, folder: Path) -> None:
        """Config JSON, plus embeddings and the graph they propagate over."""
        save_config(folder, CF_CONFIG_NAME, self.config)
        adjacency = self.adjacency.coalesce()
        tensors = {k: v.contiguous() for k, v in self.state_dict().items()}
        tensors["graph.indices"] = adjacency.indices().contiguous()
        tensors["graph.values"] = adjacency.values().contiguous()
        save_file(tensors, str(Path(folder) / CF_WEIGHTS_NAME))

    @classmethod
    def from_pretrained(
        cls, folder: Path, n_users: int | None = None, n_items: int | None = None
    ) -> LightGCN:
        """Load a saved model; refuse one built for other user or item counts."""
        config = load_saved_config(folder, CF_CONFIG_NAME, CFConfig, "LightGCN/BPR-MF model")
        problems = [
            f"the model covers {have} {what}, the data has {want}"
            for what, have, want in (
                ("users", config.n_users, n_users),
                ("items", config.n_items, n_items),
            )
            if want is not None and have != want
        ]
        ConfigError.collect(f"checkpoint {folder}", problems)
        tensors = load_file(str(Path(folder) / CF_WEIGHTS_NAME))
        size = config.n_users + config.n_items
        # Indices come from a file: check they lie inside the matrix before using them.
        try:
            adjacency = torch.sparse_coo_tensor(
                tensors.pop("graph.indices"),
                tensors.pop("graph.values"),
                (size, size),
                check_invariants=True,
            ).coalesce()
        except (KeyError, RuntimeError) as exc:
            raise ConfigError(
                f"checkpoint {folder}: the saved graph is missing or corrupt ({exc})"
            ) from exc
        model = cls(config, adjacency)
        model.load_state_dict(tensors)
        return model.eval()


class UserScorer:
    """Adapts a user-embedding model to the evaluator's ``scorer(users, history)``."""

    def __init__(self, model: LightGCN) -> None:
        self.model = model

    def __call__(self, users: np.ndarray, history: UserSequences) -> torch.Tensor:
        self.model.eval()
        return self.model.score_users(users)
