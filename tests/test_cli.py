"""The command line: exit codes, messages, and the quick-start job end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import save_tiny_bert, write_toy_movielens

from recllm.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_dataset_exits_2_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(["data", "stats", "no-such-dataset", "--cache-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "unknown dataset 'no-such-dataset'" in err and "Traceback" not in err


def test_known_name_missing_from_data_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(["data", "stats", "ml-1m", "--data-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "recllm data download ml-1m" in err and str(tmp_path) in err


def test_bad_column_mapping_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("uid,iid\n1,2\n")
    code, _, err = run(
        ["data", "stats", str(path), "--columns", "user=uid", "--cache-dir", str(tmp_path)], capsys
    )
    assert code == 2 and "KEY=COLUMN" in err


def test_stats_of_a_csv_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "uid,iid,ts\n" + "".join(f"{u},{i},{u * 10 + i}\n" for u in range(3) for i in range(4))
    )
    code, out, _ = run(
        [
            "data",
            "stats",
            str(path),
            "--columns",
            "user_id=uid,item_id=iid,timestamp=ts",
            "--json",
            "--cache-dir",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    stats = json.loads(out)
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 4, 12)
    assert stats["sequence_length"]["p50"] == 4


def test_quickstart_end_to_end_on_toy_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = write_toy_movielens(tmp_path / "ml-toy")
    bert = save_tiny_bert(tmp_path / "bert")
    output = tmp_path / "quick.json"
    argv = [
        "quickstart",
        "--dataset",
        str(data),
        "--cache-dir",
        str(tmp_path),
        "--output",
        str(output),
        "--quiet",
        f"backbone.name_or_path={bert}",
        f"output_dir={tmp_path / 'run'}",
        "trainer.epochs=2",
        "adapter.d_model=16",
        "adapter.n_heads=4",
        "data.preprocess.min_item_interactions=0",
        "trainer.tensorboard=false",
    ]
    code, out, _ = run([*argv, "--no-bundle"], capsys)
    assert code == 0
    assert "popularity (test)" in out and "recllm-adapter (test)" in out
    assert out.count("recently:") == 3
    results = json.loads(output.read_text())
    assert results["test"]["n_users"] == 40 and len(results["examples"]) == 3
    assert all(len(titles) == 5 for titles in results["examples"].values())
    assert not (tmp_path / "run-router").exists()


def test_quickstart_ends_with_a_bundle_that_answers_all_three(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short router and explainer schedules (shrunk further here: a tiny BERT) and the
    export run; the printed bundle recommends, explains and routes queries."""
    from recllm.explain.generator import GeneratorConfig
    from recllm.recipes import quickstart
    from recllm.routing.classifier import ClassifierConfig
    from recllm.serve.api import Recommender

    data = write_toy_movielens(tmp_path / "ml-toy")
    bert = save_tiny_bert(tmp_path / "bert")
    tiny_router = {
        "per_intent": 10,
        "student_layers": [0],
        "classifier": ClassifierConfig(backbone=str(bert)),
    }
    monkeypatch.setattr(quickstart, "ROUTER_SHORT", {**quickstart.ROUTER_SHORT, **tiny_router})
    tiny_generator = {"generator": GeneratorConfig(d_model=32, n_heads=2, max_target=24)}
    monkeypatch.setattr(
        quickstart, "EXPLAINER_SHORT", {**quickstart.EXPLAINER_SHORT, **tiny_generator}
    )
    bundle = tmp_path / "bundle"
    argv = ["quickstart", "--dataset", str(data), "--cache-dir", str(tmp_path), "--quiet"]
    argv += ["--bundle", str(bundle), f"backbone.name_or_path={bert}"]
    argv += [f"output_dir={tmp_path / 'run'}", "trainer.epochs=1", "adapter.d_model=16"]
    argv += ["adapter.n_heads=4", "data.preprocess.min_item_interactions=0"]
    code, out, err = run([*argv, "trainer.tensorboard=false"], capsys)
    assert code == 0, err
    assert f"recllm serve {bundle}" in out
    rec = Recommender.load(bundle)
    models = rec.info["models"]
    assert models["router"]["schedule"] == "short" and models["explainer"]["schedule"] == "short"
    top = rec.recommend(user_id="1", k=3).items
    assert len(top) == 3 and rec.explain(top[0].item_id, user_id="1").verified
    assert rec.ask("recommend 2 films", user_id="1").intent


@pytest.mark.slow
def test_quickstart_on_shared_ml100k(
    capsys: pytest.CaptureFixture[str], shared_data: Path, tmp_path: Path
) -> None:
    output = tmp_path / "quick.json"
    argv = [
        "quickstart",
        "--data-dir",
        str(shared_data),
        "--cache-dir",
        str(tmp_path),
        "--output",
        str(output),
        "--quiet",
        f"output_dir={tmp_path / 'run'}",
    ]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "recllm-adapter (test)" in out
    results = json.loads(output.read_text())
    assert results["test"]["n_users"] == 943
    assert results["test"]["metrics"]["ndcg@10"] > results["popularity_test"]["metrics"]["ndcg@10"]


def test_shipped_quickstart_config_trained_briefly_beats_popularity(
    capsys: pytest.CaptureFixture[str], shared_data: Path, tmp_path: Path
) -> None:
    """The shipped RecLLM-Adapter config (configs/quickstart.yaml) on real ML-100K, cut to
    two epochs and no bundle, already ranks better than popularity on the test split."""
    output = tmp_path / "quick.json"
    argv = ["quickstart", "--data-dir", str(shared_data), "--cache-dir", str(tmp_path)]
    argv += ["--output", str(output), "--quiet", "--no-bundle", f"output_dir={tmp_path / 'run'}"]
    argv += ["trainer.epochs=2", "trainer.eval_every=1", "trainer.tensorboard=false"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    results = json.loads(output.read_text())
    assert results["test"]["n_users"] == 943 and results["bundle"] is None
    ours, popular = results["test"]["metrics"], results["popularity_test"]["metrics"]
    assert ours["ndcg@10"] > popular["ndcg@10"] and ours["recall@10"] > popular["recall@10"]


def test_builtin_quickstart_config_matches_the_shipped_yaml() -> None:
    from recllm.config import load_yaml
    from recllm.recipes.quickstart import BUILTIN, QUICKSTART_CONFIG

    assert load_yaml(QUICKSTART_CONFIG) == BUILTIN


@pytest.mark.parametrize(
    ("name", "users", "items", "interactions"),
    [
        ("ml-100k", 943, 1682, 100_000),
        ("ml-1m", 6040, 3706, 1_000_209),
        ("amazon-beauty", 22363, 12101, 198_502),
        ("amazon-musical-instruments", 1429, 900, 10_261),
    ],
)
def test_stats_match_the_shared_data_readme(
    capsys: pytest.CaptureFixture[str],
    shared_data: Path,
    tmp_path: Path,
    name: str,
    users: int,
    items: int,
    interactions: int,
) -> None:
    code, out, _ = run(
        [
            "data",
            "stats",
            name,
            "--data-dir",
            str(shared_data),
            "--cache-dir",
            str(tmp_path),
            "--json",
        ],
        capsys,
    )
    assert code == 0
    stats = json.loads(out)
    assert (stats["users"], stats["items"], stats["interactions"]) == (users, items, interactions)
    assert stats["density"] == pytest.approx(interactions / (users * items))


def test_corrupt_file_from_cli_exits_2_naming_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t2\t5\t881250949\n1\tx\t5\t881250950\n")
    (folder / "u.item").write_text("2|Heat (1995)|01-Jan-1995||url|" + "|".join(["0"] * 19) + "\n")
    code, _, err = run(["data", "stats", str(folder), "--cache-dir", str(tmp_path / "c")], capsys)
    assert code == 2
    assert "u.data" in err and "line 2" in err and "Traceback" not in err
