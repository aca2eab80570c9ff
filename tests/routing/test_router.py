"""The router on any input: guards before the model, slots only in scope, a trained router
saved and loaded, and the ``route`` and ``train-router`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import movie_catalog, product_catalog, save_tiny_bert, write_toy_movielens

from recllm.cli import main
from recllm.errors import RecLLMError
from recllm.recipes.router import RouterTrainConfig, train_router
from recllm.routing.classifier import ClassifierConfig, IntentClassifier
from recllm.routing.router import MAX_CHARS, REQUEST_NOTE, Router, reads_as_request
from recllm.routing.schema import INTENTS, Intent


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    folder = save_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")
    classifier = IntentClassifier.build(ClassifierConfig(backbone=str(folder), max_length=16))
    return Router(classifier, movie_catalog())


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("", "empty query"),
        ("   \t ", "empty query"),
        ("12345 ?!", "no words in the query"),
        ("推荐一部电影", "not in English (mostly non-Latin script)"),
        ("посоветуй фильм", "not in English (mostly non-Latin script)"),
    ],
)
def test_unreadable_input_is_out_of_scope_with_a_reason(
    router: Router, text: str, note: str
) -> None:
    route = router.route(text)
    assert route.intent is Intent.OUT_OF_SCOPE and route.notes == (note,)
    assert route.slots.item is None and route.to_json()["notes"] == [note]


def test_long_input_is_cut_and_says_so(router: Router) -> None:
    route = router.route("why toy story " * 400)
    assert any(f"first {MAX_CHARS} characters" in n for n in route.notes)
    assert any("first 16 of" in n for n in route.notes)


def test_slots_only_for_in_scope_intents_and_order_is_kept(router: Router) -> None:
    texts = ["anything like toy story?", "", "why star wars"]
    routes = router.route_many(texts)
    assert [r.text for r in routes] == texts
    for route in routes:
        if route.intent is Intent.OUT_OF_SCOPE:
            assert route.slots.item is None
        else:
            assert route.slots.item is not None  # both in-scope texts name a title
    with pytest.raises(RecLLMError, match="strings"):
        router.route_many([None])  # type: ignore[list-item]


def test_train_router_then_route_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_toy_movielens(tmp_path / "ml-toy")
    bert = save_tiny_bert(tmp_path / "tiny-bert")
    config = RouterTrainConfig(
        output_dir=str(tmp_path / "router"),
        catalogs=[str(data)],
        per_intent=40,
        classifier=ClassifierConfig(backbone=str(bert), max_length=24),
        student_layers=[1],
        epochs=2,
        student_epochs=2,
        lr=1e-3,
        student_lr=1e-3,
        progress=False,
    )
    record = train_router(config)
    assert record["serving"] == "student" and record["generated"]["valid"] == 16
    assert 0.0 <= record["student"]["valid_accuracy"] <= 1.0
    loaded = Router.load(tmp_path / "router")
    assert loaded.classifier.n_layers == 1

    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"text": "why movie 3"}\n{"text": ""}\n')
    argv = ["route", str(queries), "--router", str(tmp_path / "router"), "--catalog", str(data)]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["why movie 3", ""]
    assert lines[1]["intent"] == "out_of_scope"
    assert set(lines[0]) >= {"intent", "confidence", "item", "genre", "year_from", "year_to", "k"}

    queries.write_text('{"txt": "oops"}\n')
    assert main(argv) == 2
    assert "needs a string 'text' field" in capsys.readouterr().err
    assert main(["route", "--router", str(tmp_path)]) == 2
    assert "not a trained router" in capsys.readouterr().err


class _AlwaysOutOfScope:
    """A classifier that puts every query out of scope (what the served student did with
    verbless requests), so the router's own reading of requests is what is tested."""

    config = ClassifierConfig(max_length=64)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def predict(self, texts: list[str]) -> torch.Tensor:
        probs = torch.full((len(texts), len(INTENTS)), 0.1)
        probs[:, INTENTS.index(Intent.OUT_OF_SCOPE.value)] = 0.7
        return probs


@pytest.mark.parametrize(
    "text",
    [
        "kids movie for saturday afternoon",
        "horror movies from the 80s",
        "a thriller for tonight",
        "I'm in the mood for a good horror movie tonight",
    ],
)
def test_a_query_that_names_what_it_wants_is_a_request(text: str) -> None:
    router = Router(_AlwaysOutOfScope(), movie_catalog())  # type: ignore[arg-type]
    route = router.route(text)
    assert route.intent is Intent.RECOMMEND and route.notes == (REQUEST_NOTE,)
    assert route.confidence == pytest.approx(0.1)  # the classifier's own, not made up


@pytest.mark.parametrize(
    "text",
    [
        "who directed Toy Story?",
        "is this product vegan?",
        "how long is that movie",
        "play some music",
        "add the movie to my cart",
        "what's the weather like",
        "explain this recommendation",
        "I want two comedies with an explanation for each",
    ],
)
def test_questions_and_other_tasks_stay_out_of_scope(text: str) -> None:
    router = Router(_AlwaysOutOfScope(), movie_catalog())  # type: ignore[arg-type]
    assert router.route(text).intent is Intent.OUT_OF_SCOPE


def test_genres_count_only_with_a_catalogue_that_has_them() -> None:
    assert reads_as_request("moisturizers for dry skin", product_catalog())
    assert not reads_as_request("moisturizers for dry skin", None)
    assert reads_as_request("comedy film for the weekend", None)  # "film" names an item
