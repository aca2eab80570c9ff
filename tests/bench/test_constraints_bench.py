"""``recllm bench constraints`` on a toy SASRec run: filtering satisfies every constraint,
and the none/boost/filter rows come from one set of scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recipes.test_train import toy_config

from recllm.cli import main
from recllm.recipes.train import TrainRecipe


def test_bench_constraints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = toy_config(tmp_path, "sasrec", epochs=2)
    config.model = "sasrec"
    config.sasrec.d_model = 16
    config.sasrec.max_len = 8
    recipe = TrainRecipe(config)
    recipe.setup()
    recipe.train()
    recipe.cleanup()
    argv = ["bench", "constraints", "--checkpoint", config.output_dir]
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
