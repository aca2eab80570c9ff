"""Distillation under torch.distributed (gloo, 2 processes): the teacher cache is written
in shards by both ranks and holds exactly what one process writes (so any world size
reads it), and the two-stage run trains data-parallel to the end."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from dist_helpers import spawn
from safetensors.torch import load_file
from test_distill import distill_config, teacher_run

from recllm.config import from_dict, to_dict
from recllm.data.batching import NextItemDataset
from recllm.distill.config import DistillConfig
from recllm.distill.recipe import DistillRecipe
from recllm.distill.teacher import CachedTeacher, LiveTeacher, TeacherSpec, build_cache
from recllm.recipes.inference import load_run


def distill(rank: int, raw: dict) -> None:
    recipe = DistillRecipe(from_dict(DistillConfig, raw))
    recipe.setup()
    state = recipe.train()
    recipe.cleanup()
    if rank == 0:
        Path(raw["output_dir"], "state.json").write_text(json.dumps(state))


def test_two_process_distillation_shards_the_teacher_cache(tmp_path: Path) -> None:
    teacher = teacher_run(tmp_path)
    config = distill_config(
        teacher,
        tmp_path / "student",
        pre={"epochs": 1, "sequences": 12},
        distill={"cache_shard": 8},
    )
    spawn(distill, 2, to_dict(config))
    state = json.loads((tmp_path / "student" / "state.json").read_text())
    assert state["epoch"] == 2 and state["pre"]["epochs"] == 1
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in state["history"])
    caches = sorted((teacher / "distill-cache").glob("train-*"))
    assert len(caches) == 1
    # one process writes the same shards, tensor for tensor
    run = load_run(teacher, progress=False)
    dataset = NextItemDataset(run.split.sequences("train"), run.model.max_len)
    recipe_spec = json.loads((caches[0] / "cache.json").read_text())
    spec = TeacherSpec(
        recipe_spec["top_k"], recipe_spec["temperature"], tuple(recipe_spec["layers"])
    )
    alone = tmp_path / "alone"
    build_cache(LiveTeacher(run.model, spec), dataset, alone, shard_sequences=8, progress=False)
    names = sorted(p.name for p in caches[0].iterdir())
    assert len(names) == 1 + -(-len(dataset) // 8)  # cache.json and shards of 8 from both ranks
    assert names == sorted(p.name for p in alone.iterdir())
    for name in names:
        if name.endswith(".safetensors"):
            a, b = load_file(str(caches[0] / name)), load_file(str(alone / name))
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert CachedTeacher(caches[0], dataset.sequences.n_users).meta == json.loads(
        (alone / "cache.json").read_text()
    )
