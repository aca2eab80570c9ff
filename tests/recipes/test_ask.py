"""``Assistant.ask`` and ``recllm ask`` on a toy SASRec run: every intent path, slots
applied to the ranking, explanations only after the ranking, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FixedIntent, save_tiny_bert, write_toy_movielens
from recipes.test_train import toy_sasrec_run

from recllm.cli import main
from recllm.errors import RecLLMError
from recllm.recipes.ask import MINIMAL, Assistant
from recllm.recipes.inference import LoadedRun, load_run
from recllm.recipes.router import RouterTrainConfig, train_router
from recllm.routing.classifier import ClassifierConfig
from recllm.routing.router import Router
from recllm.routing.schema import INTENTS, Intent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_sasrec_run(tmp_path_factory.mktemp("ask"), epochs=3)


@pytest.fixture(scope="module")
def run(run_dir: Path) -> LoadedRun:
    return load_run(run_dir, progress=False)


def assistant(run: LoadedRun, intent: Intent, mode: str = "filter") -> Assistant:
    return Assistant(run, Router(FixedIntent(intent)), mode=mode)  # type: ignore[arg-type]


def test_recommend_applies_count_genre_and_year(run: LoadedRun) -> None:
    ask = assistant(run, Intent.RECOMMEND)
    answer = ask.ask("recommend 3 films from the 80s", user="1")
    assert answer.route.slots.k == 3 and len(answer.items) == 3
    assert all(item.meets_constraints for item in answer.items)
    assert all(1980 <= ask.catalog.years[i.item] <= 1989 for i in answer.items)
    assert answer.explanations == ()
    # toy items have one genre each: only two are comedies, and the answer says so
    comedies = ask.ask("recommend 5 comedies", user="1")
    assert comedies.items and all("Comedy" in ask.catalog.genres_of[i.item] for i in comedies.items)
    assert f"only {len(comedies.items)} unseen items meet the constraints" in comedies.notes
    history = set(ask.catalog.item_ids[run.split.train.query("user == 0")["item"]].tolist())
    assert not history & {item.item_id for item in answer.items}  # seen items excluded


def test_boost_ranks_matches_higher_without_removing_the_rest(run: LoadedRun) -> None:
    plain = assistant(run, Intent.RECOMMEND).ask("10 films", user="1")
    boosted = assistant(run, Intent.RECOMMEND, mode="boost").ask("10 dramas", user="1")
    assert len(boosted.items) == 10 and False in [i.meets_constraints for i in boosted.items]
    rank = {item.item: r for r, item in enumerate(boosted.items)}
    for r, item in enumerate(plain.items):
        if (
            item.item in rank
            and "Drama" in assistant(run, Intent.RECOMMEND).catalog.genres_of[item.item]
        ):
            assert rank[item.item] <= r  # a match never drops


def test_a_named_item_seeds_the_ranking_and_is_not_recommended(run: LoadedRun) -> None:
    answer = assistant(run, Intent.RECOMMEND).ask("more like Movie 12", user="1")
    assert answer.route.slots.item is not None and answer.route.slots.item.title == "Movie 12"
    assert "12" not in {item.item_id for item in answer.items}
    plain = assistant(run, Intent.RECOMMEND).ask("recommend something", user="1")
    assert [i.item for i in answer.items] != [i.item for i in plain.items]


def test_explain_named_item_or_top_recommendation(run: LoadedRun) -> None:
    named = assistant(run, Intent.EXPLAIN).ask("why Movie 12?", user="2")
    assert named.items == () and len(named.explanations) == 1
    assert named.explanations[0].title == "Movie 12" and named.explanations[0].generator == MINIMAL
    top = assistant(run, Intent.EXPLAIN).ask("why this one?", user="2")
    assert "explaining the top recommendation" in " ".join(top.notes)
    unknown = assistant(run, Intent.EXPLAIN).ask("why Inception?", user="2")
    assert unknown.explanations == () and "no item in the catalogue matches" in unknown.notes[0]


def test_recommend_and_explain_ranks_first_then_explains_each(run: LoadedRun) -> None:
    both = assistant(run, Intent.RECOMMEND_AND_EXPLAIN).ask("5 comedies and why", user="3")
    alone = assistant(run, Intent.RECOMMEND).ask("5 comedies and why", user="3")
    assert [i.item_id for i in both.items] == [i.item_id for i in alone.items]
    assert [e.item_id for e in both.explanations] == [i.item_id for i in both.items]


def test_out_of_scope_unknown_user_and_impossible_constraints(run: LoadedRun) -> None:
    oos = assistant(run, Intent.OUT_OF_SCOPE).ask("what's the weather", user="1")
    assert oos.items == () and oos.explanations == () and "out of scope" in oos.notes[0]
    with pytest.raises(RecLLMError, match="unknown user"):
        assistant(run, Intent.RECOMMEND).ask("anything", user="nobody")
    none = assistant(run, Intent.RECOMMEND).ask("westerns from 1950 to 1951", user="1")
    assert none.items == () and "only 0 unseen items meet the constraints" in none.notes


def test_ask_command_prints_the_typed_answer(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bert = save_tiny_bert(tmp_path / "bert")
    train_router(
        RouterTrainConfig(
            output_dir=str(tmp_path / "router"),
            catalogs=[str(write_toy_movielens(tmp_path / "ml-toy"))],
            per_intent=10,
            classifier=ClassifierConfig(backbone=str(bert)),
            student_layers=[0],
            epochs=1,
            student_epochs=1,
            progress=False,
        )
    )
    argv = ["ask", str(run_dir), "recommend 3 films", "--user", "1"]
    assert main([*argv, "--router", str(tmp_path / "router"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["intent"] in INTENTS  # a tiny random router: any intent, each handled
    assert {"items", "explanations", "notes", "confidence"} <= set(answer)
    if answer["intent"] == "out_of_scope":
        assert answer["k"] is None and answer["items"] == []
    else:
        assert answer["k"] == 3
    if answer["intent"] in ("recommend", "recommend_and_explain"):
        assert len(answer["items"]) == 3


def test_ask_command_reports_a_missing_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "nowhere", "hi", "--user", "1"]) == 2
    assert "not a finished training run" in capsys.readouterr().err
