"""``recllm bench constraints`` on a toy SASRec run: filtering satisfies every constraint,
and the none/boost/filter rows come from one set of scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recipes.test_train import toy_sasrec_run

from recllm.cli import main


def test_bench_constraints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "constraints", "--checkpoint", str(toy_sasrec_run(tmp_path))]
    assert main([*argv, "--results-dir", str(tmp_path / "results")]) == 0
    result = json.loads((tmp_path / "results" / "routing" / "constraints-ml-toy.json").read_text())
    for kind in ("genre", "decade"):
        rows = result["constraints"][kind]
        assert rows["users_constrained"] == 40
        assert rows["filter"]["satisfaction@10"] >= rows["none"]["satisfaction@10"]
        assert set(rows["boost"]["relative_change"]) <= {"recall@10", "ndcg@10"}
    # a decade filter leaves at most the decade's unseen items; a genre one fewer still
    assert result["constraints"]["decade"]["filter"]["satisfaction@10"] > 0.5
    assert main(["bench", "constraints"]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err
