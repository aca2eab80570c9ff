"""``recllm export``: a finished run (and its student, router, explainer) as a bundle.

The run's data pipeline is rebuilt once here, so that the bundle carries everything
serving needs and serving never has to: the catalogue with its item texts, the cached item
encodings, the recommender's weights, the language model folder(s), the router and the
explainer, and optionally the known users' histories. See :mod:`recllm.bundle.format`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from recllm import __version__
from recllm.bundle import format as fmt
from recllm.bundle.components import (
    POPULARITY,
    TEXT,
    Components,
    EncoderSettings,
    ExplainerParts,
    lazy_encoder,
)
from recllm.data.identity import catalogue_identity
from recllm.data.text import item_texts
from recllm.errors import RecLLMError
from recllm.explain.explainer import MANIFEST as EXPLAINER_MANIFEST
from recllm.explain.generator import ExplanationGenerator
from recllm.explain.vocab import Vocab
from recllm.fsutil import atomic_folder
from recllm.models.backbone import BackboneConfig, resolve_model_dir
from recllm.models.item_encoder import ItemEncodings, texts_sha256
from recllm.models.onnx_graph import ONNX_NAME
from recllm.models.recllm import RecLLMModel
from recllm.recipes.explain import rating_max
from recllm.recipes.inference import LoadedRun, load_run
from recllm.routing.classifier import IntentClassifier
from recllm.routing.router import ROUTER_FILE

log = logging.getLogger(__name__)
MODEL_INFO = "model.json"


def load_served_run(
    run_dir: Path, student: Path | None, data_dir: Path | None
) -> tuple[LoadedRun, str]:
    """The run that will serve (the student when given, the teacher otherwise) and its
    kind; both must be RecLLM-Adapter runs over the same catalogue."""
    teacher = load_run(run_dir, data_dir, progress=False)
    _require_adapter(teacher, run_dir)
    if student is None:
        return teacher, "teacher"
    served = load_run(student, data_dir, progress=False)
    _require_adapter(served, student)
    assert isinstance(served.model, RecLLMModel) and isinstance(teacher.model, RecLLMModel)
    if served.model.config.catalogue != teacher.model.config.catalogue:
        raise RecLLMError(
            f"the student {student} was trained on another catalogue than the teacher {run_dir}"
        )
    return served, "student"


def _require_adapter(run: LoadedRun, folder: Path) -> None:
    if not isinstance(run.model, RecLLMModel):
        raise RecLLMError(
            f"{folder} trained {run.config.model!r}; a bundle serves a RecLLM-Adapter run (its "
            "metadata path scores new items), so export a `recllm train` run of model "
            "recllm-adapter or a `recllm distill` student"
        )
    weights = run.config.data.preprocess.weight
    if weights.startswith("column:"):
        raise RecLLMError(
            f"{folder} derives behaviour weights from {weights!r}; the service can only derive "
            "them from ratings, so export a run with data.preprocess.weight auto, rating or implicit"
        )


def catalogue_frame(run: LoadedRun) -> pd.DataFrame:
    """The catalogue table: raw id, text fields, the encoded text, training popularity."""
    items = run.dataset.items.reset_index(drop=True).copy()
    items["item_id"] = items["item_id"].astype(str)
    if "title" not in items.columns:
        items["title"] = item_texts(run.dataset)
    items[TEXT] = item_texts(run.dataset)
    counts = np.bincount(run.split.train["item"].to_numpy(), minlength=run.dataset.n_items)
    items[POPULARITY] = counts.astype(np.int64)
    return items


def history_frame(run: LoadedRun) -> pd.DataFrame:
    """Every interaction of the data with raw ids, each user's in order (oldest first)."""
    frame = run.dataset.interactions
    return pd.DataFrame(
        {
            "user_id": run.dataset.user_ids[frame["user"].to_numpy()].astype(str),
            "item_id": run.dataset.items["item_id"]
            .astype(str)
            .to_numpy()[frame["item"].to_numpy()],
            "rating": frame["rating"].to_numpy(dtype=np.float32),
        }
    )


def encoder_config(run: LoadedRun) -> BackboneConfig:
    """The language model that encoded the item texts, as a frozen backbone."""
    source = run.config.encoder.backbone or run.config.backbone
    return BackboneConfig(**{**asdict(source), "finetune": "frozen", "architecture": None})


def components_from_run(
    run: LoadedRun,
    kind: str,
    router: Path | None = None,
    explainer: Path | None = None,
    histories: bool = True,
) -> Components:
    """The served components of a loaded run (what :func:`export` writes)."""
    model = run.model
    assert isinstance(model, RecLLMModel)
    config = run.config
    frozen_same = config.encoder.backbone is None and config.backbone.finetune == "frozen"
    encoder = lazy_encoder(encoder_config(run), model.backbone if frozen_same else None)
    scale = rating_max(run)
    return Components(
        dataset=run.dataset.name,
        items=catalogue_frame(run),
        model=model,
        encoder=encoder,
        encoder_settings=EncoderSettings(
            n_tokens=config.encoder.n_tokens,
            max_length=config.encoder.max_length,
            batch_size=config.encoder.batch_size,
            bf16=config.encoder.bf16,
            text_template=run.dataset.text_template,
        ),
        rating_max=None if scale is None or np.isnan(scale) else scale,
        histories=history_frame(run) if histories else None,
        router=_router_classifier(router) if router else None,
        explainer=_explainer_parts(explainer, run) if explainer else None,
        info={"kind": kind, "run": str(config.output_dir)},
    )


def _router_classifier(folder: Path) -> IntentClassifier:
    manifest = Path(folder) / ROUTER_FILE
    if not manifest.is_file():
        raise RecLLMError(f"{folder} holds no {ROUTER_FILE}: not a trained router")
    serving = json.loads(manifest.read_text()).get("serving", "student")
    return IntentClassifier.from_pretrained(Path(folder) / serving)


def _explainer_parts(folder: Path, run: LoadedRun) -> ExplainerParts:
    folder = Path(folder)
    manifest_path = folder / EXPLAINER_MANIFEST
    if not manifest_path.is_file():
        raise RecLLMError(f"{folder} holds no {EXPLAINER_MANIFEST}: not a trained explainer")
    info = json.loads(manifest_path.read_text())
    if info.get("targets") == "reviews":
        raise RecLLMError(
            f"{folder} explains from review sentences, which a bundle cannot carry yet; export "
            "a facts explainer (`recllm train-explainer RUN targets=facts`)"
        )
    if Path(info.get("run_dir", "")).resolve() != Path(run.config.output_dir).resolve():
        raise RecLLMError(
            f"the explainer {folder} was trained for {info.get('run_dir')}, but the bundle "
            f"serves {run.config.output_dir}; train one for it with "
            f"`recllm train-explainer {run.config.output_dir}`"
        )
    return ExplainerParts(
        ExplanationGenerator.from_pretrained(folder), Vocab.load(folder / "vocab.json"), info
    )


def export(
    run_dir: Path,
    out: Path,
    student: Path | None = None,
    router: Path | None = None,
    explainer: Path | None = None,
    data_dir: Path | None = None,
    histories: bool = True,
    overwrite: bool = False,
    extra_info: dict[str, Any] | None = None,
    onnx: bool = False,
) -> dict[str, Any]:
    """Write the bundle to ``out`` (atomically) and return its manifest. With ``onnx``,
    also the recommender as an ONNX graph, served when it ranks the test users' top 10
    exactly as PyTorch does and answers faster (see :func:`onnx_check`)."""
    from recllm.provenance import provenance

    out = Path(out)
    if out.exists() and not overwrite:
        raise RecLLMError(f"{out} already exists; pass --overwrite to replace it")
    run, kind = load_served_run(Path(run_dir), student, data_dir)
    parts = components_from_run(run, kind, router, explainer, histories)
    made = provenance()
    with atomic_folder(out) as folder:
        _write_catalogue(folder, parts, run)
        _write_model(folder, run)
        backend: dict[str, Any] = {"backend": "torch"}
        if onnx:
            backend = onnx_check(run, folder / fmt.RECOMMENDER / ONNX_NAME)
        if router is not None:
            _copy_router(Path(router), folder / fmt.ROUTER)
        if explainer is not None:
            _copy_tree(Path(explainer), folder / fmt.EXPLAINER)
        if parts.histories is not None:
            parts.histories.to_parquet(folder / fmt.HISTORIES, index=False)
        info = {
            "package_version": __version__,
            "source_commit": made["git_commit"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "dataset": run.dataset.name,
            "n_items": run.dataset.n_items,
            "n_users": int(run.dataset.n_users),
            "catalogue_hash": parts.model.config.catalogue,
            "catalogue_identity": catalogue_identity(run.dataset),
            "rating_max": parts.rating_max,
            "encoder": asdict(parts.encoder_settings),
            "models": _model_summary(run, kind, router, explainer, parts, backend),
            **(extra_info or {}),
        }
        manifest = fmt.write_manifest(folder, info)
    return manifest


def onnx_check(run: LoadedRun, path: Path, users: int = 500, timed: int = 100) -> dict[str, Any]:
    """Export the recommender to ``path`` and compare it with PyTorch on up to ``users``
    test users (top-10 rankings, largest score difference) and on ``timed`` batch-1
    requests (p50 latency, one thread each as the service runs them). The backend served
    is ONNX only when every top 10 is identical and it is faster."""
    from recllm.bench.timing import latency_ms
    from recllm.models.onnx_graph import OnnxScorer, compare_with_eager, export_onnx
    from recllm.models.sequential import SequenceScorer

    model = run.model
    assert isinstance(model, RecLLMModel)
    export_onnx(model, path)
    # timed as the service runs them: one thread each (two runtimes spinning their own
    # thread pools in one process slowed ONNX Runtime threefold on Beauty)
    runtime = OnnxScorer(path, model, threads=1)
    targets = run.split.targets("test")["user"].to_numpy()[:users]
    history = run.split.sequences("test")
    check = compare_with_eager(model, runtime, targets, history)
    single = [targets[i : i + 1] for i in range(min(timed, len(targets)))]
    speed = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, scorer in (("torch", SequenceScorer(model)), ("onnx", SequenceScorer(runtime))):
            calls = [partial(scorer, u, history) for u in single]
            speed[name] = latency_ms(calls, repeats=1, warmup=20)["p50_ms"]
    finally:
        torch.set_num_threads(threads)
    identical = check["top10_identical"] == check["test_users_compared"]
    backend = "onnx" if identical and speed["onnx"] < speed["torch"] else "torch"
    log.info(
        "ONNX: top-10 identical for %d of %d test users, p50 %.2f ms (torch %.2f ms): serving %s",
        check["top10_identical"],
        check["test_users_compared"],
        speed["onnx"],
        speed["torch"],
        backend,
    )
    return {
        "backend": backend,
        "onnx": {
            "file": f"{fmt.RECOMMENDER}/{ONNX_NAME}",
            **check,
            "p50_ms_batch1": speed,
        },
    }


def _write_catalogue(folder: Path, parts: Components, run: LoadedRun) -> None:
    parts.items.to_parquet(folder / fmt.CATALOGUE, index=False)
    model = run.model
    assert isinstance(model, RecLLMModel)
    n = model.n_items
    meta = {"text_sha256": texts_sha256(parts.items[TEXT].tolist())}
    ItemEncodings(
        model.pooled[:n].clone(), model.meta_tokens[:n].clone(), model.meta_mask[:n].clone(), meta
    ).save(folder / fmt.ENCODINGS)


def _write_model(folder: Path, run: LoadedRun) -> None:
    """Adapter + trainable backbone weights, the model description, the LM folder(s)."""
    model = run.model
    assert isinstance(model, RecLLMModel)
    target = folder / fmt.RECOMMENDER
    target.mkdir()
    model.save_pretrained(target)
    config = run.config
    encoder = encoder_config(run)
    encoder_dir = fmt.BACKBONE
    if config.backbone.architecture is None:
        if model.backbone.source_dir is None:
            raise RecLLMError("the backbone was built in memory: there is no folder to bundle")
        _copy_tree(model.backbone.source_dir, folder / fmt.BACKBONE)
    if config.backbone.architecture is not None or config.encoder.backbone is not None:
        encoder_dir = fmt.ENCODER
        _copy_tree(resolve_model_dir(encoder), folder / fmt.ENCODER)  # files, not weights
    info = {
        "model": config.model,
        "backbone": asdict(config.backbone),
        "encoder_dir": encoder_dir,
        "encoder_backbone": asdict(encoder),
    }
    (target / MODEL_INFO).write_text(json.dumps(info, indent=2) + "\n")


def _copy_router(folder: Path, target: Path) -> None:
    serving = json.loads((folder / ROUTER_FILE).read_text()).get("serving", "student")
    target.mkdir(parents=True)
    shutil.copy2(folder / ROUTER_FILE, target / ROUTER_FILE)
    _copy_tree(folder / serving, target / serving)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a folder's files, refusing pickles (a bundle never carries one)."""
    pickled = [p.name for p in source.rglob("*") if p.suffix in {".bin", ".pt", ".pkl", ".pth"}]
    if pickled:
        raise RecLLMError(f"{source} holds pickled files {pickled[:3]}; bundles carry none")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".tmp-*"))


def _model_summary(
    run: LoadedRun,
    kind: str,
    router: Path | None,
    explainer: Path | None,
    parts: Components,
    backend: dict[str, Any],
) -> dict[str, Any]:
    model = run.model
    summary: dict[str, Any] = {
        "recommender": {
            **backend,
            "kind": kind,
            "model": run.config.model,
            "run": str(run.config.output_dir),
            "parameters": sum(p.numel() for p in model.parameters()),
            "max_len": int(getattr(model, "max_len", 0)),
        }
    }
    if router is not None:
        record = json.loads((Path(router) / ROUTER_FILE).read_text())
        summary["router"] = {
            "serving": record.get("serving"),
            "schedule": record.get("schedule", "full"),
            "valid_accuracy": record.get(record.get("serving", ""), {}).get("valid_accuracy"),
        }
    if explainer is not None and parts.explainer is not None:
        info = parts.explainer.info
        summary["explainer"] = {
            "targets": info.get("targets", "facts"),
            "schedule": info.get("schedule", "full"),
            "training_pairs": info.get("training_pairs"),
        }
    return summary
