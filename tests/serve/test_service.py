"""``recllm serve`` started for real on loopback and called over HTTP: the same answers as
the Python API, 4xx (never 5xx) for bad requests, keys on admin endpoints, metrics,
durable events across ``kill -9``, and hot reload with no failed request."""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from serve_helpers import Server

from recllm.serve.api import Recommender

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("store") / "events.sqlite"
    with Server(bundle, store, "--open-users", env={"RECLLM_API_KEY": KEY}) as running:
        yield running


def post(server: Server, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=30.0, **kwargs)  # type: ignore[arg-type]


def test_http_answers_match_the_python_api(server: Server, bundle: Path) -> None:
    api = Recommender.load(bundle)
    got = post(server, "/v1/recommend", {"user_id": "5", "k": 4})
    assert got.status_code == 200
    expected = api.recommend(user_id="5", k=4)
    assert [i["item_id"] for i in got.json()["items"]] == [i.item_id for i in expected.items]
    assert [i["title"] for i in got.json()["items"]] == [i.title for i in expected.items]
    history = post(server, "/v1/recommend", {"history": ["3", {"item_id": "4", "rating": 5}]})
    assert [i["item_id"] for i in history.json()["items"]] == [
        i.item_id for i in api.recommend(history=["3", ("4", 5.0)]).items
    ]
    item = expected.items[0].item_id
    why = post(server, "/v1/explain", {"user_id": "5", "item_id": item}).json()
    assert why["text"] == api.explain(item, user_id="5").text
    assert why["verified"] == all(c["verified"] for c in why["claims"])
    answer = post(server, "/v1/ask", {"text": "something like Item 3", "user_id": "5"})
    assert answer.status_code == 200
    assert {"intent", "confidence", "slots", "items", "explanations", "notes"} <= set(answer.json())
    assert httpx.get(f"{server.url}/v1/items/{item}").json()["item_id"] == item


def test_lookup_routes_and_the_page(server: Server) -> None:
    get = partial(httpx.get, timeout=30.0)
    items = get(f"{server.url}/v1/items", params={"q": "moive 12", "limit": 3}).json()
    assert items["query"] == "moive 12" and items["items"][0]["item_id"] == "12"
    assert set(items["items"][0]) == {"item_id", "title", "score", "year", "genres"}
    users = get(f"{server.url}/v1/users", params={"prefix": "2", "limit": 2}).json()
    assert users == {"prefix": "2", "users": ["2", "20"]}
    history = get(f"{server.url}/v1/users/3/history", params={"limit": 2}).json()
    assert history["user_id"] == "3" and len(history["items"]) == 2 and history["length"] > 2
    ready = get(f"{server.url}/readyz").json()
    assert ready["users"] == 40 and ready["rating_max"] == 5.0
    page = get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # every asset is served by the app itself: nothing to fetch from the internet
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "static/app.js" in assets and "static/app.css" in assets
    assert not [a for a in assets if re.match(r"(https?:)?//", a)]
    for asset in assets:
        if asset.startswith("static/"):
            assert get(f"{server.url}/{asset}").status_code == 200
    assert "/" not in get(f"{server.url}/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("path", "status", "names"),
    [
        ("/v1/items?q=", 422, "q"),
        ("/v1/items?q=movie&limit=0", 422, "limit"),
        ("/v1/items?q=movie&limit=51", 422, "limit"),
        ("/v1/items?q=movie&colour=red", 422, "colour"),
        ("/v1/items", 422, "q"),
        ("/v1/users?limit=999", 422, "limit"),
        ("/v1/users/nobody/history", 404, "'nobody'"),
        ("/v1/users/1/history?limit=0", 422, "limit"),
        ("/v1/users/1/history?limit=x", 422, "limit"),
    ],
)
def test_lookups_refuse_bad_input_by_name(
    server: Server, path: str, status: int, names: str
) -> None:
    got = httpx.get(f"{server.url}{path}", timeout=30.0)
    assert got.status_code == status
    assert names in got.json()["detail"]


def test_events_are_reflected_by_the_next_recommendation(server: Server) -> None:
    before = post(server, "/v1/recommend", {"user_id": "9", "k": 3}).json()
    top = before["items"][0]["item_id"]
    event = post(server, "/v1/events", {"user_id": "9", "item_id": top, "rating": 4})
    assert event.status_code == 201 and event.json()["seq"] >= 1
    after = post(server, "/v1/recommend", {"user_id": "9", "k": 3}).json()
    assert after["history_length"] == before["history_length"] + 1
    assert top not in [i["item_id"] for i in after["items"]]


@pytest.mark.parametrize(
    ("path", "body", "status", "names"),
    [
        ("/v1/recommend", {"user_id": "nobody"}, 404, "'nobody'"),
        ("/v1/recommend", {"history": ["zzz"]}, 404, "zzz"),
        ("/v1/recommend", {"history": []}, 422, "history"),
        ("/v1/recommend", {"user_id": "1", "k": 0}, 422, "k"),
        ("/v1/recommend", {"user_id": "1", "k": 5000}, 422, "k"),
        ("/v1/recommend", {"user_id": "1", "colour": "red"}, 422, "colour"),
        ("/v1/recommend", {}, 422, "user_id or history"),
        ("/v1/explain", {"user_id": "1"}, 422, "item_id"),
        ("/v1/explain", {"user_id": "1", "item_id": "zzz"}, 404, "zzz"),
        ("/v1/ask", {"user_id": "1", "text": ""}, 422, "text"),
        ("/v1/ask", {"user_id": "1", "text": "x" * 1001}, 422, "text"),
        ("/v1/events", {"user_id": "1", "item_id": "1", "rating": -2}, 422, "rating"),
        ("/v1/events", {"user_id": "1", "item_id": "zzz"}, 404, "zzz"),
    ],
)
def test_bad_requests_are_4xx_naming_the_problem(
    server: Server, path: str, body: dict[str, object], status: int, names: str
) -> None:
    response = post(server, path, body)
    assert response.status_code == status
    assert names in response.json()["detail"]


def test_malformed_and_oversized_bodies(server: Server) -> None:
    bad = httpx.post(
        f"{server.url}/v1/recommend",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 422
    huge = post(server, "/v1/recommend", {"history": ["1"] * 500_000})
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
    assert httpx.get(f"{server.url}/v1/items/zzz").status_code == 404


def test_admin_endpoints_need_the_key(server: Server) -> None:
    item = {"item_id": "fresh-1", "title": "Item 3 Returns", "genres": "Comedy"}
    assert post(server, "/v1/items", {"items": [item]}).status_code == 401
    wrong = post(server, "/v1/items", {"items": [item]}, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    ok = post(server, "/v1/items", {"items": [item]}, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.json()["items"][0]["added"]
    assert httpx.get(f"{server.url}/v1/items/fresh-1").json()["title"] == "Item 3 Returns"
    ranked = post(server, "/v1/recommend", {"history": ["1"], "k": 1000}).json()["items"]
    assert "fresh-1" in [i["item_id"] for i in ranked]


def test_without_a_key_admin_is_disabled_and_require_key_covers_everything(
    bundle: Path, tmp_path: Path
) -> None:
    item = {"items": [{"item_id": "n", "title": "N"}]}
    with Server(bundle, tmp_path / "a.sqlite", env={"RECLLM_API_KEY": ""}) as open_server:
        refused = post(open_server, "/v1/items", item)
        assert refused.status_code == 403 and "disabled" in refused.json()["detail"]
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with Server(
        bundle, tmp_path / "b.sqlite", "--api-key-file", str(key_file), "--require-key"
    ) as closed:
        assert post(closed, "/v1/recommend", {"user_id": "1"}).status_code == 401
        keyed = post(closed, "/v1/recommend", {"user_id": "1"}, headers={"X-API-Key": KEY})
        assert keyed.status_code == 200
        assert httpx.get(f"{closed.url}/healthz").status_code == 200


def test_metrics_and_docs(server: Server) -> None:
    post(server, "/v1/recommend", {"user_id": "1"})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'recllm_requests_total{method="POST",route="/v1/recommend",status="200"}' in text
    assert 'recllm_request_seconds_bucket{le="0.05",route="/v1/recommend"}' in text
    assert "recllm_model_info{" in text and 'kind="teacher"' in text
    assert 'recllm_explanation_cache_total{result="hit"} 0.0' in text
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/recommend", "/v1/explain", "/v1/ask", "/v1/events", "/v1/items"} <= set(
        spec["paths"]
    )


def test_no_acknowledged_event_is_lost_on_kill_9(bundle: Path, tmp_path: Path) -> None:
    store = tmp_path / "events.sqlite"
    server = Server(bundle, store).start()
    try:
        base = post(server, "/v1/recommend", {"user_id": "3"}).json()["history_length"]
        for i in range(40):
            item = str(1 + i % 20)
            assert post(server, "/v1/events", {"user_id": "3", "item_id": item}).status_code == 201
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    with Server(bundle, store) as restarted:
        after = post(restarted, "/v1/recommend", {"user_id": "3"}).json()["history_length"]
    assert after == base + 40


def test_hot_reload_under_load_fails_no_request(bundle: Path, tmp_path: Path) -> None:
    failures: list[str] = []
    done = threading.Event()
    counts = [0]

    def load(url: str) -> None:
        with httpx.Client(timeout=30.0) as client:
            while not done.is_set():
                response = client.post(f"{url}/v1/recommend", json={"user_id": "1", "k": 5})
                counts[0] += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")

    with Server(
        bundle, tmp_path / "r.sqlite", "--open-users", env={"RECLLM_API_KEY": KEY}
    ) as server:
        workers = [threading.Thread(target=load, args=(server.url,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        try:
            for _ in range(2):
                reloaded = post(server, "/v1/admin/reload", {}, headers={"X-API-Key": KEY})
                assert reloaded.status_code == 200
            assert server.process is not None
            server.process.send_signal(signal.SIGHUP)
            bad = post(
                server, "/v1/admin/reload", {"bundle": str(tmp_path)}, headers={"X-API-Key": KEY}
            )
            assert bad.status_code == 422 and "not a RecLLM bundle" in bad.json()["detail"]
        finally:
            done.set()
            for worker in workers:
                worker.join()
        assert post(server, "/v1/recommend", {"user_id": "1"}).status_code == 200
        server.stop(signal.SIGTERM)
        log = server.log.read_text()
    assert counts[0] > 10 and failures == []
    assert "reloaded bundle" in log or "Reloaded" in log
    assert "Waiting for application shutdown" in log and "Finished server process" in log


def test_workers_share_events_and_added_items(bundle: Path, tmp_path: Path) -> None:
    """Two worker processes on one SQLite store: whichever answers sees every write."""
    with Server(
        bundle, tmp_path / "w.sqlite", "--workers", "2", "--open-users", env={"RECLLM_API_KEY": KEY}
    ) as server:
        added = post(
            server,
            "/v1/items",
            {"items": [{"item_id": "shared-1", "title": "Shared"}]},
            headers={"X-API-Key": KEY},
        )
        assert added.status_code == 200
        base = post(server, "/v1/recommend", {"user_id": "4"}).json()["history_length"]
        assert (
            post(server, "/v1/events", {"user_id": "4", "item_id": "shared-1"}).status_code == 201
        )
        for _ in range(12):  # a new connection each time, so both workers answer
            assert httpx.get(f"{server.url}/v1/items/shared-1").status_code == 200
            again = post(server, "/v1/recommend", {"user_id": "4"})
            assert again.json()["history_length"] == base + 1
        # /metrics sums both workers, whichever of them answers the scrape
        counted = 'recllm_requests_total{method="POST",route="/v1/recommend",status="200"} 13.0'
        for _ in range(6):
            assert counted in httpx.get(f"{server.url}/metrics").text
