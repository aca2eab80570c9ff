"""The training section of ``recllm bench scale`` runs end to end on tiny synthetic data
with 1 and 2 processes and writes its figures as JSON (a smoke test: no figure here is
a measurement; the lead runs ``recllm bench scale`` on a quiet machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import save_tiny_bert

from recllm.bench.scale_training import model_configs, run_training, with_scaling
from recllm.data.synth import SynthConfig, write_synthetic


@pytest.mark.slow  # four fresh sets of processes: about 2 minutes on a shared CPU
def test_training_section_runs_on_one_and_two_processes(tmp_path: Path) -> None:
    data = tmp_path / "synthetic"
    synth = SynthConfig(n_users=60, n_items=80, n_interactions=2_400, seed=3)
    write_synthetic(synth, data, progress=False)
    tiny = save_tiny_bert(tmp_path / "tiny-bert")
    overrides = [f"backbone.name_or_path={tiny}", "encoder.max_length=16"]
    work = tmp_path / "work"
    work.mkdir()
    configs = model_configs(data, tmp_path / "cache", work, batch_size=16, overrides=overrides)
    assert set(configs) == {"recllm-adapter", "student"}
    assert configs["student"].encoder.backbone.name_or_path == str(tiny)  # the teacher's encoder
    figures = run_training(configs, [1, 2], steps=2, warmup=1, work=work)
    assert json.loads(json.dumps(figures)) == figures  # JSON-ready as it is
    for name in ("recllm-adapter", "student"):
        rows = figures["models"][name]
        assert set(rows) == {"1", "2"}
        assert rows["1"]["processes"] == 1 and rows["2"]["processes"] == 2
        assert rows["1"]["threads_per_process"] == rows["2"]["threads_per_process"] == 1
        assert rows["2"]["samples"] == rows["1"]["samples"] == 2 * 16  # the same global batches
        assert len(rows["2"]["peak_rss_mb_per_process"]) == 2
        assert all(mb > 0 for mb in rows["2"]["peak_rss_mb_per_process"])
        assert rows["1"]["scaling_efficiency"] == 1.0 and rows["2"]["scaling_efficiency"] > 0
        assert rows["2"]["command"].split()[1:3] == ["-m", "torch.distributed.run"]
    student, adapter = figures["models"]["student"]["1"], figures["models"]["recllm-adapter"]["1"]
    assert student["trainable_parameters"] != adapter["trainable_parameters"]


def test_scaling_efficiency_is_the_speedup_per_process() -> None:
    rows = {"1": {"samples_per_second": 100.0}, "2": {"samples_per_second": 150.0}}
    scaled = with_scaling(rows)
    assert scaled["1"]["speedup"] == scaled["1"]["scaling_efficiency"] == 1.0
    assert scaled["2"]["speedup"] == 1.5 and scaled["2"]["scaling_efficiency"] == 0.75
    assert "speedup" not in with_scaling({"2": {"samples_per_second": 1.0}})["2"]


def test_the_student_is_derived_from_the_adapter_config(tmp_path: Path) -> None:
    configs = model_configs(
        tmp_path / "data", tmp_path / "cache", tmp_path, 64, ["trainer.lr=0.002"]
    )
    adapter, student = configs["recllm-adapter"], configs["student"]
    assert adapter.trainer.batch_size == student.trainer.batch_size == 64
    assert adapter.trainer.num_threads == student.trainer.num_threads == 1
    assert adapter.trainer.lr == student.trainer.lr == 0.002
    assert student.data.dataset == adapter.data.dataset == str(tmp_path / "data")
    assert student.encoder.backbone.name_or_path == adapter.backbone.name_or_path
    assert student.backbone.architecture is not None  # a student-shaped BERT, not the backbone


def test_epoch_time_projection_follows_amdahl_fitted_to_the_measured_speedup() -> None:
    from recllm.bench.scale_training import project_epoch_seconds

    rows = with_scaling(
        {
            "1": {"samples_per_second": 100.0, "train_sequences": 6000},
            "2": {"samples_per_second": 160.0, "train_sequences": 6000},
        }
    )
    projected = project_epoch_seconds(rows, [1, 2, 4])
    # S = 1.6 on 2: p = (1 - 1/1.6) / (1 - 1/2) = 0.75
    assert projected["parallel_fraction"] == 0.75 and projected["fitted_on_processes"] == 2
    assert projected["epoch_seconds"] == {"1": 60.0, "2": 37.5, "4": 26.2}
    with pytest.raises(ValueError, match="more than one process"):
        project_epoch_seconds({"1": rows["1"]}, [2])
