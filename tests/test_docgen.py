"""Generated docs: tables from results, the CLI page from the parsers, quoted figures
checked against the files they name, and the README's tables up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recllm.cli import build_parser
from recllm.docgen import generate, readme_with_tables, render_cli
from recllm.docgen.figures import check_files, check_text
from recllm.docgen.markdown import Column, table
from recllm.errors import RecLLMError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PAGES = sorted((ROOT / "docs").glob("*.md"))


def test_readme_tables_match_the_results() -> None:
    """`recllm report` refills these blocks; a stale README fails here."""
    text = (ROOT / "README.md").read_text()
    assert "<!-- generated:headline-ml-100k -->" in text
    assert readme_with_tables(text, RESULTS) == text, "run `recllm report` to refresh"


@pytest.mark.parametrize("path", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_quoted_figures_are_in_the_files_named_beside_them(path: Path) -> None:
    problems = check_files([path], ROOT)
    assert not problems, "\n".join(map(str, problems))


def test_every_included_table_is_generated(tmp_path: Path) -> None:
    written = {p.stem for p in generate(RESULTS, tmp_path, build_parser())}
    included = {
        line.split('"generated/')[1].split('.md"')[0]
        for page in PAGES
        for line in page.read_text().splitlines()
        if line.startswith('--8<-- "generated/')
    }
    assert included and included <= written, included - written


def test_readme_is_short_and_keeps_the_ci_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "ruff check . && ruff format --check . && mypy && python -m pytest"
    assert test_command in readme and test_command in ci
    assert f"{test_command} || exit $?" in ci  # set -e alone ignores a failed && list
    assert 'pip install torch==2.13.0 && pip install -e ".[dev]"' in readme


def test_cli_reference_lists_every_command() -> None:
    page = render_cli(build_parser())
    for command in ("quickstart", "train", "distill", "bench", "report", "data stats"):
        assert f"## `recllm {command}`" in page
    assert "--results-dir" in page


RESULT = {"test": {"recall@10": 0.2014846, "ndcg@10": 0.1046889}, "speedup": 12.3}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "results" / "ml").mkdir(parents=True)
    (tmp_path / "results" / "ml" / "joint.json").write_text(json.dumps(RESULT))
    return tmp_path


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("Joint R@10 0.201 / N@10 0.105, 12.3x (`results/ml/joint.json`).", []),
        ("Joint R@10 0.202 (`results/ml/joint.json`).", ["0.202"]),  # a rounding slip
        ("Joint R@10 0.2015 (`results/ml/joint.json`).", []),  # more digits, still right
        ("Joint R@10 0.20149 (`results/ml/joint.json`).", ["0.20149"]),
        ("R@10 20.1 % (`results/ml/joint.json`).", []),  # a percentage
        ("Joint R@10 0.201, no file named.", ["0.201"]),
        ("The paper's 0.187 (paper).", []),
        ("A gap of ~0.004 (`results/ml/joint.json`).", []),  # derived, marked
        ("R@10 0.201 (`results/ml/missing.json`).", ["results/ml/missing.json", "0.201"]),
        ("Lead-in (`results/ml/joint.json`):\n\n- R@10 0.201\n- N@10 0.106", ["0.106"]),
        ("| model | R@10 |\n|---|---:|\n| ours | 0.201 |", ["| ours | 0.201 |"]),
        ("```\nrecllm train x.yaml trainer.lr=0.5555\n```", []),
    ],
)
def test_figure_checker(root: Path, text: str, bad: list[str]) -> None:
    problems = check_text(text, Path("page.md"), root)
    assert [p.figure for p in problems] == bad


def test_table_cells_come_from_records() -> None:
    md = table(
        [("a", {"x": {"y": 0.12345}, "n": 1234}), ("b", {})],
        [Column("y", "x/y"), Column("n", "n", fmt=",d")],
        "row",
    )
    assert md.splitlines() == [
        "| row | y | n |",
        "|---|---:|---:|",
        "| a | 0.123 | 1,234 |",
        "| b |  |  |",
    ]


def test_serving_targets_compare_each_students_p99_with_its_aim(tmp_path: Path) -> None:
    from recllm.docgen.bench_tables import serving

    def record(name: str, kind: str, p99: float) -> dict:
        levels = {"concurrency_1": {"p99_ms": p99}, "concurrency_16": {"p99_ms": p99}}
        http = {e: levels for e in ("recommend", "explain", "ask")}
        return {
            "name": name,
            "recommender": {"kind": kind},
            "http": http,
            "python_api": {},
            "server_peak_rss_mb": 100,
        }

    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "s.json").write_text(json.dumps(record("s", "student", 60.0)))
    (tmp_path / "serve" / "t.json").write_text(json.dumps(record("t", "teacher", 1.0)))
    rows = [r for r in serving(tmp_path)["serve-targets"].splitlines() if r.startswith("| s:")]
    assert rows == [
        "| s: recommend, concurrency 16 | 50 | 60.0 | no |",
        "| s: explain, concurrency 1 | 100 | 60.0 | yes |",
        "| s: ask, concurrency 1 | 100 | 60.0 | yes |",
    ]


def test_the_hop_table_reads_split_serving_results(tmp_path: Path) -> None:
    """`recllm bench serve --split` files give the hop table; the others do not."""
    from recllm.docgen.bench_tables import serving

    (tmp_path / "serve").mkdir()
    assert "No `recllm bench serve --split`" in serving(tmp_path)["serve-hop"]
    row = {"p50_ms": 5.0, "p95_ms": 6.0, "p99_ms": 7.0, "requests": 3, "non_200": 0}
    record = {"name": "toy", "http": {"explain": {"concurrency_1": row}}, "python_api": {}}
    record["server_peak_rss_mb"] = 100.0
    (tmp_path / "serve" / "all.json").write_text(json.dumps(record))
    hop = {"round_trip": {"p50_ms": 4.31, "p99_ms": 9.5}, "overhead": {"p50_ms": 1.21}}
    split = {"hop_alone": {**hop, "requests": 3}, "hop_under_load": {"calls": 5, "failed_x": 1}}
    (tmp_path / "serve" / "split.json").write_text(json.dumps({**record, "split": split}))
    lines = serving(tmp_path)["serve-hop"].splitlines()
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert cells == ["toy", "4.3", "9.5", "1.2", "", "3", "5", "1"]  # a missing p99: empty
    assert len(lines) == 5 and "serve/split.json" in lines[-1]  # the all-role file is no row
    assert "serve/all.json" not in lines[-1]


def test_ablations_run_like_models_get_their_own_accuracy_table(tmp_path: Path) -> None:
    from recllm.docgen.tables import accuracy

    def record(ndcg: float) -> dict:
        return {"test": {"recall@10": 0.1, "ndcg@10": ndcg}, "test_sd": {"recall@10": 0.01}}

    (tmp_path / "beauty").mkdir()
    (tmp_path / "beauty" / "recllm-adapter.json").write_text(json.dumps(record(0.05)))
    (tmp_path / "ablations" / "beauty").mkdir(parents=True)
    ablation = tmp_path / "ablations" / "beauty" / "ablation-no-metadata.json"
    ablation.write_text(json.dumps(record(0.04)))
    tables = accuracy(tmp_path)
    assert sorted(tables) == ["accuracy-ablations-beauty", "accuracy-beauty"]
    rows = [r for r in tables["accuracy-ablations-beauty"].splitlines() if "no-metadata" in r]
    assert len(rows) == 1 and "0.100 ± 0.010" in rows[0] and "0.040" in rows[0]
    assert "no-metadata" not in tables["accuracy-beauty"]


def test_the_headline_shows_the_id_only_control_of_a_part_ours_uses(tmp_path: Path) -> None:
    from recllm.docgen.tables import headline

    def record(ndcg: float, item_age: int = 0) -> dict:
        return {
            "test": {"recall@10": 0.1, "ndcg@10": ndcg},
            "config": {"adapter": {"item_age_buckets": item_age}},
        }

    (tmp_path / "amazon-beauty").mkdir()
    (tmp_path / "ideas" / "amazon-beauty").mkdir(parents=True)
    ours = tmp_path / "amazon-beauty" / "recllm-adapter.json"
    (tmp_path / "amazon-beauty" / "sasrec-ce.json").write_text(json.dumps(record(0.05)))
    control = tmp_path / "ideas" / "amazon-beauty" / "sasrec-ce-item-age.json"
    control.write_text(json.dumps(record(0.0567)))

    def control_rows() -> list[str]:
        rows = headline(tmp_path)["headline-amazon-beauty"].splitlines()
        return [r for r in rows if "ID-only control" in r]

    ours.write_text(json.dumps(record(0.06)))  # without the groups: no control to show
    assert control_rows() == []
    ours.write_text(json.dumps(record(0.06, item_age=20)))
    (row,) = control_rows()
    assert "0.057" in row and "results/ideas/amazon-beauty/sasrec-ce-item-age.json" in row
    over_seeds = record(0.0567) | {"seeds": [{}, {}, {}], "test_sd": {"ndcg@10": 0.0005}}
    control.write_text(json.dumps(over_seeds))
    (row,) = control_rows()
    assert row.count("mean ± sd of 3 seeds") == 1 and "0.057 ± 0.001" in row


def test_students_of_another_teacher_show_each_variant_over_its_seeds(tmp_path: Path) -> None:
    from recllm.docgen.tables import _variants_over_seeds

    def record(seed: int, valid: float, recall: float) -> dict:
        return {
            "seed": seed,
            "valid_best": {"ndcg@10": valid, "epoch": 10},
            "test": {"recall@10": recall, "ndcg@10": recall / 2},
            "epochs_run": 20,
            "git_commit": "abc",
        }

    runs = {"wide": (0, 0.10, 0.20), "wide-seed-1": (1, 0.12, 0.22), "wide-seed-2": (2, 0.14, 0.18)}
    runs |= {"alone": (0, 0.05, 0.15)}
    for stem, figures in runs.items():
        (tmp_path / f"{stem}.json").write_text(json.dumps(record(*figures)))
    rows = dict(_variants_over_seeds(tmp_path))
    assert sorted(rows) == ["`alone`", "`wide`, 3 seeds"]
    wide = rows["`wide`, 3 seeds"]
    assert wide["valid_best"]["ndcg@10"] == pytest.approx(0.12)
    assert wide["valid_best_sd"]["ndcg@10"] == pytest.approx(0.02)
    assert wide["test"]["recall@10"] == pytest.approx(0.20)
    assert wide["test_sd"]["recall@10"] == pytest.approx(0.02)
    assert [s["seed"] for s in wide["seeds"]] == [0, 1, 2]
    assert rows["`alone`"]["test"]["recall@10"] == 0.15 and "test_sd" not in rows["`alone`"]


def test_ideas_show_the_settings_a_trial_changed_against_the_shipped_run() -> None:
    """Read from the resolved configs, not the command line: a trial run when the
    shipped config itself differed still shows what sets it apart from the shipped run."""
    from recllm.docgen.tables import _settings_against

    shipped = {
        "config": {"trainer": {"lr": 0.001}},
        "command": "recllm train c.yaml trainer.lr=0.001",
    }
    trial = {
        "config": {"trainer": {"lr": 0.001, "epochs": 40, "num_threads": 1}},
        "command": "recllm train c.yaml trainer.seed=0",
    }
    cell = _settings_against(shipped)
    assert cell(trial) == "`trainer.epochs=40`"  # the thread count says how, not what
    assert cell(shipped) == "`trainer.lr=0.001`"
    assert _settings_against(None)(trial) == "`trainer.seed=0`"


def test_ideas_trained_by_hand_and_by_the_benchmark_share_one_table(tmp_path: Path) -> None:
    from recllm.docgen.tables import ideas

    def record(lr: float, valid: float) -> dict:
        return {
            "config": {"trainer": {"lr": lr}},
            "command": "recllm train c.yaml",
            "valid_best": {"ndcg@10": valid, "epoch": 4},
            "epochs_run": 4,
        }

    (tmp_path / "beauty" / "ideas").mkdir(parents=True)
    (tmp_path / "ideas" / "beauty").mkdir(parents=True)
    (tmp_path / "beauty" / "recllm-adapter.json").write_text(json.dumps(record(0.001, 0.05)))
    (tmp_path / "beauty" / "ideas" / "by-hand.json").write_text(json.dumps(record(0.002, 0.06)))
    bench = tmp_path / "ideas" / "beauty" / "recllm-adapter-lora.json"
    bench.write_text(json.dumps(record(0.003, 0.04)))
    tables = ideas(tmp_path)
    assert list(tables) == ["ideas-beauty"]
    lines = tables["ideas-beauty"].splitlines()
    rows = lines[2:5]  # below the header and its rule, by validation NDCG@10
    assert [r.split("|")[1].strip() for r in rows] == [
        "shipped config (`recllm-adapter`)",
        "`recllm-adapter-lora`",
        "`by-hand`",
    ]
    assert "`trainer.lr=0.003`" in rows[1] and "0.0400" in rows[1]
    assert "beauty/ideas" in lines[-1] and "ideas/beauty" in lines[-1]

    # an analysis file among the runs' records is named in a clear error
    (tmp_path / "ideas" / "beauty" / "target-age.json").write_text(json.dumps({"buckets": []}))
    with pytest.raises(RecLLMError, match=r"target-age\.json: not a training run's record"):
        ideas(tmp_path)
