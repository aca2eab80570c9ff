"""``recllm bench constraints``: what a query's genre or year constraint does to a ranking.

For every test user a realistic constraint is set: the genre most frequent in the user's
training history ("more of what I like"), and on catalogues with years the decade most
frequent there. Each is applied to a trained run's scores three ways: not at all, as a
boost, as a filter. Reported per way: the constraint satisfaction rate (share of the
top-10, history excluded, that meets the constraint) and full-catalogue Recall/NDCG on the
test items with the change relative to no constraint (the accuracy cost).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recllm.data.sequences import UserSequences
from recllm.errors import RecLLMError
from recllm.eval.evaluator import Scorer, evaluate
from recllm.routing.catalog import Catalog
from recllm.routing.constraints import apply_constraints, satisfies
from recllm.routing.schema import Slots

RESULTS_FILE = "routing/constraints-{dataset}.json"
MODES = ("none", "boost", "filter")
TOP = 10


class CachedScorer:
    """The run's scores per batch of users, computed once for all modes and constraints."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.cache: dict[bytes, torch.Tensor] = {}

    def __call__(self, users: np.ndarray, history: UserSequences) -> torch.Tensor:
        key = users.tobytes()
        if key not in self.cache:
            self.cache[key] = torch.as_tensor(self.scorer(users, history)).float()
        return self.cache[key]


class ConstrainedScorer:
    """Scores with each user's constraint applied; counts how much of each top-10 meets it."""

    def __init__(self, base: CachedScorer, masks: dict[int, np.ndarray | None], mode: str) -> None:
        self.base, self.masks, self.mode = base, masks, mode
        self.met = 0
        self.listed = 0

    def __call__(self, users: np.ndarray, history: UserSequences) -> torch.Tensor:
        scores = self.base(users, history).clone()
        for row, user in enumerate(users):
            meets = self.masks.get(int(user))
            if self.mode != "none":
                scores[row] = apply_constraints(scores[row], meets, self.mode)
        shown = scores.clone()
        rows, items = history.rows_of(users)
        shown[torch.from_numpy(rows), torch.from_numpy(items.astype(np.int64))] = float("-inf")
        top = torch.topk(shown, TOP, dim=1).indices.numpy()
        for row, user in enumerate(users):
            meets = self.masks.get(int(user))
            if meets is not None:
                self.met += int(meets[top[row]].sum())
                self.listed += TOP
        return scores


def user_constraints(
    catalog: Catalog, train: UserSequences, users: np.ndarray
) -> dict[str, dict[int, Slots]]:
    """Per constraint kind, each user's constraint from their training history."""
    useful = set(catalog.genres)
    kinds: dict[str, dict[int, Slots]] = {"genre": {}}
    has_years = bool((catalog.years > 0).any())
    if has_years:
        kinds["decade"] = {}
    for user in users:
        items = train.items_of(int(user))
        genres = Counter(g for i in items for g in catalog.genres_of[i] if g in useful)
        if genres:
            kinds["genre"][int(user)] = Slots(genres=(genres.most_common(1)[0][0],))
        if has_years:
            decades = Counter(int(catalog.years[i]) // 10 * 10 for i in items if catalog.years[i])
            if decades:
                decade = decades.most_common(1)[0][0]
                kinds["decade"][int(user)] = Slots(year_from=decade, year_to=decade + 9)
    return kinds


def run(args: argparse.Namespace) -> dict[str, Any]:
    from recllm.recipes.inference import load_run
    from recllm.recipes.models import make_scorer

    if args.checkpoint is None:
        raise RecLLMError("bench constraints needs --checkpoint RUN_DIR (a `recllm train` output)")
    loaded = load_run(Path(args.checkpoint), args.data_dir, progress=False)
    split = loaded.split
    catalog = Catalog.from_dataset(loaded.dataset)
    users = UserSequences.from_frame(split.targets("test"), split.n_users).users_with_items()
    base = CachedScorer(make_scorer(loaded.model))
    figures: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "dataset": loaded.dataset.name,
        "model": loaded.config.model,
        "protocol": (
            "test users; constraint from the user's training history (most frequent genre; "
            "most frequent decade); full catalogue, history excluded; satisfaction over the "
            f"top-{TOP}"
        ),
        "constraints": {},
    }
    cache: dict[Slots, np.ndarray | None] = {}
    for kind, per_user in user_constraints(catalog, split.sequences("train"), users).items():
        masks = {u: cache.setdefault(s, satisfies(catalog, s)) for u, s in per_user.items()}
        results: dict[str, Any] = {"users_constrained": len(masks)}
        for mode in MODES:
            scorer = ConstrainedScorer(base, masks, mode)
            metrics = evaluate(scorer, split, "test", progress=False).metrics
            results[mode] = {
                **{
                    k: round(v, 4)
                    for k, v in metrics.items()
                    if k.split("@")[0] in ("recall", "ndcg")
                },
                f"satisfaction@{TOP}": round(scorer.met / max(1, scorer.listed), 4),
            }
        for mode in ("boost", "filter"):
            results[mode]["relative_change"] = {
                key: round(results[mode][key] / results["none"][key] - 1, 4)
                for key in ("recall@10", "ndcg@10")
                if results["none"][key] > 0
            }
        figures["constraints"][kind] = results
        print(
            f"{kind}: satisfaction@{TOP} none {results['none'][f'satisfaction@{TOP}']:.3f}, "
            f"boost {results['boost'][f'satisfaction@{TOP}']:.3f}, "
            f"filter {results['filter'][f'satisfaction@{TOP}']:.3f}; recall@10 "
            f"{results['none']['recall@10']:.4f} / {results['boost']['recall@10']:.4f} / "
            f"{results['filter']['recall@10']:.4f}"
        )
    return figures
