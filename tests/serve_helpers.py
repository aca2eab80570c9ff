"""A toy bundle for the serving tests: a small RecLLM-Adapter run on the toy MovieLens
data, with a tiny router and explainer, exported as ``recllm export`` does."""

from __future__ import annotations

from pathlib import Path

from helpers import save_tiny_bert, write_toy_movielens
from recipes.test_train import run, toy_config

from recllm.explain.generator import GeneratorConfig
from recllm.recipes.explain import ExplainerTrainConfig, train_explainer
from recllm.recipes.export import export
from recllm.recipes.router import RouterTrainConfig, train_router
from recllm.routing.classifier import ClassifierConfig
from recllm.serve.process import ServerProcess


def toy_bundle(
    tmp_path: Path, epochs: int = 3, extras: bool = True, **adapter: object
) -> tuple[Path, Path]:
    """(bundle, run_dir) of a toy run, with router and explainer when ``extras``."""
    config = toy_config(tmp_path, "rec", epochs=epochs, loss="ce")
    for key, value in adapter.items():
        setattr(config.adapter, key, value)
    run(config)
    run_dir = Path(config.output_dir)
    bundle = tmp_path / "bundle"
    if not extras:
        export(run_dir, bundle)
        return bundle, run_dir
    train_router(
        RouterTrainConfig(
            output_dir=str(tmp_path / "router"),
            catalogs=[str(write_toy_movielens(tmp_path / "ml-toy"))],
            per_intent=10,
            classifier=ClassifierConfig(backbone=str(save_tiny_bert(tmp_path / "router-bert"))),
            student_layers=[0],
            epochs=1,
            student_epochs=1,
            progress=False,
        )
    )
    train_explainer(
        ExplainerTrainConfig(
            run_dir=str(run_dir),
            output_dir=str(tmp_path / "explainer"),
            per_user=2,
            phrasings=2,
            epochs=2,
            generator=GeneratorConfig(d_model=32, n_heads=2, max_target=24),
            progress=False,
        )
    )
    export(run_dir, bundle, router=tmp_path / "router", explainer=tmp_path / "explainer")
    return bundle, run_dir


Server = ServerProcess  # recllm serve in a child process on a free loopback port
