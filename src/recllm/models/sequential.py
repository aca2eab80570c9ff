"""What every sequential recommender here shares (RecLLM-Adapter, SASRec): the output
type, the interface the recipe and evaluator rely on, and history padding and scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from recllm.data.sequences import UserSequences
from recllm.models.losses import recommendation_loss


@dataclass
class RecOutput:
    """Output of a sequential recommender. Shapes: queries/user (B, L, d); attention
    (B, L, L). ``user``/``attention`` come from the preference aggregator (None for
    models without one); ``backbone_attentions``: each layer's (B, heads, L', L') maps
    when asked for (L' includes a prompt prefix if the model has one)."""

    queries: torch.Tensor
    user: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    backbone_attentions: tuple[torch.Tensor, ...] | None = None


class SequenceModelMixin:
    """Catalogue size, padding id and maximum length, read from ``self.config``
    (which has ``n_items`` and ``max_len``; the padding item is id ``n_items``), and
    whole-catalogue scoring from the model's ``forward`` and ``item_embeddings``."""

    config: Any
    # item ids a training loss may score (None: all); set for cold-start splits
    training_items: torch.Tensor | None = None

    def forward(
        self, items: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
    ) -> RecOutput:  # pragma: no cover - every model defines its own
        raise NotImplementedError

    def item_embeddings(self) -> torch.Tensor:  # pragma: no cover - every model defines its own
        raise NotImplementedError

    def ranking_loss(
        self,
        name: str,
        queries: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        n_negatives: int,
        generator: torch.Generator | None,
        items: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L_rec of ``queries`` against the catalogue, over ``training_items`` only.
        ``items``: the (N, d) catalogue embeddings when the caller already computed them."""
        return recommendation_loss(
            name,
            queries,
            self.item_embeddings() if items is None else items,
            targets,
            mask,
            n_negatives,
            generator,
            pool=self.training_items,
        )

    @property
    def n_items(self) -> int:
        return int(self.config.n_items)

    @property
    def pad_id(self) -> int:
        return int(self.config.n_items)

    @property
    def max_len(self) -> int:
        return int(self.config.max_len)

    @torch.no_grad()
    def score_last(
        self, items: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, N) catalogue scores after each sequence's last real item."""
        queries = self.forward(items, weights, mask).queries  # (B, L, d)
        last = mask.sum(1).clamp(min=1) - 1
        final = queries[torch.arange(len(items)), last]  # (B, d)
        return final @ self.item_embeddings().T


def pad_histories(
    history: UserSequences, users: np.ndarray, max_len: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The last ``max_len`` items of each user's history, right-padded: items, weights,
    mask, each (B, L) with L the longest history in the batch (at least 1)."""
    lengths = np.minimum(history.lengths[users], max_len)
    width = max(int(lengths.max()) if len(users) else 1, 1)
    items = np.full((len(users), width), pad_id, dtype=np.int64)
    weights = np.zeros((len(users), width), dtype=np.float32)
    for row, user in enumerate(users):
        n = int(lengths[row])
        if n:
            items[row, :n] = history.items_of(int(user))[-n:]
            weights[row, :n] = history.weights_of(int(user))[-n:]
    mask = np.arange(width)[None, :] < lengths[:, None]
    return torch.from_numpy(items), torch.from_numpy(weights), torch.from_numpy(mask)


def score_history(
    model: SequentialRecommender, items: np.ndarray, weights: np.ndarray | None = None
) -> torch.Tensor:
    """(n_items,) scores of the whole catalogue after one history (item codes, oldest
    first; the model reads the last ``max_len``). ``weights``: behaviour weights, 1 if None."""
    w = np.ones(len(items), dtype=np.float32) if weights is None else weights.astype(np.float32)
    seqs = UserSequences(np.array([0, len(items)]), items.astype(np.int32), w)
    padded, weights_t, mask = pad_histories(seqs, np.array([0]), model.max_len, model.pad_id)
    return model.score_last(padded, weights_t, mask)[0]


def top_k(scores: torch.Tensor, exclude: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` best (item, score) pairs outside ``exclude`` (and above -inf)."""
    scores = scores.clone()
    scores[torch.from_numpy(exclude.astype(np.int64))] = float("-inf")
    available = int(torch.isfinite(scores).sum())
    top = torch.topk(scores, min(k, available))
    return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))


class SequentialRecommender(Protocol):
    """What the recipe and the evaluator need of a sequential model (ours or a baseline)."""

    @property
    def n_items(self) -> int: ...

    @property
    def pad_id(self) -> int: ...

    @property
    def max_len(self) -> int: ...

    def eval(self) -> Any: ...

    def score_last(
        self, items: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor: ...


class SequenceScorer:
    """Adapts a sequential model to the evaluator's ``scorer(users, history)`` contract.

    Users are scored in chunks of similar history length: a chunk is padded to its
    longest history, so mixing a 20-item history with 3-item ones would spend most of
    the forward pass on padding (on Beauty, sorting made scoring about 2x faster). A
    causal model never attends to padding, so the scores do not depend on the order.
    """

    def __init__(self, model: SequentialRecommender, batch_size: int = 256) -> None:
        self.model = model
        self.batch_size = batch_size

    def __call__(self, users: np.ndarray, history: UserSequences) -> torch.Tensor:
        self.model.eval()
        lengths = np.minimum(history.lengths[users], self.model.max_len)
        order = np.argsort(lengths, kind="stable")
        scores = torch.zeros(len(users), self.model.n_items)
        for start in range(0, len(users), self.batch_size):
            rows = torch.from_numpy(order[start : start + self.batch_size])
            items, weights, mask = pad_histories(
                history, users[rows.numpy()], self.model.max_len, self.model.pad_id
            )
            # Users without history keep uniform scores (ties resolved in expectation):
            # a sequence model has nothing to condition on, and the backbone needs one
            # real token per row.
            known = mask.any(1)
            if known.any():
                scores[rows[known]] = self.model.score_last(
                    items[known], weights[known], mask[known]
                ).float()
        return scores
