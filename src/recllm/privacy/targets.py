"""What the attacks query: anything that answers "top k after this history".

:class:`ModelTarget` answers from a sequential model in this process under a
:class:`~recllm.privacy.defences.ResponsePolicy`; the HTTP service answers through
:class:`recllm.privacy.http.HttpTarget`. An answer of None is a refused request (no key,
over the rate limit, over the query budget): the attacker learns nothing from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from recllm.data.sequences import UserSequences
from recllm.models.sequential import SequentialRecommender, pad_histories
from recllm.privacy.defences import Answer, ResponsePolicy


class Target(Protocol):
    """A black box that ranks the catalogue after a history."""

    n_items: int

    def answer(self, histories: Sequence[np.ndarray], k: int) -> list[Answer | None]: ...


def history_scores(
    model: SequentialRecommender, histories: Sequence[np.ndarray], batch_size: int = 256
) -> torch.Tensor:
    """(len(histories), n_items) catalogue scores after each non-empty history."""
    model.eval()
    chunks = []
    for start in range(0, len(histories), batch_size):
        batch = [np.asarray(h, dtype=np.int32) for h in histories[start : start + batch_size]]
        lengths = np.array([len(h) for h in batch])
        indptr = np.r_[0, np.cumsum(lengths)]
        flat = np.concatenate(batch) if batch else np.zeros(0, dtype=np.int32)
        seqs = UserSequences(indptr, flat, np.ones(len(flat), dtype=np.float32))
        items, weights, mask = pad_histories(
            seqs, np.arange(len(batch)), model.max_len, model.pad_id
        )
        with torch.no_grad():
            chunks.append(model.score_last(items, weights, mask))
    return torch.cat(chunks) if chunks else torch.zeros(0, model.n_items)


class ScoreCache:
    """A model's catalogue scores per history, computed once: every response policy of a
    run answers the same histories, and a policy only changes what is made of the scores."""

    def __init__(self, model: SequentialRecommender, batch_size: int = 256) -> None:
        self.model = model
        self.batch_size = batch_size
        self._rows: dict[bytes, torch.Tensor] = {}

    def scores(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """(len(histories), n_items) scores after each history."""
        keys = [np.asarray(h, dtype=np.int64).tobytes() for h in histories]
        missing = list(
            {
                key: h for key, h in zip(keys, histories, strict=True) if key not in self._rows
            }.items()
        )
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            rows = history_scores(self.model, [h for _, h in chunk], self.batch_size)
            for (key, _), row in zip(chunk, rows, strict=True):
                self._rows[key] = row
        if not keys:
            return torch.zeros(0, self.model.n_items)
        return torch.stack([self._rows[key] for key in keys])


class ModelTarget:
    """A model in this process, answering as ``policy`` says (its scores from ``cache``
    when given, shared with other targets of the same model)."""

    def __init__(
        self,
        model: SequentialRecommender,
        policy: ResponsePolicy,
        batch_size: int = 256,
        cache: ScoreCache | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.n_items = model.n_items
        self.batch_size = batch_size
        self.cache = cache or ScoreCache(model, batch_size)
        self._generator = torch.Generator().manual_seed(policy.seed)

    def answer(self, histories: Sequence[np.ndarray], k: int) -> list[Answer | None]:
        answers: list[Answer | None] = []
        for start in range(0, len(histories), self.batch_size):
            batch = histories[start : start + self.batch_size]
            scores = self.cache.scores(batch)
            answers.extend(self.policy.respond(scores, batch, k, self._generator))
        return answers

    def eval_scorer(self) -> object:
        """The evaluator's ``scorer(users, history)`` ranking as this target does (the
        policy's noise included), so a defence's accuracy cost is measured on its ranking."""
        from recllm.models.sequential import SequenceScorer

        inner = SequenceScorer(self.model)
        generator = torch.Generator().manual_seed(self.policy.seed + 1)

        def scorer(users: np.ndarray, history: UserSequences) -> torch.Tensor:
            return self.policy.ranking_scores(inner(users, history), generator)

        return scorer


class ModelUserLister:
    """A known user's list as the service makes it, in this process: the model reads the
    user's history (``known``: every interaction the service holds), leaves it and the
    request's ``exclude`` out, and answers under ``policy``; with ``refuse`` it answers
    nothing (the service when per-user requests need a key the attacker lacks). Users
    and items are named by their codes as strings, as the service names them by id."""

    def __init__(
        self,
        model: SequentialRecommender,
        known: UserSequences,
        policy: ResponsePolicy,
        refuse: bool = False,
        cache: ScoreCache | None = None,
    ) -> None:
        self.model = model
        self.known = known
        self.policy = policy
        self.refuse = refuse
        self.cache = cache or ScoreCache(model)
        self._generator = torch.Generator().manual_seed(policy.seed + 2)

    def __call__(self, user_id: str, k: int, exclude: list[str]) -> list[str] | None:
        if self.refuse:
            return None
        history = self.known.items_of(int(user_id)).astype(np.int64)
        scores = self.cache.scores([history])  # (1, N): one forward per user, not per page
        hidden = np.r_[history, np.array([int(i) for i in exclude], dtype=np.int64)]
        answer = self.policy.respond(scores, [hidden], k, self._generator)[0]
        return [str(int(i)) for i in answer.items]
