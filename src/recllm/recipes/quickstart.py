"""The quick-start job: train RecLLM-Adapter on ML-100K with the default backbone,
evaluate it next to the popularity baseline, show three users' top-5 titles, then train a
router and an explainer on short schedules and export a bundle that answers recommend,
explain and ask (``recllm serve <bundle>``).

Settings (``configs/quickstart.yaml``) are chosen to finish in minutes on 2 CPU cores;
they are a smoke test of the whole path, not the tuned configuration whose numbers the
benchmarks report. The router and explainer schedules here are short versions of their
recipes (``ROUTER_SHORT``, ``EXPLAINER_SHORT``); the bundle's manifest says so.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recllm.config import apply_overrides, from_dict, load_yaml, to_dict
from recllm.eval.evaluator import evaluate
from recllm.eval.report import metrics_table
from recllm.models.popularity import Popularity
from recllm.recipes.train import TrainConfig, TrainRecipe

log = logging.getLogger(__name__)

QUICKSTART_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "quickstart.yaml"
BUILTIN = {
    "output_dir": "runs/quickstart",
    "data": {"dataset": "ml-100k"},
    "backbone": {"name_or_path": "default", "finetune": "frozen"},
    "adapter": {"max_len": 20, "dropout": 0.2, "use_user_vector": True},
    "trainer": {
        "loss": "ce",
        "epochs": 30,
        "batch_size": 32,
        "lr": 0.002,
        "eval_every": 3,
        "patience": 3,
    },
}


@dataclass
class QuickstartConfig:
    """Inputs of the quick-start job."""

    dataset: str = "ml-100k"
    data_dir: Path | None = None
    cache_dir: Path | None = None
    output: Path | None = None
    progress: bool = True
    download: bool = False
    overrides: list[str] = field(default_factory=list)
    show_users: int = 3
    bundle: Path | None = Path("runs/quickstart-bundle")  # None: stop after the evaluation


# Short schedules of the router and explainer recipes, so the quick start stays short.
ROUTER_SHORT: dict[str, Any] = {
    "per_intent": 300,
    "epochs": 1,
    "student_epochs": 1,
    "schedule": "short",
}
EXPLAINER_SHORT: dict[str, Any] = {"per_user": 3, "phrasings": 2, "epochs": 3, "schedule": "short"}


def build_train_config(config: QuickstartConfig) -> TrainConfig:
    """The shipped quick-start YAML (or its built-in copy) plus the job's options."""
    base = load_yaml(QUICKSTART_CONFIG) if QUICKSTART_CONFIG.is_file() else BUILTIN
    data = apply_overrides(base, config.overrides)
    train = from_dict(TrainConfig, data)
    train.data.dataset = config.dataset
    if config.data_dir:
        train.data.data_dir = str(config.data_dir)
    if config.cache_dir:
        train.data.cache_dir = str(config.cache_dir)
    train.trainer.progress = config.progress
    return train


def run_quickstart(config: QuickstartConfig) -> dict[str, Any]:
    """Train, evaluate, print; return (and optionally write) the results."""
    if config.download:
        _ensure_downloaded(config)
    began = time.perf_counter()
    recipe = TrainRecipe(build_train_config(config), overwrite=True)  # a fresh run each time
    recipe.setup()
    try:
        state = recipe.train()
        test = recipe.test_best()
    finally:
        recipe.cleanup()
    data_split = recipe.split
    popularity = Popularity(data_split.train["item"].to_numpy(), data_split.n_items)
    pop_test = evaluate(popularity, data_split, "test", progress=False)
    dataset = data_split.dataset
    print(
        f"\n{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, {dataset.n_interactions} "
        f"interactions; leave-one-out, full-catalogue ranking, best epoch {state['best_epoch']}"
    )
    print(
        metrics_table(
            {"popularity (test)": pop_test.metrics, "recllm-adapter (test)": test.metrics}
        )
    )
    examples = _show_top_titles(recipe, config.show_users)
    seconds = {"train_and_evaluate": round(time.perf_counter() - began, 1)}
    if config.bundle is not None:
        seconds["router_explainer_bundle"] = _export_bundle(
            config, Path(recipe.config.output_dir), dataset.name
        )
    seconds["total"] = round(time.perf_counter() - began, 1)
    results = {
        "dataset": dataset.name,
        "config": to_dict(recipe.config),
        "best_epoch": state["best_epoch"],
        "history": state["history"],
        "test": test.to_dict(),
        "popularity_test": pop_test.to_dict(),
        "examples": examples,
        "seconds": seconds,
        "bundle": str(config.bundle) if config.bundle else None,
    }
    if config.output:
        config.output.parent.mkdir(parents=True, exist_ok=True)
        config.output.write_text(json.dumps(results, indent=2, default=str))
        log.info("wrote %s", config.output)
    return results


def _show_top_titles(recipe: TrainRecipe, n_users: int) -> dict[str, list[str]]:
    """Print and return the top-5 titles of the first ``n_users`` users."""
    import numpy as np

    from recllm.recipes.models import make_scorer

    history = recipe.split.sequences("test")
    users = np.arange(min(n_users, recipe.split.n_users))
    scores = make_scorer(recipe.model)(users, history)
    items = recipe.split.dataset.items
    label = items["title"] if "title" in items.columns else items["item_id"]
    shown: dict[str, list[str]] = {}
    for row, user in enumerate(users):
        seen = history.items_of(int(user))
        scores[row, seen.astype(np.int64)] = float("-inf")
        top = scores[row].topk(5).indices.tolist()
        raw = str(recipe.split.dataset.user_ids[user])
        last = [str(label.iloc[i]) for i in seen[-3:]]
        shown[raw] = [str(label.iloc[i]) for i in top]
        print(f"\nuser {raw} recently: {'; '.join(last)}")
        for rank, title in enumerate(shown[raw], start=1):
            print(f"  {rank}. {title}")
    return shown


def _export_bundle(config: QuickstartConfig, run_dir: Path, dataset: str) -> float:
    """Router and explainer on short schedules, then the bundle; prints how to serve it.
    Returns the seconds it took."""
    from recllm.recipes.explain import ExplainerTrainConfig, train_explainer
    from recllm.recipes.export import export
    from recllm.recipes.router import RouterTrainConfig, train_router

    assert config.bundle is not None
    data_dir = str(config.data_dir) if config.data_dir else None
    router_dir = Path(f"{run_dir}-router")
    explainer_dir = Path(f"{run_dir}-explainer")
    begin = time.perf_counter()
    router = train_router(
        RouterTrainConfig(
            output_dir=str(router_dir),
            catalogs=[config.dataset],
            data_dir=data_dir,
            progress=config.progress,
            **ROUTER_SHORT,
        )
    )
    serving = str(router["serving"])
    accuracy = router[serving]["valid_accuracy"]  # type: ignore[index]
    log.info("router (short schedule): held-out intent accuracy %.3f", accuracy)
    explainer = train_explainer(
        ExplainerTrainConfig(
            run_dir=str(run_dir),
            output_dir=str(explainer_dir),
            data_dir=data_dir,
            progress=config.progress,
            **EXPLAINER_SHORT,
        )
    )
    log.info("explainer (short schedule): final L_gen %s", explainer["history"][-1]["loss_gen"])
    export(
        run_dir,
        config.bundle,
        router=router_dir,
        explainer=explainer_dir,
        data_dir=config.data_dir,
        overwrite=True,
    )
    seconds = time.perf_counter() - begin
    print(
        f"\nbundle for {dataset} written to {config.bundle} (router and explainer on short "
        f"schedules, {seconds:.0f} s). Serve it:\n  recllm serve {config.bundle}\n"
        "then open http://127.0.0.1:8000/docs"
    )
    return round(seconds, 1)


def _ensure_downloaded(config: QuickstartConfig) -> None:
    from recllm import paths
    from recllm.data.download import download
    from recllm.data.registry import KNOWN, resolve
    from recllm.errors import DatasetNotFoundError

    try:
        resolve(config.dataset, config.data_dir)
    except DatasetNotFoundError:
        if config.dataset not in KNOWN:
            raise
        download(config.dataset, paths.data_dir(config.data_dir), progress=config.progress)
