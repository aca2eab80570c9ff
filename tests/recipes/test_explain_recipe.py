"""train-explainer on a toy RecLLM-Adapter run: the explainer trains, loads, explains a
(user, item) from the command line, refuses bad requests, and is scored by bench explain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recipes.test_train import run, toy_config

from recllm.cli import main
from recllm.errors import RecLLMError
from recllm.explain.generator import GeneratorConfig
from recllm.recipes.explain import Explainer, ExplainerTrainConfig, pair_for, train_explainer


@pytest.fixture(scope="module")
def explainer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("explain")
    config = toy_config(tmp_path, "rec", epochs=1)
    run(config)
    out = tmp_path / "explainer"
    manifest = train_explainer(
        ExplainerTrainConfig(
            run_dir=config.output_dir,
            output_dir=str(out),
            per_user=2,
            phrasings=2,
            epochs=2,
            generator=GeneratorConfig(d_model=32, n_heads=2, max_target=24),
            progress=False,
        )
    )
    assert manifest["training_sentences"] == 2 * manifest["training_pairs"]
    assert manifest["history"][-1]["loss_gen"] < manifest["history"][0]["loss_gen"]
    return out


def new_item(explainer: Explainer, user: str) -> str:
    """A raw item id the user has not consumed."""
    from recllm.recipes.inference import user_history

    _, history, _ = user_history(explainer.run, user)
    items = explainer.run.dataset.items["item_id"].astype(str)
    return next(items.iloc[i] for i in range(len(items)) if i not in set(history.tolist()))


def test_explainer_uses_the_recommenders_signals_and_explains(explainer_dir: Path) -> None:
    explainer = Explainer.load(explainer_dir)
    config = explainer.generator.config
    assert config.user_dim == 16 and config.item_dim > 0  # adapter user vector, item metadata
    pair = pair_for(explainer, "1", new_item(explainer, "1"))
    _, signals = explainer.facts([pair])
    assert signals.attribution[0] is not None and len(signals.attribution[0]) == len(pair.history)
    for method in ("greedy", "beam", "sample"):
        (text,) = explainer.explain([pair], method=method)
        assert isinstance(text, str) and "[H" not in text and "<unk>" not in text
    (verified,) = explainer.explain([pair], verify=True)
    assert explainer.checker.check(verified, pair.history, pair.item, pair.ratings).faithful


@pytest.mark.parametrize(("candidates", "fused"), [(1, True), (4, False), (4, True)])
def test_verify_keeps_the_first_verified_candidate_in_attempt_order(
    explainer_dir: Path, monkeypatch: pytest.MonkeyPatch, candidates: int, fused: bool
) -> None:
    """Greedy first, then samples attempt-major; each row keeps its earliest verified
    sentence, rows with none get the template. A small batch decodes greedy drafts and
    samples in one pass (``fused``); a large one re-drafts only the failed rows."""
    from recllm.explain import explainer as module

    if not fused:
        monkeypatch.setattr(module, "FUSED_ROWS", 0)
    explainer = Explainer.load(explainer_dir)
    pairs = [pair_for(explainer, "1", new_item(explainer, "1"))] * 3
    passes: list[tuple[str, int]] = []
    greedy_rows: list[int] = []
    real_generate = explainer.generator.generate

    def generate(cond, method="greedy", **kw):  # type: ignore[no-untyped-def]
        ids = real_generate(cond, method, **kw)
        passes.append((method, len(ids)))
        greedy_rows.append(len(ids) if method == "greedy" else kw.get("greedy_rows", 0))
        return ids

    def texts(ids, facts, rows):  # type: ignore[no-untyped-def]
        first = greedy_rows[-1]
        return [f"g{j}" if j < first else f"s{j - first}" for j in range(len(rows))]

    monkeypatch.setattr(explainer.generator, "generate", generate)
    monkeypatch.setattr(explainer, "_texts", texts)
    # greedy verifies row 1 only. Two passes sample the failed rows 0 and 2 attempt-major
    # (s0 row 0, s1 row 2, s2 row 0, s3 row 2, ...); one pass samples every row (s0 row 0,
    # s1 row 1, s2 row 2, s3 row 0, ...).
    monkeypatch.setattr(explainer, "_verified", lambda text, pair: text in {"g1", "s2", "s3", "s4"})
    out = explainer.explain(pairs, verify=True, candidates=candidates)
    if candidates == 1:
        assert passes == [("greedy", 3)] and explainer.fallbacks == 2
        assert out[1] == "g1" and out[0] == out[2] != "g0"  # the template sentence
    elif fused:
        assert passes == [("sample", 12)] and greedy_rows == [3] and explainer.fallbacks == 0
        assert out == ["s3", "g1", "s2"]
    else:
        assert passes == [("greedy", 3), ("sample", 6)] and explainer.fallbacks == 0
        assert out == ["s2", "g1", "s3"]


def test_checked_explanations_are_written_in_one_batch_and_say_their_source(
    explainer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three pairs cost one decoding pass (greedy drafts and their samples together); the
    row nothing verified gets the template and says so, and each verdict is the checker's."""
    explainer = Explainer.load(explainer_dir)
    pairs = [pair_for(explainer, "1", new_item(explainer, "1"))] * 3
    methods: list[str] = []
    real_generate = explainer.generator.generate

    def generate(cond, method="greedy", **kw):  # type: ignore[no-untyped-def]
        methods.append(method)
        return real_generate(cond, method, **kw)

    drafts = iter(["g0", "g1", "g2", *(f"s{j}" for j in range(9))])
    monkeypatch.setattr(explainer.generator, "generate", generate)
    monkeypatch.setattr(explainer, "_texts", lambda ids, facts, rows: [next(drafts) for _ in rows])
    monkeypatch.setattr(explainer, "_verified", lambda text, pair: text in {"g1", "s0"})
    checked = explainer.explain_checked(pairs)
    assert methods == ["sample"]
    assert [e.source for e in checked] == ["generator", "generator", "template"]
    assert [e.text for e in checked[:2]] == ["s0", "g1"]
    template = checked[2]
    assert (
        template.verified
        == explainer.checker.check(
            template.text, pairs[2].history, pairs[2].item, pairs[2].ratings
        ).faithful
    )


def test_bad_requests(explainer_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    explainer = Explainer.load(explainer_dir)
    owned = str(
        explainer.run.dataset.items["item_id"].iloc[int(explainer.run.split.train["item"].iloc[0])]
    )
    user = str(explainer.run.dataset.user_ids[int(explainer.run.split.train["user"].iloc[0])])
    with pytest.raises(RecLLMError, match="already has item"):
        pair_for(explainer, user, owned)
    assert main(["explain", str(explainer_dir), "--user", "nobody", "--item", "1"]) == 2
    assert "unknown user" in capsys.readouterr().err
    assert main(["explain", str(explainer_dir), "--user", "1", "--item", "99999"]) == 2
    assert "unknown item id" in capsys.readouterr().err
    assert (
        main(["explain", str(explainer_dir), "--user", "1", "--item", new_item(explainer, "1")])
        == 0
    )
    assert capsys.readouterr().out.strip()
    assert main(["explain", str(explainer_dir.parent), "--user", "1", "--item", "1"]) == 2
    assert "not a trained explainer" in capsys.readouterr().err


def test_bench_explain_scores_the_explainer(explainer_dir: Path, tmp_path: Path) -> None:
    argv = ["bench", "explain", "--explainer", str(explainer_dir), "--latency-pairs", "3"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "explain" / "ml-toy.json").read_text())
    assert set(record["systems"]) == {"reference", "template", "retrieval", "ours", "ours_verified"}
    assert record["systems"]["ours_verified"]["faithfulness"] == 1.0  # checked or template
    latency = record["latency_one_thread_batch_1"]
    assert set(latency) == {"end_to_end", "cache_hit", "generation_only"}
    assert record["systems"]["reference"]["faithfulness"] == 1.0
    assert 0.0 <= record["systems"]["ours"]["faithfulness"] <= 1.0
    assert record["latency_one_thread_batch_1"]["end_to_end"]["timed"] == 3


def test_the_hot_user_cache_is_bounded_and_serves_repeats(explainer_dir: Path) -> None:
    explainer = Explainer.load(explainer_dir)
    explainer.cache_size = 2
    pairs = [pair_for(explainer, user, new_item(explainer, user)) for user in ("1", "2", "3")]
    first = explainer.explain_cached(pairs[0])
    explainer.generator = None  # type: ignore[assignment]  # a hit must not need the model
    assert explainer.explain_cached(pairs[0]) == first
    explainer.generator = Explainer.load(explainer_dir).generator
    for pair in pairs[1:]:
        explainer.explain_cached(pair)
    assert len(explainer.cache) == 2 and (pairs[0].user, pairs[0].item) not in {
        k[:2] for k in explainer.cache
    }


def test_router_explain_path_uses_the_verified_generator(explainer_dir: Path) -> None:
    from recipes.test_ask import FixedIntent

    from recllm.recipes.ask import Assistant
    from recllm.recipes.explain import GeneratedExplanations
    from recllm.recipes.inference import user_history
    from recllm.routing.router import Router
    from recllm.routing.schema import Intent

    explainer = Explainer.load(explainer_dir)
    generated = GeneratedExplanations(explainer)
    router = Router(FixedIntent(Intent.RECOMMEND_AND_EXPLAIN))  # type: ignore[arg-type]
    answer = Assistant(explainer.run, router, explainer=generated).ask("3 films and why", user="1")
    assert len(answer.explanations) == len(answer.items) == 3
    _, history, _ = user_history(explainer.run, "1")
    for ranked, explanation in zip(answer.items, answer.explanations, strict=True):
        assert explanation.generator == GeneratedExplanations.label
        pair = pair_for(explainer, "1", ranked.item_id)
        assert explainer.checker.check(
            explanation.text, history, ranked.item, pair.ratings
        ).faithful
    assert len(explainer.cache) == 3  # answered through the hot-user cache


def test_review_explainer_end_to_end(tmp_path: Path) -> None:
    """On review data the explainer learns the users' review sentences (targets=auto),
    reloads as a review explainer, verifies features, and bench explain scores it."""
    from helpers import write_toy_reviews

    config = toy_config(tmp_path, "rec", epochs=1)
    config.data.dataset = str(write_toy_reviews(tmp_path / "mi"))
    run(config)
    out = tmp_path / "review-explainer"
    manifest = train_explainer(
        ExplainerTrainConfig(
            run_dir=config.output_dir,
            output_dir=str(out),
            epochs=3,
            generator=GeneratorConfig(d_model=32, n_heads=2, max_target=24),
            progress=False,
        )
    )
    assert manifest["targets"] == "reviews"
    assert manifest["history"][-1]["loss_gen"] < manifest["history"][0]["loss_gen"]
    explainer = Explainer.load(out)
    assert explainer.corpus is not None and explainer.checker is explainer.corpus
    pair = pair_for(explainer, "U1", new_item(explainer, "U1"))
    (verified,) = explainer.explain([pair], verify=True)
    assert explainer.checker.check(verified, pair.history, pair.item).faithful
    argv = ["bench", "explain", "--explainer", str(out), "--latency-pairs", "2"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "explain" / "mi.json").read_text())
    assert record["systems"]["ours_verified"]["faithfulness"] == 1.0
    assert 0.0 <= record["systems"]["ours"]["fmr"] <= 1.0
    assert record["held_out_pairs"] + record["held_out_left_out"] == 2 * 30


def test_review_targets_need_review_text(tmp_path: Path) -> None:
    from recllm.errors import ConfigError

    config = toy_config(tmp_path, "rec", epochs=1)
    run(config)
    with pytest.raises(ConfigError, match="no review text"):
        train_explainer(
            ExplainerTrainConfig(run_dir=config.output_dir, targets="reviews", progress=False)
        )
    with pytest.raises(ConfigError, match="targets must be one of"):
        ExplainerTrainConfig(targets="tweets")
