"""Accuracy by how often the target item was trained on: the long tail against the head.

    python benchmarks/target_popularity.py --data-dir ../shared/data RUN [RUN ...] \
        [--adjust 0.1 0.2 ...] [--by age]

Each RUN is a finished ``recllm train`` folder; its best weights are evaluated on the
validation and test splits (full catalogue, as in training), with the targets grouped by
their item's interactions in the training split. All runs must share one dataset and
split. Writes ``results/<dataset>/target-popularity.json`` (``target-age.json`` with
``--by age``; or ``--out``) with the command and commit. A gap between two models that
sits in one bucket says where to look; the share of targets in each bucket says how much
the valid and test splits differ there.

Beside the targets, the same buckets count the run's own top-10 lists (``top10_share``):
a model that fills its lists with popular items more than the targets are popular leans to
the head. ``item_norm`` is the mean length of the items' embeddings per bucket (for
RecLLM-Adapter also of their ID and text parts): a head lean that comes from longer
embeddings of popular items shows there. ``--adjust`` then tries to undo that lean: every
score minus ``alpha * log(1 + training count)`` of its item, for each alpha given; alpha is
chosen on validation NDCG@10 (0, no correction, is always a candidate) and test reported at
it.

``--by age`` groups the items by when they first occur in training instead (the oldest
half, the next 30 %, the next 15 % and the newest 5 % of the items seen; an item never
seen counts as newest): where the targets lean to new products, a model that cannot tell
new from old items trails there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recllm.bench import provenance, write_json
from recllm.data.sequences import UserSequences
from recllm.data.splits import Split, Stage, age_groups
from recllm.eval.evaluator import Scorer

# training interactions of the target item: [low, high)
BUCKETS = ((0, 5), (5, 10), (10, 20), (20, 50), (50, None))
# shares of the items seen in training, oldest first (by their first interaction)
AGE_SHARES = (("oldest 50%", 0.5), ("next 30%", 0.8), ("next 15%", 0.95), ("newest 5%", 1.0))
GROUPINGS = {
    "popularity": "training interactions of the target item",
    "age": "when the target item first occurs in training, as a share of the items seen",
}


def bucket_name(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high - 1}"


def item_buckets(train_items: np.ndarray, n_items: int) -> dict[str, np.ndarray]:
    """One boolean array over the catalogue per bucket of training interactions."""
    counts = np.bincount(train_items, minlength=n_items)
    return {
        bucket_name(low, high): (counts >= low) & (counts < (high or np.iinfo(np.int64).max))
        for low, high in BUCKETS
    }


def age_buckets(first_seen: np.ndarray) -> dict[str, np.ndarray]:
    """One boolean array over the catalogue per age group of :data:`AGE_SHARES`, from
    each item's first training interaction (NaN: never seen, counted as newest)."""
    groups = age_groups(first_seen, [share for _, share in AGE_SHARES[:-1]])
    return {name: groups == index for index, (name, _) in enumerate(AGE_SHARES)}


class ScoredStage:
    """Every evaluated user's scores for one stage, computed once, so that the evaluator
    can rank them again under each popularity correction without running the model."""

    def __init__(self, scorer: Scorer, split: Split, stage: Stage, batch_size: int = 1024) -> None:
        targets = UserSequences.from_frame(split.targets(stage), split.n_users)
        self.users = targets.users_with_items()
        self.row_of = np.full(split.n_users, -1, dtype=np.int64)
        self.row_of[self.users] = np.arange(len(self.users))
        self.history = split.sequences(stage)
        self.scores = torch.cat(
            [
                scorer(self.users[begin : begin + batch_size], self.history).float()
                for begin in range(0, len(self.users), batch_size)
            ]
        )

    def top10_share(self, buckets: dict[str, np.ndarray]) -> dict[str, float]:
        """The share of the top-10 slots (history excluded, as evaluated) in each bucket."""
        bucket_of = np.zeros(self.scores.shape[1], dtype=np.int64)
        for index, members in enumerate(buckets.values()):
            bucket_of[members] = index
        rows, items = self.history.rows_of(self.users)
        masked = self.scores.clone()
        masked[torch.from_numpy(rows), torch.from_numpy(items.astype(np.int64))] = float("-inf")
        top = masked.topk(10, dim=1).indices.numpy()
        counts = np.bincount(bucket_of[top].ravel(), minlength=len(buckets))
        return {name: float(n / counts.sum()) for name, n in zip(buckets, counts, strict=True)}

    def scorer(self, penalty: torch.Tensor) -> Scorer:
        """A scorer returning the stored scores minus ``penalty`` (one value per item)."""

        def score(users: np.ndarray, history: UserSequences) -> torch.Tensor:
            return self.scores[torch.from_numpy(self.row_of[users])] - penalty

        return score


@torch.no_grad()
def item_norms(model: Any, buckets: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean embedding length per bucket of the items as scored and, for RecLLM-Adapter's
    summed items, of their ID and projected-text parts."""
    parts = {"item": model.item_embeddings()}
    adapter = getattr(model, "adapter", None)
    if adapter is not None and adapter.item_ids is not None and adapter.meta_pooled is not None:
        parts["id"] = adapter.item_ids.weight[: model.n_items]
        parts["text"] = adapter.meta_pooled(model.pooled)[: model.n_items]
    lengths = {name: part.float().norm(dim=1).numpy() for name, part in parts.items()}
    return {
        name: {
            bucket: float(length[members].mean())
            for bucket, members in buckets.items()
            if members.any()  # a small catalogue may leave a bucket empty
        }
        for name, length in lengths.items()
    }


def measure(
    run_dir: Path, data_dir: Path | None, alphas: list[float], by: str = "popularity"
) -> tuple[str, dict[str, Any]]:
    """The dataset's name and the run's metrics per stage, overall and per bucket (of
    :data:`GROUPINGS` ``by``); with ``alphas``, the same under each popularity
    correction, and the one validation picks."""
    from recllm.eval.evaluator import evaluate
    from recllm.recipes.inference import load_run
    from recllm.recipes.models import make_scorer

    run = load_run(run_dir, data_dir=data_dir, progress=False)
    split = run.split
    train_items = split.train["item"].to_numpy()
    if by == "age":
        buckets = age_buckets(split.first_seen())
    else:
        buckets = item_buckets(train_items, split.n_items)
    log_counts = torch.from_numpy(np.log1p(np.bincount(train_items, minlength=split.n_items)))
    scorer = make_scorer(run.model)
    figures: dict[str, Any] = {
        "model": run.config.model,
        "split": split.summary(),
        "item_norm": item_norms(run.model, buckets),
    }
    adjusted: dict[str, dict[str, Any]] = {}
    for stage in ("valid", "test"):
        scored = ScoredStage(scorer, split, stage)
        for alpha in [0.0, *alphas]:
            penalty = (alpha * log_counts).float()
            result = evaluate(
                scored.scorer(penalty), split, stage, progress=False, item_groups=buckets
            )
            rows = {"all": {**result.metrics, "n_users": result.n_users}, **result.groups}
            adjusted.setdefault(str(alpha), {})[stage] = rows
        figures[stage] = adjusted["0.0"][stage]
        figures.setdefault("top10_share", {})[stage] = scored.top10_share(buckets)
        del scored
    if alphas:
        chosen = max(adjusted, key=lambda alpha: adjusted[alpha]["valid"]["all"]["ndcg@10"])
        figures["adjusted"] = {"chosen_alpha": float(chosen), "by_alpha": adjusted}
    return split.dataset.name, figures


def cell(figures: dict[str, Any], stage: str, group: str) -> str:
    """One run's NDCG@10 on a group of targets, with its top-10 share of that bucket."""
    ndcg = f"{figures[stage][group]['ndcg@10']:.4f}"
    if group == "all":
        return ndcg
    return f"{ndcg} (top-10 share {figures['top10_share'][stage][group]:.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="finished `recllm train` folders")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the datasets are")
    parser.add_argument("--out", type=Path, default=None, help="results file to write")
    parser.add_argument(
        "--adjust",
        type=float,
        nargs="*",
        default=[],
        metavar="ALPHA",
        help="also rank by score - ALPHA * log(1 + training count), ALPHA chosen on validation",
    )
    parser.add_argument(
        "--by",
        choices=list(GROUPINGS),
        default="popularity",
        help="group the items by training interactions (default) or by first interaction",
    )
    args = parser.parse_args(argv)
    if any(alpha < 0 for alpha in args.adjust):
        parser.error(f"--adjust takes alphas >= 0, got {args.adjust}")
    measured = {str(run): measure(run, args.data_dir, args.adjust, args.by) for run in args.runs}
    datasets = {name for name, _ in measured.values()}
    splits = {repr(figures["split"]) for _, figures in measured.values()}
    if len(datasets) != 1 or len(splits) != 1:
        raise SystemExit(f"the runs must share one dataset and split, got {sorted(datasets)}")
    (dataset,) = datasets
    runs = {run: figures for run, (_, figures) in measured.items()}
    first = next(iter(runs.values()))  # the runs share a split: the same users per group
    for stage in ("valid", "test"):
        print(f"{stage}: NDCG@10, grouped by {GROUPINGS[args.by]} (users)")
        for group, counted in first[stage].items():
            cells = [cell(figures, stage, group) for figures in runs.values()]
            print(f"  {group:>10} ({counted['n_users']:>6}): " + "  ".join(cells))
    for run, figures in runs.items():
        if "adjusted" in figures:
            alpha = figures["adjusted"]["chosen_alpha"]
            test = figures["adjusted"]["by_alpha"][str(alpha)]["test"]["all"]
            print(f"{run}: alpha {alpha} chosen on validation; test NDCG@10 {test['ndcg@10']:.4f}")
    name = "target-popularity.json" if args.by == "popularity" else f"target-{args.by}.json"
    out = args.out or Path("results") / dataset / name
    command = " ".join(["python", "benchmarks/target_popularity.py", *sys.argv[1:]])
    buckets = [bucket_name(low, high) for low, high in BUCKETS]
    if args.by == "age":
        buckets = [group for group, _ in AGE_SHARES]
    write_json(
        out,
        {
            "benchmark": "target_popularity",
            **provenance(),
            "command": command,
            "buckets": f"{GROUPINGS[args.by]}: " + ", ".join(buckets),
            "runs": runs,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
