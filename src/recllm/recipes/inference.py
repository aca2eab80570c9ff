"""Load a finished run (config + best adapter) for evaluation and recommendation."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recllm.config import from_dict
from recllm.data.identity import catalogue_identity, check_identity
from recllm.data.schema import Dataset
from recllm.data.sequences import UserSequences
from recllm.data.splits import Split
from recllm.errors import RecLLMError
from recllm.fsutil import damaged_file_errors
from recllm.models.lightgcn import LightGCN
from recllm.models.sequential import score_history, top_k
from recllm.recipes.model_names import CF_MODELS
from recllm.recipes.models import TrainableModel, load_model, saved_model_marker
from recllm.recipes.train import TrainConfig, build_pipeline

log = logging.getLogger(__name__)


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
    with damaged_file_errors(config_path):
        raw = json.loads(config_path.read_text())
    if not isinstance(raw, dict):
        raise RecLLMError(f"{config_path} is damaged: it holds no config")
    config = from_dict(TrainConfig, raw)
    if not (best / saved_model_marker(config.model)).is_file():
        raise RecLLMError(not_a_run)
    warn_if_unfinished(run_dir, config)
    pipeline = build_pipeline(config, progress=progress, data_dir=data_dir)
    check_identity(
        run_dir, catalogue_identity(pipeline.split.dataset), users_matter=config.model in CF_MODELS
    )
    with damaged_file_errors(best):
        model = load_model(best, config, pipeline)
    model.eval()
    return LoadedRun(config, pipeline.split.dataset, pipeline.split, model)


def warn_if_unfinished(run_dir: Path, config: TrainConfig) -> None:
    """Say so when a run is still training or stopped before its end: its ``best/`` is
    the best of the epochs done so far, not the run's result."""
    from recllm.recipes.checkpoint import last_loop_state
    from recllm.recipes.run_folder import lock_holder

    holder = lock_holder(run_dir)
    if holder is not None:
        log.warning(
            "%s is still being trained (pid %d): using its best weights so far", run_dir, holder
        )
        return
    loop = last_loop_state(run_dir) or {}
    done = int(loop.get("epoch", 0))
    if loop.get("stopped") or done >= config.trainer.epochs:
        return
    log.warning(
        "%s did not finish (%d of %d epochs done): using its best weights so far; continue it "
        "with `recllm train CONFIG --resume`",
        run_dir,
        done,
        config.trainer.epochs,
    )


def resolve_user(run: LoadedRun, raw_user: str, hint: str = "") -> int:
    """User code of a raw user id (spaces a person typed around it ignored), or a clear
    error ending in ``hint`` (what the calling command offers instead)."""
    raw_user = str(raw_user).strip()
    matches = np.flatnonzero(run.dataset.user_ids == raw_user)
    if not len(matches):
        examples = ", ".join(repr(str(u)) for u in run.dataset.user_ids[:3])
        raise RecLLMError(
            f"unknown user {raw_user!r} in {run.dataset.name} (after preprocessing; known ids "
            f"look like {examples}){hint}"
        )
    return int(matches[0])


def user_history(
    run: LoadedRun, raw_user: str, hint: str = ""
) -> tuple[int, np.ndarray, np.ndarray]:
    """(user code, items oldest first, behaviour weights): everything the user did, as
    evaluation sees it."""
    user = resolve_user(run, raw_user, hint)
    sequences = UserSequences.from_frame(run.dataset.interactions, run.dataset.n_users)
    return user, sequences.items_of(user), sequences.weights_of(user)


def resolve_items(run: LoadedRun, raw_items: list[str]) -> np.ndarray:
    """Item codes of raw item ids (spaces around each ignored); unknown ids are an error
    naming them."""
    raw_items = [str(i).strip() for i in raw_items]
    index = {item: code for code, item in enumerate(run.dataset.items["item_id"].astype(str))}
    unknown = [i for i in raw_items if i not in index]
    if unknown:
        raise RecLLMError(
            f"unknown item id(s) {unknown[:10]} in the catalogue of {run.dataset.name}"
        )
    return np.array([index[i] for i in raw_items], dtype=np.int32)


def require_positive_k(k: int) -> None:
    """``-k`` asks for items: fewer than one would answer nothing (or fail in ranking)."""
    if k < 1:
        raise RecLLMError(f"-k must be >= 1 (how many items to return), got {k}")


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
    require_positive_k(k)
    return top_k(score_items(run, history_items, weights, user), history_items, k)


def score_items(
    run: LoadedRun,
    history_items: np.ndarray,
    weights: np.ndarray | None = None,
    user: int | None = None,
) -> torch.Tensor:
    """(n_items,) scores of the whole catalogue for one user or history (see recommend)."""
    if isinstance(run.model, LightGCN):
        if user is None:
            raise RecLLMError(
                f"a {run.config.model} model scores the users it was trained on: give --user, "
                "not --history"
            )
        return run.model.score_users(np.array([user]))[0]
    if len(history_items) == 0:
        raise RecLLMError("the history is empty: a sequential model needs at least one item")
    return score_history(run.model, history_items, weights)
