"""The Python API over a bundle: the same answers as the training run, verified
explanations, routed queries, events and new items, and clear errors for bad requests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import FixedIntent
from serve_helpers import toy_bundle

from recllm.cli import main
from recllm.recipes.inference import load_run, recommend, resolve_items, user_history
from recllm.routing.router import Router
from recllm.routing.schema import Intent
from recllm.serve.api import Filters, InvalidRequestError, NotFoundError, Recommender
from recllm.serve.results import PastItem


@pytest.fixture()
def rec(bundle: Path) -> Recommender:
    return Recommender.load(bundle)


def test_bundle_ranks_as_the_training_run(
    bundle_and_run: tuple[Path, Path], rec: Recommender
) -> None:
    _, run_dir = bundle_and_run
    run = load_run(run_dir, progress=False)
    identity = rec.info["catalogue_identity"]
    assert identity["n_items"] == rec.n_items and len(identity["items_sha256"]) == 16
    for user in ("1", "7", "23"):
        _, history, weights = user_history(run, user)
        expected = recommend(run, history, 5, weights)
        got = rec.recommend(user_id=user, k=5).items
        assert [i.item_id for i in got] == [
            str(run.dataset.items["item_id"].iloc[code]) for code, _ in expected
        ]
        assert np.allclose([i.score for i in got], [s for _, s in expected], atol=1e-4)
    given = ["3", "4", "5"]
    expected = recommend(run, resolve_items(run, given), 5)
    got = rec.recommend(history=given, k=5).items
    assert [i.item_id for i in got] == [
        str(run.dataset.items["item_id"].iloc[code]) for code, _ in expected
    ]


def test_cli_on_a_bundle_prints_the_api_answer(
    bundle: Path, rec: Recommender, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", str(bundle), "--user", "7", "-k", "4"]) == 0
    printed = [line.split()[1] for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [i.item_id for i in rec.recommend(user_id="7", k=4).items]
    item = rec.recommend(user_id="7", k=1).items[0].item_id
    assert main(["explain", str(bundle), "--user", "7", "--item", item]) == 0
    assert capsys.readouterr().out.strip() == rec.explain(item, user_id="7").text


def test_loading_needs_no_dataset_or_training_code(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(bundle, moved)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("serving must not rebuild the training pipeline")

    monkeypatch.setattr("recllm.recipes.train.build_pipeline", forbidden)
    monkeypatch.setattr("recllm.data.registry.load_dataset", forbidden)
    monkeypatch.setenv("RECLLM_DATA_DIR", str(tmp_path / "no-data"))
    assert len(Recommender.load(moved).recommend(user_id="1", k=3).items) == 3


def test_explanations_are_verified_and_cached_until_the_history_changes(
    rec: Recommender,
) -> None:
    item = rec.recommend(user_id="1", k=1).items[0].item_id
    first = rec.explain(item, user_id="1")
    assert first.text and first.source in {"generator", "template"}
    assert first.claims and first.verified == all(c["verified"] for c in first.claims)
    assert first.verified  # the facts template is true by construction
    assert rec.explain(item, user_id="1").cached
    rec.record("1", rec.recommend(user_id="1", k=2).items[1].item_id, rating=4)
    assert not rec.explain(item, user_id="1").cached


def test_recorded_events_change_the_next_recommendation(rec: Recommender) -> None:
    before = rec.recommend(user_id="2", k=3)
    top = before.items[0].item_id
    event = rec.record("2", top, rating=5)
    assert event.seq >= 1 and event.rating == 5
    after = rec.recommend(user_id="2", k=3)
    assert after.history_length == before.history_length + 1
    assert top not in [i.item_id for i in after.items]
    rec.record("newcomer", "4")
    assert rec.recommend(user_id="newcomer", k=2).history_length == 1


def test_ask_routes_to_each_path(rec: Recommender) -> None:
    rec.router = Router(FixedIntent(Intent.RECOMMEND), rec.catalog)  # type: ignore[arg-type]
    answer = rec.ask("recommend 3 films from the 1990s", user_id="1")
    assert answer.intent == "recommend" and len(answer.items) == 3
    assert answer.slots["k"] == 3 and answer.slots["year_from"] == 1990
    assert all(item.meets_constraints for item in answer.items) and not answer.explanations
    rec.router = Router(FixedIntent(Intent.RECOMMEND_AND_EXPLAIN), rec.catalog)  # type: ignore[arg-type]
    answer = rec.ask("2 films and why", user_id="1")
    assert [e.item_id for e in answer.explanations] == [i.item_id for i in answer.items]
    assert all(e.verified for e in answer.explanations)
    rec.router = Router(FixedIntent(Intent.EXPLAIN), rec.catalog)  # type: ignore[arg-type]
    answer = rec.ask("why that one?", user_id="1")
    assert len(answer.explanations) == 1 and not answer.items
    rec.router = Router(FixedIntent(Intent.OUT_OF_SCOPE), rec.catalog)  # type: ignore[arg-type]
    answer = rec.ask("what is the weather", user_id="1")
    assert answer.intent == "out_of_scope" and not answer.items and answer.notes


def test_filters_apply_as_the_router_slots_do(rec: Recommender) -> None:
    fifth = rec.recommend(user_id="1", k=5).items[-1].item_id
    genre = rec.catalog.genres_of[rec._index[fifth]][0]
    got = rec.recommend(user_id="1", k=5, filters=Filters(genres=(genre.upper(),)))
    assert fifth in [i.item_id for i in got.items]
    assert all(genre in rec.catalog.genres_of[rec._index[i.item_id]] for i in got.items)
    top = rec.recommend(user_id="1", k=2).items
    kept = rec.recommend(user_id="1", k=2, filters=Filters(exclude=(top[0].item_id,))).items
    assert top[0].item_id not in [i.item_id for i in kept]


def test_lookups_find_titles_users_and_recent_history(rec: Recommender) -> None:
    found = rec.find_items("movie 12")
    assert (found[0].item_id, found[0].title, found[0].score) == ("12", "Movie 12", 100.0)
    assert found[0].year == 1992 and found[0].genres
    assert rec.find_items("moive 12")[0].item_id == "12"  # a typo
    assert len(rec.find_items("movie", limit=3)) == 3
    assert rec.find_users("1", limit=3) == ["1", "10", "11"]  # shortest ids first
    assert rec.find_users("zz") == []
    assert len(rec.find_users("", limit=50)) == rec.n_users == 40
    rec.record("web-1", "5")  # a user only the event store knows is found by its id
    assert rec.find_users("web-1") == ["web-1"]
    length = rec.recommend(user_id="1").history_length
    recent = rec.history("1", limit=2)
    assert recent.length == length and len(recent.items) == 2
    rec.record("1", "7", rating=4)
    newest = rec.history("1", limit=1)
    assert newest.length == length + 1
    assert newest.items[0] == PastItem("7", "Movie 7", 4.0)
    assert newest.items[0] != recent.items[0]
    assert len(rec.history("1", limit=10_000).items) == length + 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.recommend(user_id="nobody"), NotFoundError, "unknown user 'nobody'"),
        (lambda r: r.recommend(history=["1", "zzz"]), NotFoundError, r"\['zzz'\]"),
        (lambda r: r.recommend(history=[]), InvalidRequestError, "history is empty"),
        (lambda r: r.recommend(), InvalidRequestError, "either user_id or history"),
        (lambda r: r.recommend(user_id="1", history=["1"]), InvalidRequestError, "either"),
        (lambda r: r.recommend(user_id="1", k=0), InvalidRequestError, "k must be"),
        (lambda r: r.recommend(user_id="1", k=1001), InvalidRequestError, "k must be"),
        (
            lambda r: r.recommend(user_id="1", filters=Filters(genres=("Polka",))),
            InvalidRequestError,
            "unknown genre",
        ),
        (
            lambda r: r.recommend(user_id="1", filters=Filters(year_from=2000, year_to=1990)),
            InvalidRequestError,
            "after year_to",
        ),
        (lambda r: r.explain("zzz", user_id="1"), NotFoundError, "unknown item id 'zzz'"),
        (lambda r: r.explain("1", history=["1"]), InvalidRequestError, "already in the history"),
        (
            lambda r: r.record("1", "1", rating=6),
            InvalidRequestError,
            r"rating must be in \(0, 5\]",
        ),
        (lambda r: r.record("1", "1", rating=-1), InvalidRequestError, "rating must be"),
        (lambda r: r.record(" ", "1"), InvalidRequestError, "user_id must be a non-empty"),
        (lambda r: r.add_items([{"item_id": "n"}]), InvalidRequestError, "title"),
        (lambda r: r.add_items([]), InvalidRequestError, "non-empty list"),
        (lambda r: r.find_items("movie", limit=0), InvalidRequestError, "limit must be"),
        (lambda r: r.find_users("1", limit=51), InvalidRequestError, "limit must be"),
        (lambda r: r.history("nobody"), NotFoundError, "unknown user 'nobody'"),
        (lambda r: r.history("1", limit=True), InvalidRequestError, "limit must be"),
    ],
)
def test_bad_requests_name_the_problem(rec: Recommender, call, error, message: str) -> None:
    with pytest.raises(error, match=message):
        call(rec)


def test_added_item_is_recommended_at_once_and_survives_a_restart(tmp_path: Path) -> None:
    """A metadata-only model scores an item by its text alone, so a copy of the item a
    history points to must rank with it: the new item is encoded and served at once."""
    bundle, _ = toy_bundle(tmp_path, extras=False, use_item_ids=False)
    store = tmp_path / "events.sqlite"
    rec = Recommender.load(bundle, store=store)
    history = ["3", "4", "5"]
    best = rec.recommend(history=history, k=1).items[0]
    fields = rec.item(best.item_id).fields
    added = rec.add_items([{**fields, "item_id": "copy-1"}])
    assert added[0].added and added[0].title == best.title
    top = [i.item_id for i in rec.recommend(history=history, k=2).items]
    assert set(top) == {best.item_id, "copy-1"}
    rec.record("u-new", "copy-1", rating=5)
    restarted = Recommender.load(bundle, store=store)
    assert restarted.item("copy-1").added
    assert "copy-1" in [i.item_id for i in restarted.recommend(history=history, k=2).items]
    assert restarted.recommend(user_id="u-new", k=1).history_length == 1


def test_cli_on_a_bundle_refuses_bad_options_in_one_line(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", str(bundle), "recommend 3 films", "--user", "1", "-k", "0"]) == 2
    assert main(["recommend", str(bundle), "--user", "1", "--history", "3"]) == 2
    assert main(["recommend", str(bundle), "--user", "nobody"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("recllm: error: ") for line in err)
    assert "unknown user 'nobody'" in err[2]


def test_results_become_the_json_that_asdict_would_give(rec: Recommender) -> None:
    """The service's converter skips asdict's deep copy; the JSON must not change."""
    import dataclasses
    import json

    from recllm.serve.results import to_json

    top = rec.recommend(user_id="1", k=3)
    results = [
        top,
        rec.explain(top.items[0].item_id, user_id="1"),
        rec.ask("something like Movie 3", user_id="1", k=2),
        rec.history("1", limit=3),
        rec.item(top.items[0].item_id),
    ]
    for result in results:
        assert json.dumps(to_json(result)) == json.dumps(dataclasses.asdict(result))
