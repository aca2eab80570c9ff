"""Batched full-catalogue evaluation of any scorer on a split.

The evaluator owns the protocol (which users, which targets, which items are excluded,
tie handling) so that every model, ours and the baselines, is measured identically.
Memory stays bounded by ``batch_size x n_items`` scores: a 27k-item catalogue at the
default 1,024 users per batch needs about 110 MB of scores plus masks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from recllm.data.sequences import UserSequences
from recllm.data.splits import Split, Stage
from recllm.distributed import World, all_gather_objects
from recllm.errors import ConfigError, RecLLMError
from recllm.eval.metrics import METRIC_NAMES, ranking_metrics, target_ranks
from recllm.progress import progress_bar

log = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray, UserSequences], torch.Tensor]
"""``scorer(users, history) -> (len(users), n_items)`` scores; higher is better."""


@dataclass
class EvalConfig:
    """How ranking quality is measured.

    Attributes:
        ks: cut-offs K of every metric.
        batch_size: users scored at once (bounds memory: batch_size x n_items floats).
        exclude_history: mask the items the user already has in the history (the
            standard full-ranking protocol); targets themselves are never masked.
        sampled: also compute the *sampled* metrics (target vs ``n_negatives`` sampled
            items, ``"uniform"`` or by training ``"popularity"``); reported apart and
            labelled, never in place of the full-ranking ones.
        n_negatives: negatives per target for the sampled metrics.
        seed: seed of the negative sampling.
    """

    ks: tuple[int, ...] = (10, 20)
    batch_size: int = 1024
    exclude_history: bool = True
    sampled: Literal["uniform", "popularity"] | None = None
    n_negatives: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        self.ks = tuple(int(k) for k in self.ks)
        problems = []
        if not self.ks or min(self.ks) < 1:
            problems.append(f"ks must be positive integers, got {self.ks}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.sampled not in (None, "uniform", "popularity"):
            problems.append(
                f"sampled must be None, 'uniform' or 'popularity', got {self.sampled!r}"
            )
        if self.n_negatives < 1:
            problems.append(f"n_negatives must be >= 1, got {self.n_negatives}")
        ConfigError.collect("evaluation", problems)


@dataclass
class EvalResult:
    """Mean metrics over evaluated users, named like ``ndcg@10``."""

    metrics: dict[str, float]
    n_users: int
    n_targets: int
    seconds: float
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    sampled: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "metrics": self.metrics,
            "n_users": self.n_users,
            "n_targets": self.n_targets,
            "seconds": round(self.seconds, 3),
            "groups": self.groups,
            "sampled": self.sampled,
        }


class _Sums:
    """Running sums of per-user metrics for one group of targets."""

    def __init__(self, ks: tuple[int, ...]) -> None:
        self.ks = ks
        self.total: dict[str, float] = {f"{m}@{k}": 0.0 for k in ks for m in METRIC_NAMES}
        self.users = 0
        self.targets = 0

    def add(self, greater: torch.Tensor, ties: torch.Tensor, mask: torch.Tensor) -> None:
        rows = mask.any(1)
        if not rows.any():
            return
        greater, ties, mask = greater[rows], ties[rows], mask[rows]
        self.users += int(rows.sum())
        self.targets += int(mask.sum())
        for k in self.ks:
            for name, values in ranking_metrics(greater, ties, mask, k).items():
                self.total[f"{name}@{k}"] += float(values.sum())

    def merge(self, other: _Sums) -> None:
        """Add another batch's sums (in batch order, so totals are bit-identical to
        adding each batch directly)."""
        for key, value in other.total.items():
            self.total[key] += value
        self.users += other.users
        self.targets += other.targets

    def means(self) -> dict[str, float]:
        return {key: value / max(self.users, 1) for key, value in self.total.items()}


def evaluate(
    scorer: Scorer,
    split: Split,
    stage: Stage = "test",
    config: EvalConfig | None = None,
    progress: bool = True,
    world: World | None = None,
    item_groups: Mapping[str, np.ndarray] | None = None,
) -> EvalResult:
    """Rank the whole catalogue for every user with ``stage`` targets and average metrics.

    ``world``: under ``torchrun``, every rank scores every ``world_size``-th batch of
    users, and the per-batch sums are gathered and added in batch order, so every rank
    returns metrics identical to one process's. (Sampled metrics draw negatives in one
    stream over all batches: with them every rank evaluates every user.)

    Users without targets are skipped (they are not counted); a stage without any is an
    error, not a table of zeros. With a cold-start split
    (targets have a ``cold`` column) metrics are also reported for cold and warm targets
    apart under ``groups``. ``item_groups`` names sets of items (a boolean array over the
    catalogue each, e.g. the long tail): metrics over the targets in each set are reported
    under ``groups`` too, each user counted over their targets in the set.
    """
    config = config or EvalConfig()
    history = split.sequences(stage)
    target_frame = split.targets(stage)
    targets = UserSequences.from_frame(target_frame, split.n_users)
    cold_flags = target_frame["cold"].to_numpy() if "cold" in target_frame.columns else None
    users = targets.users_with_items()
    require_targets(split, stage, len(users))
    popularity = np.bincount(split.train["item"].to_numpy(), minlength=split.n_items)
    groups = ["all"] if cold_flags is None else ["all", "cold", "warm"]
    members = _item_group_members(item_groups or {}, split.n_items, groups)
    groups += list(members)
    sampled_sums = _Sums(config.ks)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    world = world or World()
    sharded = world.distributed and not config.sampled
    batches = list(range(0, len(users), config.batch_size))
    if sharded:
        batches = batches[world.rank :: world.world_size]
    partial: list[tuple[int, dict[str, _Sums]]] = []
    for begin in progress_bar(batches, desc=f"evaluate[{stage}]", enabled=progress, unit="batch"):
        sums = {name: _Sums(config.ks) for name in groups}
        partial.append((begin, sums))
        batch = users[begin : begin + config.batch_size]
        scores = _checked_scores(scorer(batch, history), len(batch), split.n_items)
        target_ids, target_mask, target_pos = _padded(targets, batch)
        excluded = (
            _exclusion_mask(history, batch, split.n_items) if config.exclude_history else None
        )
        if excluded is not None:
            rows = torch.arange(len(batch)).unsqueeze(1).expand_as(target_ids)
            excluded[rows[target_mask], target_ids[target_mask]] = False
            scores.masked_fill_(excluded, float("-inf"))
        greater, ties = target_ranks(scores, target_ids)
        sums["all"].add(greater, ties, target_mask)
        if cold_flags is not None:
            is_cold = torch.zeros_like(target_mask)
            is_cold[target_mask] = torch.from_numpy(cold_flags[target_pos[target_mask.numpy()]])
            sums["cold"].add(greater, ties, target_mask & is_cold)
            sums["warm"].add(greater, ties, target_mask & ~is_cold)
        if members:
            padded_safe = target_ids.clamp(min=0)  # padding (-1) is masked out anyway
            for name, in_group in members.items():
                sums[name].add(greater, ties, target_mask & in_group[padded_safe])
        if config.sampled:
            taken = excluded if excluded is not None else torch.zeros_like(scores, dtype=torch.bool)
            taken[
                torch.arange(len(batch)).unsqueeze(1).expand_as(target_ids)[target_mask],
                target_ids[target_mask],
            ] = True
            _add_sampled(
                sampled_sums, scores, target_ids, target_mask, taken, popularity, config, generator
            )
    if sharded:
        partial = sorted(
            (entry for rank in all_gather_objects(partial) for entry in rank), key=lambda e: e[0]
        )
    sums = {name: _Sums(config.ks) for name in groups}
    for _, batch_sums in partial:
        for name in groups:
            sums[name].merge(batch_sums[name])
    seconds = time.perf_counter() - start
    k = config.ks[0]
    means = sums["all"].means()
    log.log(  # the log's one line per evaluation (the bar above shows only on a terminal)
        logging.INFO if world.is_main else logging.DEBUG,
        "evaluate[%s]: %d users, recall@%d %.4f, ndcg@%d %.4f, %.1f s",
        stage,
        sums["all"].users,
        k,
        means.get(f"recall@{k}", float("nan")),
        k,
        means.get(f"ndcg@{k}", float("nan")),
        seconds,
    )
    sampled = {}
    if config.sampled:
        label = f"sampled_{config.sampled}_{config.n_negatives}"
        sampled = {f"{label}/{key}": value for key, value in sampled_sums.means().items()}
    return EvalResult(
        metrics=means,
        n_users=sums["all"].users,
        n_targets=sums["all"].targets,
        seconds=seconds,
        groups={
            name: {**s.means(), "n_users": s.users} for name, s in sums.items() if name != "all"
        },
        sampled=sampled,
    )


def require_targets(split: Split, stage: Stage, n_users: int | None = None) -> None:
    """Refuse a stage without any user to evaluate: a table of zeros would read as a
    result. ``n_users``: users with targets, when already counted."""
    if n_users is None:
        n_users = split.targets(stage)["user"].nunique()
    if not n_users:
        raise RecLLMError(
            f"nothing to evaluate: the {stage} split of {split.dataset.name} has no user with "
            f"a {stage} target (protocol {split.protocol}, {split.n_users} users); use more "
            "data, a lower k-core or another split protocol"
        )


def _checked_scores(scores: torch.Tensor | np.ndarray, batch: int, n_items: int) -> torch.Tensor:
    scores = torch.as_tensor(scores)
    if scores.shape != (batch, n_items):
        raise ValueError(
            f"scorer returned shape {tuple(scores.shape)}, expected ({batch}, {n_items}) "
            "(one score per catalogue item for each user)"
        )
    # A private copy: the evaluator masks it in place (scorers may return shared views).
    scores = scores.to(torch.float32, copy=True)
    if torch.isnan(scores).any():
        raise ValueError("scorer returned NaN scores")
    if torch.isinf(scores).any():
        # -inf from the scorer must still rank above excluded items, which become -inf.
        info = torch.finfo(torch.float32)
        scores.nan_to_num_(posinf=info.max, neginf=info.min)
    return scores


def _item_group_members(
    item_groups: Mapping[str, np.ndarray], n_items: int, taken: list[str]
) -> dict[str, torch.Tensor]:
    """``item_groups`` as boolean tensors over the catalogue, checked."""
    members = {}
    for name, group in item_groups.items():
        if name in taken:
            raise ValueError(f"item group {name!r} clashes with a built-in group {taken}")
        group = np.asarray(group)
        if group.dtype != np.bool_ or group.shape != (n_items,):
            raise ValueError(
                f"item group {name!r} must be a boolean array over the {n_items} items, got "
                f"{group.dtype} of shape {group.shape}"
            )
        members[name] = torch.from_numpy(group)
    return members


def _padded(
    seqs: UserSequences, users: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(B, T) padded items (-1), their mask, and each entry's position in ``seqs.items``."""
    lengths = seqs.lengths[users]
    width = int(lengths.max()) if len(users) else 0
    ids = np.full((len(users), width), -1, dtype=np.int64)
    pos = np.zeros((len(users), width), dtype=np.int64)
    column = np.arange(width)
    mask = column[None, :] < lengths[:, None]
    pos[mask] = (seqs.indptr[users][:, None] + column[None, :])[mask]
    ids[mask] = seqs.items[pos[mask]]
    return torch.from_numpy(ids), torch.from_numpy(mask), pos


def _exclusion_mask(history: UserSequences, users: np.ndarray, n_items: int) -> torch.Tensor:
    rows, items = history.rows_of(users)
    mask = torch.zeros((len(users), n_items), dtype=torch.bool)
    mask[torch.from_numpy(rows), torch.from_numpy(items.astype(np.int64))] = True
    return mask


def _add_sampled(
    sums: _Sums,
    scores: torch.Tensor,
    target_ids: torch.Tensor,
    target_mask: torch.Tensor,
    taken: torch.Tensor,
    popularity: np.ndarray,
    config: EvalConfig,
    generator: torch.Generator,
) -> None:
    """Rank each target among ``n_negatives`` items the user has not interacted with."""
    n_items = scores.shape[1]
    if config.sampled == "popularity":
        weights = torch.as_tensor(popularity, dtype=torch.float64) + 1.0
    else:
        weights = torch.ones(n_items, dtype=torch.float64)
    batch = scores.shape[0]
    negatives = torch.multinomial(
        weights, batch * config.n_negatives, replacement=True, generator=generator
    )
    negatives = negatives.view(batch, config.n_negatives)
    for _ in range(100):
        clash = taken.gather(1, negatives)
        if not clash.any():
            break
        redraw = torch.multinomial(weights, int(clash.sum()), replacement=True, generator=generator)
        negatives[clash] = redraw
    negative_scores = scores.gather(1, negatives)  # (B, n_neg)
    for t in range(target_ids.shape[1]):
        present = target_mask[:, t]
        if not present.any():
            continue
        own = scores.gather(1, target_ids[:, t : t + 1].clamp(min=0))
        greater = (negative_scores > own).sum(1, keepdim=True)
        ties = (negative_scores == own).sum(1, keepdim=True)
        sums.add(greater, ties, present.unsqueeze(1))
