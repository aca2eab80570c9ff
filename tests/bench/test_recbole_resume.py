"""benchmarks/recbole/run.py --resume-dir: a run split over calls equals one run.

Needs the RecBole environment (``bash benchmarks/recbole/setup.sh``); trains BPR on the
ML-100K copy inside RecBole's wheel for a few epochs, so it is marked slow.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECBOLE_PYTHON = REPO / ".venv-recbole" / "bin" / "python"
RUN = REPO / "benchmarks" / "recbole" / "run.py"
EPOCHS = 4

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not RECBOLE_PYTHON.is_file(), reason="no .venv-recbole (setup.sh)"),
]


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(RECBOLE_PYTHON), str(RUN), "--model", "BPR", "--variant", "recbole"]
    command += ["--epochs", str(EPOCHS), "--quiet", "--out", str(out), *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)


def _result(out: Path) -> dict:
    return json.loads((out / "ml-100k-recbole" / "bpr.json").read_text())


def test_a_run_resumed_epoch_by_epoch_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    assert _run(whole).returncode == 0
    expected = _result(whole)

    state, pieces = tmp_path / "state", tmp_path / "pieces"
    # a zero budget stops after every validation but the last one
    for call in range(EPOCHS):
        done = _run(pieces, "--resume-dir", str(state), "--budget-minutes", "0")
        assert done.returncode == 0, done.stderr
        got = _result(pieces)
        assert len(got["calls"]) == call + 1
        assert got["epochs_run"] == call + 1
    assert got["stopped_by"] == "early stopping or max epochs"
    assert [c["stopped_by"] for c in got["calls"]] == ["budget"] * (EPOCHS - 1) + [
        "early stopping or max epochs"
    ]
    assert got["valid_curve"] == expected["valid_curve"]
    assert got["train_loss"] == expected["train_loss"]
    assert got["valid_best"] == expected["valid_best"]
    assert got["test"] == expected["test"]


def test_a_resumed_run_refuses_other_settings_and_a_finished_state(tmp_path: Path) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    assert _run(out, "--resume-dir", str(state), "--budget-minutes", "0").returncode == 0

    other_seed = _run(out, "--resume-dir", str(state), "--seed", "7")
    assert other_seed.returncode != 0
    assert "differing: seed" in other_seed.stderr

    assert _run(out, "--resume-dir", str(state)).returncode == 0  # trains out
    again = _run(out, "--resume-dir", str(state))
    assert again.returncode != 0
    assert "is a finished run" in again.stderr
