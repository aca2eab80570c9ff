"""Distillation: its losses, the mask, the teacher cache, the student, and a whole run
on toy data (a BERT teacher and, at paper architecture, a decoder-only teacher)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from helpers import teacher_run, toy_distill_raw

from recllm.config import from_dict, load_yaml, to_dict
from recllm.data.batching import NextItemDataset
from recllm.distill.config import DistillConfig, StudentConfig
from recllm.distill.losses import attention_kl, head_averaged_item_block, score_kl
from recllm.distill.recipe import DistillRecipe
from recllm.distill.student import init_from_teacher, layer_map, student_architecture
from recllm.distill.teacher import CachedTeacher, LiveTeacher, TeacherSpec, build_cache
from recllm.errors import ConfigError, RecLLMError
from recllm.eval.evaluator import evaluate
from recllm.recipes.inference import load_run
from recllm.recipes.models import make_scorer

CONFIGS = sorted(Path(__file__).parents[2].joinpath("configs", "distill").glob("*.yaml"))


# -- losses ---------------------------------------------------------------------------


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return (p * (p.log() - q.log())).sum(-1)


def test_score_kl_full_catalogue_is_the_exact_kl() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 12), torch.randn(5, 12)
    t = 0.8
    lse = torch.logsumexp(teacher / t, -1)
    got = score_kl(student, teacher, None, lse, t)
    want = _kl(torch.softmax(teacher / t, -1), torch.softmax(student / t, -1)).mean() * t**2
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert score_kl(teacher, teacher, None, lse, t).item() == pytest.approx(0.0, abs=1e-6)


def test_score_kl_top_k_is_the_kl_of_kept_items_plus_one_tail_bucket() -> None:
    torch.manual_seed(1)
    student, teacher = torch.randn(4, 10), torch.randn(4, 10)
    t, k = 1.0, 3
    top, idx = teacher.topk(k, -1)
    got = score_kl(student, top, idx, torch.logsumexp(teacher / t, -1), t)
    p, q = torch.softmax(teacher / t, -1), torch.softmax(student / t, -1)
    p_kept, q_kept = p.gather(1, idx), q.gather(1, idx)
    coarse_p = torch.cat([p_kept, 1 - p_kept.sum(1, keepdim=True)], 1)
    coarse_q = torch.cat([q_kept, 1 - q_kept.sum(1, keepdim=True)], 1)
    assert got.item() == pytest.approx(_kl(coarse_p, coarse_q).mean().item(), rel=1e-4)


def test_attention_kl_is_zero_for_equal_maps_and_positive_otherwise() -> None:
    maps = torch.softmax(torch.randn(2, 3, 4, 4), -1)  # (B, heads, L, L)
    block = head_averaged_item_block(maps, n_prompt=0)
    assert torch.allclose(block.sum(-1), torch.ones(2, 4))
    positions = torch.ones(2, 4, dtype=torch.bool)
    assert attention_kl([block], [block], positions).item() == pytest.approx(0.0, abs=1e-6)
    other = head_averaged_item_block(torch.softmax(torch.randn(2, 3, 4, 4), -1), 0)
    assert attention_kl([block], [other], positions).item() > 0.01
    with pytest.raises(ValueError, match="layer map"):
        attention_kl([block], [], positions)


def test_item_block_drops_prompt_positions_and_renormalises() -> None:
    maps = torch.softmax(torch.randn(1, 2, 5, 5), -1)
    block = head_averaged_item_block(maps, n_prompt=2)
    assert block.shape == (1, 3, 3)
    assert torch.allclose(block.sum(-1), torch.ones(1, 3))


def test_masked_positions_change_nothing_and_unmasked_ones_do() -> None:
    """The recommendation-knowledge mask: what sits at padding positions (student or
    teacher side) does not move the distillation losses; without the mask it does."""
    torch.manual_seed(2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    student = torch.randn(2, 3, 6)
    teacher = torch.randn(2, 3, 6)
    s_maps = torch.softmax(torch.randn(2, 3, 3), -1)
    t_maps = torch.softmax(torch.randn(2, 3, 3), -1)

    def losses(student, teacher, s_maps, t_maps, positions):
        lse = torch.logsumexp(teacher / 0.8, -1)
        kl = score_kl(student[positions], teacher[positions], None, lse[positions], 0.8)
        return kl.item(), attention_kl([s_maps], [t_maps], positions).item()

    before = losses(student, teacher, s_maps, t_maps, mask)
    noisy = [x.clone() for x in (student, teacher, s_maps, t_maps)]
    for x in noisy:
        x[~mask] = torch.rand_like(x[~mask]) * 5
    assert losses(*noisy, mask) == pytest.approx(before, rel=1e-6)
    everywhere = torch.ones_like(mask)
    after = losses(*noisy, everywhere)
    assert after[0] != pytest.approx(losses(student, teacher, s_maps, t_maps, everywhere)[0])


# -- student ---------------------------------------------------------------------------


def test_layer_map_is_evenly_spaced_like_distilbert() -> None:
    assert layer_map(StudentConfig(layers=2), 6) == [2, 5]
    assert layer_map(StudentConfig(layers=3), 6) == [1, 3, 5]
    assert layer_map(StudentConfig(layers=24), 40)[-1] == 39
    assert layer_map(StudentConfig(layers=2, layer_map=[0, 1]), 6) == [0, 1]
    with pytest.raises(ConfigError, match="does not have"):
        layer_map(StudentConfig(layers=2, layer_map=[0, 6]), 6)


def test_student_config_errors_are_named() -> None:
    with pytest.raises(ConfigError, match="heads"):
        StudentConfig(hidden=100, heads=3)
    with pytest.raises(ConfigError, match="cache: false"):
        from_dict(DistillConfig, {"teacher": "runs/x", "distill": {"mask": False}})
    with pytest.raises(ConfigError, match="teacher"):
        from_dict(DistillConfig, {})


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_distill_configs_are_valid(path: Path) -> None:
    config = from_dict(DistillConfig, load_yaml(path))
    assert config.output_dir.startswith("runs/") and config.teacher.startswith("runs/")


def test_paper_student_is_about_700m_parameters() -> None:
    """The paper-scale student config describes a ~700M BERT (built without memory)."""
    from transformers import AutoConfig, AutoModel

    config = from_dict(DistillConfig, load_yaml(Path("configs/distill/paper-llama2-13b.yaml")))
    arch = student_architecture(config.student, max_positions=64)
    with torch.device("meta"):
        model = AutoModel.from_config(AutoConfig.for_model(**arch))
    params = sum(p.numel() for p in model.parameters())
    assert 600e6 < params < 800e6


# -- whole runs on toy data ------------------------------------------------------------------


def distill_config(teacher: Path, out: Path, **sections) -> DistillConfig:
    return from_dict(DistillConfig, toy_distill_raw(teacher, out, **sections))


def distill(
    config: DistillConfig, resume: bool = False, until_epoch: int | None = None
) -> DistillRecipe:
    recipe = DistillRecipe(config, resume=resume)
    recipe.setup()
    recipe.train(until_epoch)
    recipe.cleanup()
    return recipe


@pytest.fixture(scope="module")
def toy_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return teacher_run(tmp_path_factory.mktemp("distill"))


def test_distillation_run_end_to_end_and_the_student_loads_like_any_run(
    toy_teacher: Path, tmp_path: Path
) -> None:
    recipe = distill(distill_config(toy_teacher, tmp_path / "student"))
    assert recipe.state["pre"]["sequences"] == 12 and len(recipe.state["pre"]["loss"]) == 1
    assert [h["epoch"] for h in recipe.state["history"]] == [1, 2]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in recipe.state["history"])
    caches = sorted(p.name.split("-")[0] for p in (toy_teacher / "distill-cache").iterdir())
    assert caches == ["pre", "train"]
    record = recipe.results(recipe.test_best())
    student_params = record["parameters"]
    assert student_params < record["distill"]["teacher_parameters"]
    assert record["distill"]["layer_map"] == [1]

    run = load_run(tmp_path / "student", progress=False)  # an ordinary run folder
    assert sum(p.numel() for p in run.model.parameters()) == student_params
    metrics = evaluate(make_scorer(run.model), run.split, "test", progress=False).metrics
    assert metrics["ndcg@10"] == pytest.approx(record["test"]["ndcg@10"], abs=1e-6)

    # a second student reuses the teacher cache instead of running the teacher again
    again = DistillRecipe(distill_config(toy_teacher, tmp_path / "again", pre={"epochs": 0}))
    again.setup()
    assert again.cache_seconds == 0.0 and isinstance(again.teacher, CachedTeacher)


def test_cached_teacher_outputs_equal_the_live_teacher_at_item_positions(
    toy_teacher: Path, tmp_path: Path
) -> None:
    teacher = load_run(toy_teacher, progress=False).model
    spec = TeacherSpec(top_k=5, temperature=0.8, layers=(0, 1))
    live = LiveTeacher(teacher, spec)
    dataset = NextItemDataset(
        load_run(toy_teacher, progress=False).split.sequences("train"), teacher.max_len
    )
    build_cache(live, dataset, tmp_path / "cache", batch_size=7, shard_sequences=10, progress=False)
    assert len(list((tmp_path / "cache").glob("shard-*.safetensors"))) > 1
    cached = CachedTeacher(tmp_path / "cache", dataset.sequences.n_users)
    from recllm.data.batching import SequenceCollator

    batch = SequenceCollator(teacher.pad_id)([dataset[i] for i in (3, 0, 11, 5)])
    a, b = live(batch), cached(batch)
    real = batch.mask
    assert torch.equal(a.indices[real], b.indices[real].long())
    assert torch.allclose(a.logits[real], b.logits[real].float(), atol=1e-2, rtol=1e-3)
    assert torch.allclose(a.lse[real], b.lse[real], atol=1e-5)
    rows = real.unsqueeze(-1) & real.unsqueeze(1)
    for x, y in zip(a.maps, b.maps, strict=True):
        assert torch.allclose(x[rows], y[rows], atol=1e-3)


def test_init_from_teacher_copies_mapped_layers_when_shapes_fit(toy_teacher: Path) -> None:
    teacher = load_run(toy_teacher, progress=False).model
    student = copy.deepcopy(teacher)  # same shapes: every tensor can be copied
    for p in student.parameters():
        torch.nn.init.normal_(p)
    copied = init_from_teacher(student, teacher, mapping=[1, 1])
    assert copied
    layer0 = dict(student.backbone.named_parameters())[
        "model.encoder.layer.0.attention.self.query.weight"
    ]
    source = dict(teacher.backbone.named_parameters())[
        "model.encoder.layer.1.attention.self.query.weight"
    ]
    assert torch.equal(layer0, source)


def test_an_interrupted_distillation_resumes_where_it_stopped(
    toy_teacher: Path, tmp_path: Path
) -> None:
    straight = distill(distill_config(toy_teacher, tmp_path / "straight"))
    interrupted = distill(distill_config(toy_teacher, tmp_path / "resumed"), until_epoch=1)
    assert interrupted.state["epoch"] == 1
    resumed = distill(distill_config(toy_teacher, tmp_path / "resumed"), resume=True)
    # pre-distillation is not repeated: its record comes back from the checkpoint
    assert resumed.state["pre"] == interrupted.state["pre"]
    assert [h["epoch"] for h in resumed.state["history"]] == [1, 2]
    a = {n: p for n, p in straight.model.named_parameters() if p.requires_grad}
    b = {n: p for n, p in resumed.model.named_parameters() if p.requires_grad}
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resuming_with_other_distillation_settings_is_refused(
    toy_teacher: Path, tmp_path: Path
) -> None:
    distill(distill_config(toy_teacher, tmp_path / "run", pre={"epochs": 0}), until_epoch=1)
    changed = distill_config(
        toy_teacher, tmp_path / "run", pre={"epochs": 0}, distill={"kl_weight": 0.9}
    )
    with pytest.raises(ConfigError, match=r"resume: the config differs .*distill\.kl_weight"):
        DistillRecipe(changed, resume=True).setup()


def test_student_trained_alone_needs_no_teacher_outputs(toy_teacher: Path, tmp_path: Path) -> None:
    config = distill_config(
        toy_teacher,
        tmp_path / "alone",
        student={"init": "random"},
        distill={"kl_weight": 0.0, "attention_weight": 0.0},
        pre={"epochs": 0},
    )
    recipe = distill(config)
    assert recipe.teacher is None and "pre" not in recipe.state and recipe.copied == []


def test_mask_ablation_runs_with_the_live_teacher(toy_teacher: Path, tmp_path: Path) -> None:
    config = distill_config(
        toy_teacher, tmp_path / "nomask", distill={"mask": False, "cache": False}, pre={"epochs": 0}
    )
    recipe = distill(config)
    assert isinstance(recipe.teacher, LiveTeacher)
    assert recipe.state["history"][-1]["loss"] > 0


def test_paper_architecture_decoder_teacher_to_encoder_student(tmp_path: Path) -> None:
    """The paper's pairing at toy size: a LLaMA (decoder-only) teacher distilled into a
    BERT student through the same classes and a full step of every stage."""
    teacher = teacher_run(tmp_path, family="llama")
    paper = load_yaml(Path("configs/distill/paper-llama2-13b.yaml"))
    config = distill_config(teacher, tmp_path / "student", distill=paper["distill"] | {"top_k": 5})
    recipe = distill(config)
    assert recipe.teacher_model.backbone.is_decoder
    assert not recipe.model.backbone.is_decoder
    assert to_dict(config.distill)["temperature"] == pytest.approx(0.8)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in recipe.state["history"])


def test_bench_distill_reports_ratios_side_by_side(toy_teacher: Path, tmp_path: Path) -> None:
    import argparse

    from recllm.bench import run_benchmark
    from recllm.bench.distill import model_bytes, quantised

    distill(distill_config(toy_teacher, tmp_path / "student", pre={"epochs": 0}))
    args = argparse.Namespace(
        checkpoint=toy_teacher,
        students=[f"distilled={tmp_path / 'student'}"],
        data_dir=None,
        threads=1,
        repeats=1,
        results_dir=tmp_path / "results",
    )
    result = run_benchmark("distill", args)
    rows = result["rows"]
    student = rows["distilled"]
    assert set(rows) == {"teacher", "distilled", "distilled-int8", "distilled-onnx"}
    onnx = result["onnx"]
    assert onnx["top10_identical"] == onnx["test_users_compared"] > 0
    assert rows["distilled-onnx"]["recall@10"] == pytest.approx(student["recall@10"], abs=1e-9)
    assert rows["distilled-onnx"]["backend"] == "onnxruntime"
    teacher, student = rows["teacher"], rows["distilled"]
    assert result["speedup"] == pytest.approx(
        teacher["latency_p50_ms"] / student["latency_p50_ms"], rel=0.01
    )
    assert result["memory_reduction"] == pytest.approx(
        1 - student["model_bytes"] / teacher["model_bytes"], abs=1e-3
    )
    assert student["model_bytes"] < teacher["model_bytes"]
    assert rows["distilled-int8"]["model_bytes"] < student["model_bytes"]
    assert (tmp_path / "results" / "distill" / f"{result['dataset']}.json").is_file()

    model = load_run(tmp_path / "student", progress=False).model
    assert model_bytes(quantised(model)) < model_bytes(model)


def test_a_nan_loss_in_pre_distillation_stops_at_once(
    toy_teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DistillRecipe._loss

    def nan_loss(self: DistillRecipe, *args: object, **kwargs: object) -> torch.Tensor:
        return original(self, *args, **kwargs) * math.nan  # type: ignore[arg-type]

    monkeypatch.setattr(DistillRecipe, "_loss", nan_loss)
    with pytest.raises(
        RecLLMError, match=r"pre-distillation loss became nan at pre-distillation epoch 1, step 1;"
    ):
        distill(distill_config(toy_teacher, tmp_path / "student"))
