"""``benchmarks/distill.sh``: the three seeded students and the one trained alone, the
bench against the validation-chosen one, and a rerun that trains nothing again; on a toy
teacher, in a copy of the repository's layout (the script reads ``configs/distill/``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import teacher_run, toy_distill_raw

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill.sh"


def run_script(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)  # where `recllm` is installed
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(tree / "benchmarks" / "distill.sh"), *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def script_tree(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A toy teacher run, and a copy of the repository's layout that the script reads
    (the script and a student config ``configs/distill/ml-toy.yaml``, returned as a dict)."""
    teacher = teacher_run(tmp_path)
    tree = tmp_path / "repo"
    (tree / "benchmarks").mkdir(parents=True)
    shutil.copy(SCRIPT, tree / "benchmarks" / "distill.sh")
    config = toy_distill_raw(teacher, tmp_path / "unused", pre={"epochs": 0})
    (tree / "configs" / "distill").mkdir(parents=True)
    (tree / "configs" / "distill" / "ml-toy.yaml").write_text(yaml.safe_dump(config))
    return teacher, tree, config


@pytest.mark.slow
def test_students_are_trained_once_and_the_best_on_validation_is_benched(tmp_path: Path) -> None:
    teacher, tree, _ = script_tree(tmp_path)

    done = run_script(tree, "ml-toy", str(teacher), "toy")
    assert done.returncode == 0, done.stderr[-2000:]
    records_dir = tree / "results" / "distill" / "teacher-toy" / "ml-toy"
    records = {p.stem: json.loads(p.read_text()) for p in records_dir.glob("*.json")}
    assert set(records) == {"distilled", "distilled-seed-1", "distilled-seed-2", "alone"}
    assert {r["distill"]["teacher"] for r in records.values()} == {str(teacher)}
    seeds = [records[n]["distill"]["config"]["trainer"]["seed"] for n in sorted(records)]
    assert sorted(seeds) == [0, 0, 1, 2]
    best = max(
        (r for n, r in records.items() if n != "alone"), key=lambda r: r["valid_best"]["ndcg@10"]
    )
    chosen = best["distill"]["config"]["output_dir"]
    assert f"student with the best validation NDCG@10: {chosen}" in done.stdout
    bench = json.loads((tree / "results" / "distill" / "ml-toy.json").read_text())
    assert set(bench["rows"]) >= {"teacher", "distilled", "alone"}

    stamps = {p.name: p.stat().st_mtime_ns for p in records_dir.glob("*.json")}
    again = run_script(tree, "ml-toy", str(teacher), "toy")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in records_dir.glob("*.json")} == stamps


def test_a_wrong_call_says_how_to_call_it(tmp_path: Path) -> None:
    done = run_script(SCRIPT.parents[1], "ml-toy")
    assert done.returncode == 2
    assert "usage:" in done.stderr and "DATASET TEACHER_RUN NAME" in done.stderr


def test_a_student_cut_off_mid_run_continues_from_its_checkpoint(tmp_path: Path) -> None:
    from recllm.config import from_dict
    from recllm.distill.config import DistillConfig
    from recllm.distill.recipe import DistillRecipe

    teacher, tree, config = script_tree(tmp_path)
    # the seed-0 student as the script starts it, stopped after its first epoch
    folder = tree / "runs" / "distill" / "teacher-toy-ml-toy"
    cut_off = from_dict(DistillConfig, {**config, "output_dir": str(folder)})
    cut_off.trainer.num_threads = 1
    recipe = DistillRecipe(cut_off, data_dir=tree.parent / "ml-toy")
    recipe.setup()
    recipe.train(until_epoch=1)
    recipe.cleanup()

    done = run_script(tree, "--students-only", "ml-toy", str(teacher), "toy")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(epoch 1 done)" in done.stderr  # continued, not started again
    record = json.loads(
        (tree / "results" / "distill" / "teacher-toy" / "ml-toy" / "distilled.json").read_text()
    )
    assert record["epochs_run"] == 2
