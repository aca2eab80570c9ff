"""``recllm bench privacy RUN_OR_BUNDLE``: the three membership attacks and each defence's
leakage and accuracy cost, in one run (threat model: docs/privacy.md).

On a run (the output_dir of ``recllm train`` with ``data.split.holdout_users`` > 0) the
attacks query the model in this process, once per response policy (what the service
shows: scores to 4 decimals, ranks only, coarse scores, noised scores, short lists) and
once under a query budget (what a rate limit allows one client). Members are training
interactions, non-members interactions of held-out users; one half of the held-out users
is the attacker's auxiliary data (the shadow's queries). ``--students NAME=RUN`` runs the
same on distilled students of the same split (does distillation leak less?). Each policy
row carries the test split's Recall@10 and NDCG@10 as that policy ranks: only noise
changes the ranking, so the others equal the undefended row (marked
``ranking_unchanged``).

On a bundle (``--checkpoint`` names the run it was exported from, whose split says who
is a member) the service is started on loopback and attacked over HTTP with at most
``--budget`` requests per service configuration: open, users protected by the API key,
and rate limited (:mod:`recllm.bench.privacy_http`).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recllm.errors import RecLLMError
from recllm.privacy import attacks
from recllm.privacy.defences import SERVED_DECIMALS, ResponsePolicy
from recllm.privacy.metrics import attack_figures
from recllm.privacy.pairs import Pairs, exclusion_pairs, interactions, membership_pairs
from recllm.privacy.shadow import ShadowConfig

RESULTS_FILE = "privacy/{label}.json"
METRICS = ("recall@10", "ndcg@10")
SERVED_MAX_K = 1000  # recllm.serve.api.MAX_K
SERVED_MAX_EXCLUDE = 10_000  # recllm.serve.api.MAX_HISTORY: the most a request may exclude

POLICIES = (
    ResponsePolicy("none", SERVED_MAX_K, "shown", SERVED_DECIMALS),
    ResponsePolicy("ranks-only", SERVED_MAX_K, "hidden"),
    ResponsePolicy("rounded-1", SERVED_MAX_K, "shown", 1),
    ResponsePolicy("noise-0.1", SERVED_MAX_K, "shown", SERVED_DECIMALS, noise=0.1),
    ResponsePolicy("noise-0.5", SERVED_MAX_K, "shown", SERVED_DECIMALS, noise=0.5),
    ResponsePolicy("top-10", 10, "hidden"),
)


@dataclass(frozen=True)
class Probe:
    """Who and how the attacks ask, shared by every model and defence of a run."""

    pairs: Pairs
    aux_queries: list[np.ndarray]
    exclusion: Pairs
    k: int
    shadow: ShadowConfig
    budget: int
    seed: int


def probe(split: Any, args: argparse.Namespace, max_len: int) -> Probe:
    """Member/non-member pairs, the auxiliary queries and the exclusion pairs of a split."""
    from recllm.data.sequences import UserSequences

    if split.holdout is None or split.holdout.empty:
        raise RecLLMError(
            "bench privacy needs a run trained with held-out users (non-members): train it "
            "with --set data.split.holdout_users=0.1"
        )
    pairs, aux = membership_pairs(
        split.train, split.holdout, split.n_users, args.pairs, max_len, args.seed
    )
    held = UserSequences.from_frame(split.holdout, split.n_users)
    queries = interactions(held, aux, args.aux_queries, max_len, args.seed + 2)[2]
    known = UserSequences.from_frame(split.dataset.interactions, split.n_users)
    known = _without(known, split.holdout["user"].unique())
    return Probe(
        pairs,
        queries,
        exclusion_pairs(known, split.holdout, args.pairs, args.seed),
        args.attack_k,
        ShadowConfig(epochs=args.shadow_epochs, max_len=max_len, seed=args.seed),
        args.budget,
        args.seed,
    )


def _without(known: Any, users: np.ndarray) -> Any:
    """``known`` with ``users``' sequences emptied (held-out users are not asked about)."""
    from recllm.data.sequences import UserSequences

    keep = np.ones(known.n_users, dtype=bool)
    keep[users] = False
    lengths = np.where(keep, known.lengths, 0)
    rows = np.repeat(keep, known.lengths)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    return UserSequences(indptr, known.items[rows], known.weights[rows])


def figures(signals: attacks.Signals, pairs: Pairs) -> dict[str, Any]:
    """Each signal's attack figures, with the requests sent and answered, and the share
    of pairs the attack had an answer about."""
    return {
        "queries": signals.queries,
        "answered_queries": signals.answered_queries,
        "answered": round(float(signals.answered.mean()), 4),
        **{name: attack_figures(values, pairs.member) for name, values in signals.values.items()},
    }


class Budgeted:
    """A target that answers at most ``budget`` requests (what a rate limit lets one
    client ask in the time it spends), then refuses."""

    def __init__(self, target: Any, budget: int) -> None:
        self.target, self.left, self.n_items = target, budget, target.n_items

    def answer(self, histories: Any, k: int) -> list[Any]:
        allowed = max(0, min(self.left, len(histories)))
        self.left -= allowed
        answers = self.target.answer(histories[:allowed], k) if allowed else []
        return answers + [None] * (len(histories) - allowed)


def attack_model(model: Any, split: Any, setup: Probe) -> dict[str, Any]:
    """Every policy's threshold and shadow attacks and accuracy, the budgeted attacks, and
    the exclusion attack (open, refused, budgeted) against one model."""
    from recllm.data.sequences import UserSequences
    from recllm.eval.evaluator import evaluate
    from recllm.privacy.targets import ModelTarget, ScoreCache

    cache = ScoreCache(model)  # every policy answers the same histories
    rows: dict[str, dict[str, Any]] = {}
    accuracy_none: dict[str, float] = {}
    for policy in POLICIES:
        print(f"  policy {policy.name}: threshold, shadow, accuracy")
        target = ModelTarget(model, policy, cache=cache)
        k = min(setup.k, policy.max_k)
        threshold = attacks.threshold(target, setup.pairs, k, setup.seed)
        shadow = attacks.shadow(
            target,
            setup.pairs,
            setup.aux_queries,
            k,
            setup.shadow,
            threshold.values["threshold-rank"],
            setup.seed,
        )
        if policy.changes_ranking or not accuracy_none:
            test = evaluate(target.eval_scorer(), split, "test", progress=False)  # type: ignore[arg-type]
            accuracy = {m: test.metrics[m] for m in METRICS}
            accuracy_none = accuracy_none or accuracy
        else:
            accuracy = accuracy_none
        rows[policy.name] = {
            "policy": asdict(policy),
            "threshold": figures(threshold, setup.pairs),
            "shadow": figures(shadow, setup.pairs),
            **accuracy,
            "ranking_unchanged": not policy.changes_ranking,
        }
    budgeted = Budgeted(ModelTarget(model, POLICIES[0], cache=cache), setup.budget)
    rows["rate-limit"] = {
        "budget": setup.budget,
        "threshold": figures(
            attacks.threshold(budgeted, setup.pairs, setup.k, setup.seed), setup.pairs
        ),
        **accuracy_none,
        "ranking_unchanged": True,
    }
    known = UserSequences.from_frame(split.dataset.interactions, split.n_users)
    return {"policies": rows, "exclusion": exclusion_rows(model, known, setup, cache)}


def exclusion_rows(model: Any, known: Any, setup: Probe, cache: Any = None) -> dict[str, Any]:
    """The exclusion attack in this process: pages of 1000 (the service's longest list)
    until the catalogue is exhausted; refused (per-user requests need the key); and
    within the query budget."""
    from recllm.privacy.targets import ModelUserLister

    pairs = setup.exclusion
    users = [str(u) for u in pairs.users]
    items = [str(i) for i in pairs.items]
    pages = -(-model.n_items // SERVED_MAX_K) + 1
    rows = {}
    for name, refuse, budget in (
        ("none", False, None),
        ("protect-users", True, None),
        ("rate-limit", False, setup.budget),
    ):
        lister: Any = ModelUserLister(model, known, POLICIES[0], refuse=refuse, cache=cache)
        if budget is not None:
            lister = _budgeted_lister(lister, budget)
        signals = attacks.exclusion(
            lister, users, items, SERVED_MAX_K, pages, setup.seed, SERVED_MAX_EXCLUDE
        )
        rows[name] = figures(signals, pairs)
    return rows


def _budgeted_lister(lister: Any, budget: int) -> Any:
    left = [budget]

    def listed(user: str, k: int, exclude: list[str]) -> list[str] | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        result: list[str] | None = lister(user, k, exclude)
        return result

    return listed


def _named(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise RecLLMError(f"--students takes NAME=RUN_DIR, got {value!r}")
    return name, Path(folder)


def _check_args(args: argparse.Namespace) -> Path:
    if args.target is None:
        raise RecLLMError("bench privacy needs RUN_OR_BUNDLE: a training run or a bundle")
    for name in ("pairs", "attack_k", "budget", "shadow_epochs", "aux_queries"):
        if getattr(args, name) < 1:
            raise RecLLMError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return Path(args.target)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from recllm.bundle.format import is_bundle
    from recllm.recipes.inference import load_run

    target = _check_args(args)
    if is_bundle(target):
        from recllm.bench.privacy_http import run_http

        return run_http(target, args)
    teacher = load_run(target, args.data_dir, progress=False)
    if not hasattr(teacher.model, "score_last"):
        raise RecLLMError(f"{target}: bench privacy attacks sequential models (a history in)")
    setup = probe(teacher.split, args, int(getattr(teacher.model, "max_len", 50)))
    runs = {"teacher": target, **dict(_named(s) for s in args.students)}
    models: dict[str, Any] = {}
    for name, folder in runs.items():
        loaded = teacher if name == "teacher" else load_run(folder, args.data_dir, progress=False)
        if loaded.split.summary() != teacher.split.summary():
            raise RecLLMError(f"{name} ({folder}) was trained on another split than the teacher")
        print(f"{name} ({folder})")
        models[name] = {"run": str(folder), **attack_model(loaded.model, teacher.split, setup)}
    return {
        "dataset": teacher.dataset.name,
        "label": args.label or teacher.dataset.name,
        "mode": "in-process",
        "protocol": protocol(teacher.split, setup),
        "models": models,
    }


def protocol(split: Any, setup: Probe) -> dict[str, Any]:
    """What the figures were measured on, for the results file."""
    return {
        "split": split.summary(),
        "pairs_per_side": int(setup.pairs.member.sum()),
        "auxiliary_queries": len(setup.aux_queries),
        "exclusion_pairs_per_side": int(setup.exclusion.member.sum()),
        "attack_k": setup.k,
        "budget": setup.budget,
        "shadow": asdict(setup.shadow),
        "seed": setup.seed,
        "accuracy": "test split, full catalogue, history items excluded",
    }
