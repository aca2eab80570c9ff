"""The service's privacy options, started for real on loopback, and ``recllm bench
privacy`` end to end on a toy run with held-out users: in this process and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from recipes.test_train import run, toy_config
from serve_helpers import Server

from recllm.cli import main
from recllm.cli_serve import users_protected
from recllm.docgen.privacy_tables import privacy
from recllm.recipes.export import export

KEY = "privacy-test-key"


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run, bundle): a toy RecLLM-Adapter trained with a quarter of its users held out."""
    tmp = tmp_path_factory.mktemp("privacy")
    config = toy_config(tmp, "run", epochs=2, loss="ce")
    config.data.split.holdout_users = 0.25
    run(config)
    export(Path(config.output_dir), tmp / "bundle")
    return Path(config.output_dir), tmp / "bundle"


@pytest.fixture(scope="module")
def guarded(toy: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("store") / "events.sqlite"
    args = ("--protect-users", "--rate-limit", "12")  # bursts of 2 requests
    with Server(toy[1], store, *args, env={"RECLLM_API_KEY": KEY}) as server:
        yield server


def test_protected_users_need_the_key_and_clients_are_rate_limited(guarded: Server) -> None:
    def post(body: object, key: str | None = None) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        return httpx.post(f"{guarded.url}/v1/recommend", json=body, headers=headers, timeout=30)

    named = post({"user_id": "1", "k": 3})
    assert named.status_code == 401 and "API key" in named.json()["detail"]
    assert post({"history": ["1", "2"], "k": 3}).status_code == 200  # anyone may send a history
    limited = post({"history": ["1", "2"], "k": 3})  # the address's burst of 2 is spent
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "12 requests a minute" in limited.json()["detail"]
    keyed = post({"user_id": "1", "k": 3}, KEY)  # the key holder has a bucket of his own
    assert keyed.status_code == 200 and len(keyed.json()["items"]) == 3
    assert all(isinstance(item["score"], float) for item in keyed.json()["items"])


def test_a_key_protects_users_by_default_lookups_included(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    """With a key and no flag, users are protected (the default the exclusion figures
    call for); the page's lookups name users as well, so they are protected alike."""
    env = {"RECLLM_API_KEY": KEY}
    with Server(toy[1], tmp_path / "events.sqlite", env=env) as server:
        assert httpx.get(f"{server.url}/readyz", timeout=30).json()["protected_users"] is True
        named = {"user_id": "1", "k": 3}
        assert httpx.post(f"{server.url}/v1/recommend", json=named, timeout=30).status_code == 401
        for path in ("/v1/users/1/history", "/v1/users?prefix=1"):
            assert httpx.get(f"{server.url}{path}", timeout=30).status_code == 401
            keyed = httpx.get(f"{server.url}{path}", headers={"X-API-Key": KEY}, timeout=30)
            assert keyed.status_code == 200, keyed.text
    with Server(toy[1], tmp_path / "open.sqlite", "--open-users", env=env) as server:
        assert httpx.get(f"{server.url}/readyz", timeout=30).json()["protected_users"] is False
        answer = httpx.post(f"{server.url}/v1/recommend", json=named, timeout=30)
        assert answer.status_code == 200, answer.text


def test_without_a_key_users_are_open_to_this_machine_only(
    toy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert users_protected(False, "127.0.0.1", False, False) is False
    assert users_protected(False, "localhost", False, False) is False
    assert users_protected(False, "[::1]", False, False) is False
    assert users_protected(True, "0.0.0.0", False, False) is True
    assert users_protected(True, "127.0.0.1", False, True) is False
    assert users_protected(False, "0.0.0.0", False, True) is False  # said out loud
    assert main(["serve", str(toy[1]), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "without an API key" in err and "--open-users" in err
    assert main(["serve", str(toy[1]), "--host", "my-host.example"]) == 2  # a name may be public
    capsys.readouterr()
    with pytest.raises(SystemExit) as both:
        main(["serve", str(toy[1]), "--protect-users", "--open-users"])
    assert both.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_scores_can_be_hidden_or_coarsened(toy: tuple[Path, Path], tmp_path: Path) -> None:
    body = {"history": ["1", "2", "3"], "k": 5}
    lists = {}
    for name, args in (
        ("open", ()),
        ("hidden", ("--hide-scores",)),
        ("coarse", ("--score-decimals", "1")),
    ):
        with Server(toy[1], tmp_path / f"{name}.sqlite", *args) as server:
            answer = httpx.post(f"{server.url}/v1/recommend", json=body, timeout=30).json()
            lists[name] = answer["items"]
    ranking = [item["item_id"] for item in lists["open"]]
    for name in ("hidden", "coarse"):
        assert [item["item_id"] for item in lists[name]] == ranking  # the same ranking
    assert all(item["score"] is None for item in lists["hidden"])
    assert [item["score"] for item in lists["coarse"]] == [
        round(item["score"], 1) for item in lists["open"]
    ]


def test_protect_users_without_a_key_is_refused_in_one_line(
    toy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(toy[1]), "--protect-users"]) == 2
    assert "--protect-users needs a key" in capsys.readouterr().err


SMALL = ["--pairs", "30", "--attack-k", "10", "--aux-queries", "40", "--shadow-epochs", "2"]


def test_bench_privacy_in_process_writes_every_attack_and_defence(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    argv = ["bench", "privacy", str(toy[0]), *SMALL, "--budget", "20"]
    assert main([*argv, "--results-dir", str(tmp_path), "--label", "toy"]) == 0
    result = json.loads((tmp_path / "privacy" / "toy.json").read_text())
    assert result["benchmark"] == "privacy" and "git_commit" in result
    assert "command" in result and result["label"] == "toy"
    teacher = result["models"]["teacher"]
    policies = teacher["policies"]
    assert {"none", "ranks-only", "rounded-1", "noise-0.1", "top-10", "rate-limit"} <= set(policies)
    for name, row in policies.items():
        figures = row["threshold"]["threshold-rank"]
        assert 0.0 <= figures["auc"] <= 1.0 and figures["members"] == figures["non_members"] > 0
        assert 0.0 <= row["recall@10"] <= 1.0 and 0.0 <= row["ndcg@10"] <= 1.0
        assert row["ranking_unchanged"] == (not name.startswith("noise"))
    assert "threshold-score" in policies["none"]["threshold"]
    assert "threshold-score" not in policies["ranks-only"]["threshold"]
    assert {"shadow-rank", "shadow-calibrated"} <= set(policies["none"]["shadow"])
    asked = 2 * result["protocol"]["pairs_per_side"]
    assert asked > 20 and policies["rate-limit"]["threshold"]["queries"] == asked
    assert policies["rate-limit"]["threshold"]["answered"] == pytest.approx(20 / asked, abs=1e-3)
    exclusion = teacher["exclusion"]
    assert exclusion["none"]["exclusion"]["auc"] == 1.0  # pages cover the catalogue
    assert exclusion["protect-users"]["answered"] == 0.0
    assert result["protocol"]["split"]["holdout_users"] > 0
    tables = privacy(tmp_path)  # the docs tables `recllm report` generates from this file
    auc = policies["ranks-only"]["threshold"]["threshold-rank"]["auc"]
    row = next(line for line in tables["privacy"].splitlines() if "teacher: ranks-only |" in line)
    assert f"| {auc:.3f} |" in row and "privacy/toy.json" in tables["privacy"]
    assert "teacher: protect-users |" in tables["privacy-exclusion"]


def test_bench_privacy_over_http_against_the_served_bundle(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, bundle = toy
    argv = ["bench", "privacy", str(bundle), "--checkpoint", str(run_dir), *SMALL]
    argv += ["--budget", "24", "--rate-limit", "6", "--results-dir", str(tmp_path)]
    assert main(argv) == 0
    (written,) = (tmp_path / "privacy").glob("*-http.json")
    service = json.loads(written.read_text())["service"]
    assert set(service) == {"open", "hide-scores", "protect-users", "rate-limit"}
    assert "threshold-score" in service["open"]["threshold"]
    assert "threshold-score" not in service["hide-scores"]["threshold"]
    assert service["open"]["exclusion"]["exclusion"]["auc"] == 1.0
    assert set(service["open"]["statuses"]) == {"200"}
    protected = service["protect-users"]
    assert protected["exclusion"]["answered"] == 0.0 and protected["statuses"]["401"] > 0
    assert protected["threshold"]["answered"] == 1.0  # history requests stay open
    limited = service["rate-limit"]
    assert limited["statuses"]["429"] > 0
    assert limited["shadow"]["answered_queries"] < limited["shadow"]["queries"]
    assert service["open"]["shadow"]["answered_queries"] == service["open"]["shadow"]["queries"]
    for row in service.values():
        assert all(row[a]["queries"] <= 24 for a in ("threshold", "shadow"))


def test_the_bench_pages_within_the_service_limits() -> None:
    """The exclusion attack pages as the service allows: its page size and its cap on
    ``filters.exclude`` are the service's own (a larger cap answered 422 on Beauty)."""
    from recllm.bench.privacy import SERVED_MAX_EXCLUDE, SERVED_MAX_K
    from recllm.serve.api import MAX_HISTORY, MAX_K

    assert (SERVED_MAX_K, SERVED_MAX_EXCLUDE) == (MAX_K, MAX_HISTORY)
