"""What a target answers, and how a defence changes it.

A response policy turns the model's catalogue scores for one request into what the
client receives: the top ``k`` unseen items (at most ``max_k``), with their scores as
served (rounded to ``decimals``, as the service does to 4), coarsely rounded, or not at
all (ranks only). ``noise`` adds Gaussian noise to the scores before ranking, scaled by
each request's own score spread, so it changes what is recommended and costs accuracy;
the other policies change only what is shown beside the same ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recllm.errors import ConfigError

SERVED_DECIMALS = 4  # what the service rounds scores to (recllm.serve.api)


@dataclass(frozen=True)
class Answer:
    """A top-k list: item codes best first, and the scores shown (None: ranks only)."""

    items: np.ndarray
    scores: np.ndarray | None


@dataclass(frozen=True)
class ResponsePolicy:
    """How scores become a response.

    Attributes:
        name: the label results are filed under.
        max_k: the longest list one request may get.
        scores: show scores ("shown") or ranks only ("hidden").
        decimals: scores are rounded to this many decimals when shown.
        noise: standard deviation of the Gaussian noise added to the scores before
            ranking, in units of each request's standard deviation of scores (0: none).
        seed: seed of the noise.
    """

    name: str = "none"
    max_k: int = 1000
    scores: str = "shown"
    decimals: int = SERVED_DECIMALS
    noise: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.max_k < 1:
            problems.append(f"max_k must be >= 1, got {self.max_k}")
        if self.scores not in ("shown", "hidden"):
            problems.append(f"scores must be 'shown' or 'hidden', got {self.scores!r}")
        if self.noise < 0:
            problems.append(f"noise must be >= 0, got {self.noise}")
        ConfigError.collect("response policy", problems)

    @property
    def changes_ranking(self) -> bool:
        return self.noise > 0

    def ranking_scores(self, scores: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, N) scores the ranking is made from: ``scores`` plus the policy's noise."""
        if self.noise <= 0:
            return scores
        spread = scores.std(dim=1, keepdim=True).clamp(min=1e-12)  # (B, 1)
        return scores + self.noise * spread * torch.randn(scores.shape, generator=generator)

    def respond(
        self,
        scores: torch.Tensor,
        histories: Sequence[np.ndarray],
        k: int,
        generator: torch.Generator,
    ) -> list[Answer]:
        """The answers to a batch of requests: (B, N) raw scores, each request's history
        (left out of its list), the k asked for (capped at ``max_k``)."""
        ranked = self.ranking_scores(scores, generator).clone()
        for row, history in enumerate(histories):
            ranked[row, torch.from_numpy(np.asarray(history, dtype=np.int64))] = float("-inf")
        size = min(k, self.max_k, ranked.shape[1])
        values, items = torch.topk(ranked, size, dim=1)  # (B, size)
        answers = []
        for row in range(len(histories)):
            keep = torch.isfinite(values[row])
            shown = None
            if self.scores == "shown":
                shown = np.round(values[row][keep].numpy().astype(np.float64), self.decimals)
            answers.append(Answer(items[row][keep].numpy().astype(np.int64), shown))
        return answers
