"""Rank and explain as separate services (real processes on loopback): the rank service
answers as the ``all`` role does while the explain service is healthy, and answers a hot
user's explanations from its own cache without a hop; when the explain service is killed
mid-load or stops answering, no request fails and the answers come without reasons, marked
degraded."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import FixedIntent
from serve_helpers import Server

from recllm.cli import main
from recllm.routing.router import Router
from recllm.routing.schema import Intent
from recllm.serve.api import Recommender
from recllm.serve.explain_client import RemoteExplainer
from recllm.serve.process import free_port

QUERIES = (
    "recommend me 3 films and tell me why",
    "why would I like the top one?",
    "more like Item 3",
)


def post(url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=30.0)


KEY = "split-test-key"


def split_pair(
    bundle: Path, store: Path, *rank_args: str, keyed: bool = False
) -> tuple[Server, Server]:
    """An explain service and a rank service that calls it, sharing ``store``; ``keyed``:
    the explain service requires the API key, which the rank service holds (and sends)."""
    env = {"RECLLM_API_KEY": KEY} if keyed else None
    required = ("--require-key",) if keyed else ()
    opened = ("--open-users",) if keyed else ()  # the key guards the hop here, not users
    explain = Server(bundle, store, "--role", "explain", *required, env=env).start()
    try:
        rank = Server(
            bundle,
            store,
            "--role",
            "rank",
            "--explain-url",
            explain.url,
            *opened,
            *rank_args,
            env=env,
        )
        return explain, rank.start()
    except BaseException:
        explain.stop()
        raise


@pytest.fixture(scope="module")
def services(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    folder = tmp_path_factory.mktemp("split")
    alone = Server(
        bundle, folder / "all.sqlite", "--open-users", env={"RECLLM_API_KEY": KEY}
    ).start()
    explain, rank = split_pair(bundle, folder / "split.sqlite", keyed=True)
    yield {"all": alone, "explain": explain, "rank": rank}
    for server in (rank, explain, alone):
        server.stop()


def test_rank_service_answers_as_the_all_role(services: dict[str, Server]) -> None:
    alone, rank = services["all"].url, services["rank"].url
    calls: list[tuple[str, dict[str, object]]] = [("/v1/recommend", {"user_id": "5", "k": 4})]
    top = post(alone, "/v1/recommend", {"user_id": "5", "k": 4}).json()["items"]
    for item in [top[0]["item_id"], top[1]["item_id"], top[0]["item_id"]]:  # a cache hit too
        calls.append(("/v1/explain", {"user_id": "5", "item_id": item}))
    calls.append(("/v1/explain", {"history": ["3", {"item_id": "4", "rating": 5}], "item_id": "9"}))
    calls += [("/v1/ask", {"user_id": user, "text": q}) for user in ("2", "7") for q in QUERIES]
    for path, body in calls:
        want, got = post(alone, path, body), post(rank, path, body)
        assert (got.status_code, got.json()) == (want.status_code, want.json()), (path, body)
    metrics = httpx.get(f"{rank}/metrics").text
    hops = _sample(metrics, "recllm_explain_hop_seconds_count")
    assert hops >= 3  # the two first explanations of user 5 and the one of a history
    assert _sample(metrics, "recllm_explain_hop_overhead_seconds_count") == hops
    assert httpx.get(f"{rank}/readyz").json()["role"] == "rank"


def test_the_rank_service_caches_hot_users_explanations(services: dict[str, Server]) -> None:
    """A repeated explanation is answered from the rank service's own cache: no hop."""
    rank = services["rank"].url
    top = post(rank, "/v1/recommend", {"user_id": "6"}).json()["items"]
    body = {"user_id": "6", "item_id": top[0]["item_id"]}
    first = post(rank, "/v1/explain", body).json()
    before = httpx.get(f"{rank}/metrics").text
    again = [post(rank, "/v1/explain", body).json() for _ in range(3)]
    after = httpx.get(f"{rank}/metrics").text
    assert not first["cached"] and first["text"] and not first["degraded"]
    assert all(a == {**first, "cached": True} for a in again)
    count = "recllm_explain_hop_seconds_count"
    assert _sample(after, count) == _sample(before, count) > 0
    hit = 'recllm_explanation_cache_total{result="hit"}'
    assert _sample(after, hit) == _sample(before, hit) + 3
    event = {"user_id": "6", "item_id": top[1]["item_id"], "rating": 4.0}
    assert post(rank, "/v1/events", event).status_code == 201
    fresh = post(rank, "/v1/explain", body).json()  # a new history: a new explanation
    assert not fresh["cached"] and not fresh["degraded"]
    assert _sample(httpx.get(f"{rank}/metrics").text, count) == _sample(after, count) + 1


def test_items_added_through_the_rank_service_are_explained(services: dict[str, Server]) -> None:
    """The explain service reads the items a rank service added from the shared store."""
    alone, rank = services["all"].url, services["rank"].url
    item = {"item_id": "split-new", "title": "Item 3 Again", "genres": "Comedy"}
    for url in (alone, rank):
        added = httpx.post(
            f"{url}/v1/items", json={"items": [item]}, headers={"X-API-Key": KEY}, timeout=30
        )
        assert added.status_code == 200
    body = {"user_id": "3", "item_id": "split-new"}
    want, got = post(alone, "/v1/explain", body).json(), post(rank, "/v1/explain", body).json()
    assert not got["degraded"] and got["text"] and got["title"] == "Item 3 Again"
    assert got["item_id"] == want["item_id"] == "split-new" and not want["degraded"]


@pytest.mark.parametrize("intent", [Intent.RECOMMEND_AND_EXPLAIN, Intent.EXPLAIN])
def test_ask_takes_its_reasons_from_the_explain_service(
    services: dict[str, Server], bundle: Path, intent: Intent
) -> None:
    """Each intent that asks for reasons (the toy router seldom predicts them, so the
    intent is fixed): the Python API with the hop explains what the one without does.
    (Texts can differ: a draft that fails verification is replaced by a sample whose
    random state depends on what the explain service explained before.)"""
    local = Recommender.load(bundle)
    hop = RemoteExplainer(services["explain"].url, 30.0, api_key=KEY)
    remote = Recommender.load(bundle, explain_via=hop)
    for rec in (local, remote):
        rec.router = Router(FixedIntent(intent), rec.catalog)  # type: ignore[arg-type]
    want, got = (
        local.ask("3 films and why", user_id="8"),
        remote.ask("3 films and why", user_id="8"),
    )
    assert (got.intent, got.items, got.notes) == (want.intent, want.items, want.notes)
    assert [e.item_id for e in got.explanations] == [e.item_id for e in want.explanations]
    assert got.explanations and all(e.verified and e.text for e in got.explanations)
    assert not got.degraded
    dead = RemoteExplainer(f"http://127.0.0.1:{free_port()}", 30.0)
    remote.explain_via = dead
    hot = remote.ask("3 films and why", user_id="8")  # from the rank side's cache
    assert not hot.degraded and hot.explanations
    assert all(e.cached for e in hot.explanations)
    assert [e.text for e in hot.explanations] == [e.text for e in got.explanations]
    cold = local.ask("3 films and why", user_id="9")
    degraded = remote.ask("3 films and why", user_id="9")
    assert degraded.degraded and not degraded.explanations
    assert degraded.items == cold.items
    assert any(n.startswith("explanations unavailable: ") for n in degraded.notes)


def test_explain_service_serves_explanations_only(services: dict[str, Server]) -> None:
    explain = services["explain"].url

    def keyed(path: str, body: object) -> httpx.Response:
        return httpx.post(f"{explain}{path}", json=body, headers={"X-API-Key": KEY}, timeout=30)

    assert keyed("/v1/recommend", {"user_id": "5"}).status_code == 404
    assert keyed("/v1/explain", {"history": ["3"], "item_id": "9"}).status_code == 200
    batch = keyed("/v1/explain/batch", {"history": ["3"], "item_ids": ["9", "10"]})
    assert batch.status_code == 200 and len(batch.json()["explanations"]) == 2
    assert batch.json()["seconds"] > 0
    assert (
        post(explain, "/v1/explain/batch", {"history": ["3"], "item_ids": ["9"]}).status_code == 401
    )  # the key the rank service sends is required here
    bad = keyed("/v1/explain/batch", {"history": ["3"], "item_ids": ["3"]})
    assert bad.status_code == 422 and "not in the history" in bad.json()["detail"]
    assert keyed("/v1/explain/batch", {"history": ["3"], "item_ids": []}).status_code == 422
    assert (
        post(
            services["rank"].url, "/v1/explain/batch", {"history": ["3"], "item_ids": ["9"]}
        ).status_code
        == 404
    )


def test_explain_batches_wait_for_a_compute_slot(bundle: Path, tmp_path: Path) -> None:
    """With one slot, batches run one after another: the compute times the service
    reports (measured from the slot on) fit inside the wall time of the whole burst.
    Batches raced past the slots before, overlapping on the recommender's lock."""
    explain = Server(bundle, tmp_path / "s.sqlite", "--role", "explain", "--compute-slots", "1")
    explain.start()
    try:
        body = {"history": ["3", "4", "5"], "item_ids": [str(i) for i in range(9, 19)]}
        answers: list[httpx.Response] = []

        def call() -> None:
            answers.append(post(explain.url, "/v1/explain/batch", body))

        threads = [threading.Thread(target=call) for _ in range(8)]
        begin = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - begin
    finally:
        explain.stop()
    assert [a.status_code for a in answers] == [200] * 8
    assert sum(a.json()["seconds"] for a in answers) <= wall


def test_killing_the_explain_service_mid_load_fails_no_request(
    bundle: Path, tmp_path: Path
) -> None:
    explain, rank = split_pair(bundle, tmp_path / "events.sqlite")
    killed = threading.Event()
    done = threading.Event()
    seen: list[tuple[bool, str, int, dict[str, object]]] = []  # (after kill, path, status, json)

    def load(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30.0) as client:
            while not done.is_set():
                user = str(rng.randint(1, 10))
                if rng.random() < 0.5:
                    path, body = (
                        "/v1/explain",
                        {"user_id": user, "item_id": str(rng.randint(20, 30))},
                    )
                else:
                    path, body = "/v1/ask", {"user_id": user, "text": rng.choice(QUERIES)}
                after = killed.is_set()
                response = client.post(f"{rank.url}{path}", json=body)
                seen.append((after, path, response.status_code, response.json()))

    clients = [threading.Thread(target=load, args=(seed,)) for seed in range(3)]
    try:
        for client in clients:
            client.start()
        _wait_for(lambda: len(seen) >= 15)
        explain.stop(signal.SIGKILL)
        killed.set()
        count = len(seen)
        _wait_for(lambda: len(seen) >= count + 30)
    finally:
        done.set()
        for client in clients:
            client.join()
        metrics = httpx.get(f"{rank.url}/metrics").text
        rank.stop()
        explain.stop()
    statuses = {status for _, _, status, _ in seen}
    assert statuses <= {200, 404, 422} and not any(s >= 500 for s in statuses), statuses
    before = [(path, body) for after, path, status, body in seen if not after and status == 200]
    assert any(path == "/v1/explain" and not body["degraded"] for path, body in before)
    after = [(path, body) for gone, path, status, body in seen if gone and status == 200]
    # what the rank service had cached still comes with its reason; the rest degrades
    explains = [b for path, b in after if path == "/v1/explain" and not b["cached"]]
    assert explains and all(
        b["degraded"] and b["text"] == "" and b["source"] == "unavailable" for b in explains
    )
    hot = [b for path, b in after if path == "/v1/explain" and b["cached"]]
    assert all(b["text"] and not b["degraded"] for b in hot)
    degraded_asks = [body for path, body in after if path == "/v1/ask" and body["degraded"]]
    for body in degraded_asks:
        assert body["explanations"] == [] and any(
            "explanations unavailable" in n for n in body["notes"]
        )
    assert _sample(metrics, 'recllm_explain_hop_failures_total{reason="unreachable"}') >= len(
        explains
    )


def test_a_stalled_explain_service_times_out_into_a_degraded_answer(
    bundle: Path, tmp_path: Path
) -> None:
    explain, rank = split_pair(bundle, tmp_path / "events.sqlite", "--explain-timeout", "0.5")
    body = {"user_id": "4", "item_id": "25"}
    try:
        assert not post(rank.url, "/v1/explain", body).json()["degraded"]
        explain.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        begin = time.monotonic()
        stalled = post(rank.url, "/v1/explain", {"user_id": "4", "item_id": "26"})
        waited = time.monotonic() - begin
        assert stalled.status_code == 200 and stalled.json()["degraded"]
        assert 0.4 < waited < 10
        recommend = post(rank.url, "/v1/recommend", {"user_id": "4"})  # ranking is unaffected
        assert recommend.status_code == 200 and recommend.json()["items"]
        explain.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        again = {"user_id": "4", "item_id": "26"}  # not cached: a degraded answer is not kept
        _wait_for(lambda: not post(rank.url, "/v1/explain", again).json()["degraded"])
        metrics = httpx.get(f"{rank.url}/metrics").text
        assert _sample(metrics, 'recllm_explain_hop_failures_total{reason="timeout"}') >= 1
    finally:
        if explain.process is not None:
            explain.process.send_signal(signal.SIGCONT)
        rank.stop()
        explain.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "rank"], "--role rank needs --explain-url"),
        (["--explain-url", "http://127.0.0.1:1"], "only it takes one"),
        (["--role", "rank", "--explain-url", "127.0.0.1:1"], "must be an http(s) URL"),
        (["--role", "rank", "--explain-url", "http://h:1", "--explain-timeout", "0"], "timeout"),
    ],
)
def test_bad_role_options_are_one_line(
    bundle: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(bundle), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def _wait_for(condition: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
