"""Two ``recllm serve`` replicas (real processes) on one real Redis: an event written
through one is reflected by the other's next recommendation, and an item added through
one is served by the other, with no sticky sessions and no restart."""

from __future__ import annotations

from pathlib import Path

import httpx
from serve_helpers import Server

KEY = "replica-key"


def post(url: str, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=30.0, **kwargs)  # type: ignore[arg-type]


def test_replicas_on_one_redis_see_each_others_writes(
    bundle: Path, redis_url: str, tmp_path: Path
) -> None:
    env = {"RECLLM_API_KEY": KEY}
    with (
        Server(bundle, redis_url, "--open-users", env=env, log_dir=tmp_path) as one,
        Server(bundle, redis_url, "--open-users", env=env, log_dir=tmp_path) as two,
    ):
        before = post(two.url, "/v1/recommend", {"user_id": "6", "k": 3}).json()
        top = before["items"][0]["item_id"]
        event = post(one.url, "/v1/events", {"user_id": "6", "item_id": top, "rating": 5})
        assert event.status_code == 201
        after = post(two.url, "/v1/recommend", {"user_id": "6", "k": 3}).json()
        assert after["history_length"] == before["history_length"] + 1
        assert top not in [i["item_id"] for i in after["items"]]

        assert httpx.get(f"{two.url}/v1/items/replica-1").status_code == 404
        item = {"item_id": "replica-1", "title": "Item 3 Again", "genres": "Comedy"}
        added = post(one.url, "/v1/items", {"items": [item]}, headers={"X-API-Key": KEY})
        assert added.status_code == 200
        served = httpx.get(f"{two.url}/v1/items/replica-1").json()
        assert served["title"] == "Item 3 Again" and served["added"]
        ranked = post(two.url, "/v1/recommend", {"history": ["1"], "k": 1000}).json()["items"]
        assert "replica-1" in [i["item_id"] for i in ranked]
        # a new user's first event names the new item, through the other replica
        assert (
            post(two.url, "/v1/events", {"user_id": "new-u", "item_id": "replica-1"}).status_code
            == 201
        )
        fresh = post(one.url, "/v1/recommend", {"user_id": "new-u", "k": 2})
        assert fresh.status_code == 200 and fresh.json()["history_length"] == 1
        assert "appendfsync" not in one.log.read_text()  # the test Redis fsyncs: no warning
