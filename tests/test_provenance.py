"""Provenance: a run is dirty only when its code differs from the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from recllm.provenance import git_state


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed checkout with code, configs, results and docs."""
    for name, text in {
        "src/pkg/model.py": "WIDTH = 8\n",
        "configs/a.yaml": "lr: 0.001\n",
        "pyproject.toml": "[project]\nname = 'x'\n",
        "results/ml/model.json": '{"test": {"recall@10": 0.2}}\n',
        "README.md": "# x\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return tmp_path


def test_clean_checkout_is_clean(repo: Path) -> None:
    state = git_state(repo)
    assert not state["git_commit"].endswith("-dirty") and len(state["git_commit"]) == 40
    assert state["code_diff_sha256"] is None
    assert "src" in state["dirty_scope"]


@pytest.mark.parametrize("changed", ["results/ml/model.json", "README.md", "notes.txt"])
def test_non_code_changes_keep_the_run_clean(repo: Path, changed: str) -> None:
    (repo / changed).write_text("edited\n")
    assert git_state(repo)["code_diff_sha256"] is None
    assert not git_state(repo)["git_commit"].endswith("-dirty")


@pytest.mark.parametrize(
    "changed", ["src/pkg/model.py", "configs/a.yaml", "pyproject.toml", "src/pkg/new.py"]
)
def test_code_changes_make_it_dirty_with_a_hash(repo: Path, changed: str) -> None:
    (repo / changed).write_text("changed = True\n")
    state = git_state(repo / "src")  # from a subfolder too
    assert state["git_commit"].endswith("-dirty")
    assert len(state["code_diff_sha256"]) == 64


def test_hash_names_the_diff(repo: Path) -> None:
    model = repo / "src/pkg/model.py"
    model.write_text("WIDTH = 16\n")
    first = git_state(repo)["code_diff_sha256"]
    (repo / "results/ml/model.json").write_text("{}\n")  # not code: same hash
    assert git_state(repo)["code_diff_sha256"] == first
    model.write_text("WIDTH = 32\n")
    assert git_state(repo)["code_diff_sha256"] != first
    _git(repo, "add", "src/pkg/model.py")  # staged or not, the same difference
    model.write_text("WIDTH = 16\n")
    assert git_state(repo)["code_diff_sha256"] == first


def test_outside_git_is_unknown(tmp_path: Path) -> None:
    state = git_state(tmp_path)
    assert state["git_commit"] == "unknown" and state["code_diff_sha256"] is None
