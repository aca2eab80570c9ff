"""Load a finished run (config + best adapter) for evaluation and recommendation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recllm.config import from_dict
from recllm.data.schema import Dataset
from recllm.data.sequences import UserSequences
from recllm.data.splits import Split
from recllm.errors import RecLLMError
from recllm.models.lightgcn import LightGCN
from recllm.recipes.models import TrainableModel, load_model, saved_model_marker
from recllm.recipes.train import TrainConfig, build_pipeline


@dataclass
class LoadedRun:
    """A trained model with the exact data pipeline it was trained on."""

    config: TrainConfig
    dataset: Dataset
    split: Split
    model: TrainableModel


def load_run(run_dir: Path, data_dir: Path | None = None, progress: bool = True) -> LoadedRun:
    """Rebuild data and model from ``run_dir/config.json`` and ``run_dir/best``."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    best = run_dir / "best"
    not_a_run = (
        f"{run_dir} is not a finished training run (expected config.json and a saved model in "
        "best/); pass the output_dir of `recllm train`"
    )
    if not config_path.is_file():
        raise RecLLMError(not_a_run)
    config = from_dict(TrainConfig, json.loads(config_path.read_text()))
    if not (best / saved_model_marker(config.model)).is_file():
        raise RecLLMError(not_a_run)
    pipeline = build_pipeline(config, progress=progress, data_dir=data_dir)
    model = load_model(best, config, pipeline)
    model.eval()
    return LoadedRun(config, pipeline.split.dataset, pipeline.split, model)


def resolve_user(run: LoadedRun, raw_user: str) -> int:
    """User code of a raw user id, or a clear error."""
    matches = np.flatnonzero(run.dataset.user_ids == str(raw_user))
    if not len(matches):
        raise RecLLMError(
            f"unknown user {raw_user!r} in {run.dataset.name} (after preprocessing); "
            "pass --history with item ids for a user not in the data"
        )
    return int(matches[0])


def resolve_items(run: LoadedRun, raw_items: list[str]) -> np.ndarray:
    """Item codes of raw item ids; unknown ids are an error naming them."""
    index = {item: code for code, item in enumerate(run.dataset.items["item_id"].astype(str))}
    unknown = [i for i in raw_items if i not in index]
    if unknown:
        raise RecLLMError(
            f"unknown item id(s) {unknown[:10]} in the catalogue of {run.dataset.name}"
        )
    return np.array([index[i] for i in raw_items], dtype=np.int32)


def recommend(
    run: LoadedRun,
    history_items: np.ndarray,
    k: int = 10,
    weights: np.ndarray | None = None,
    user: int | None = None,
) -> list[tuple[int, float]]:
    """Top-``k`` (item code, score) after a history (oldest first), history excluded.

    Sequential models read the history (the most recent ``max_len`` items); user-embedding
    models (BPR-MF, LightGCN) score a known ``user`` and only exclude the history.
    """
    if k < 1:
        raise RecLLMError(f"k must be >= 1, got {k}")
    if isinstance(run.model, LightGCN):
        if user is None:
            raise RecLLMError(
                f"a {run.config.model} model scores the users it was trained on: give --user, "
                "not --history"
            )
        return _top_k(run.model.score_users(np.array([user]))[0], history_items, k)
    if len(history_items) == 0:
        raise RecLLMError("the history is empty: a sequential model needs at least one item")
    w = (
        np.ones(len(history_items), dtype=np.float32)
        if weights is None
        else weights.astype(np.float32)
    )
    seqs = UserSequences(np.array([0, len(history_items)]), history_items.astype(np.int32), w)
    from recllm.models.sequential import pad_histories

    items, weights_t, mask = pad_histories(seqs, np.array([0]), run.model.max_len, run.model.pad_id)
    return _top_k(run.model.score_last(items, weights_t, mask)[0], history_items, k)


def _top_k(scores: torch.Tensor, history_items: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` best (item, score) pairs outside the history."""
    scores = scores.clone()
    scores[torch.from_numpy(history_items.astype(np.int64))] = float("-inf")
    top = torch.topk(scores, min(k, len(scores) - len(set(history_items.tolist()))))
    return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))
