"""Fuzz the running service from its own OpenAPI schema (schemathesis, loopback only):
valid and invalid bodies for every operation must get an answer below 500."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import Server

from recllm.serve.api import Recommender

KEY = "fuzz-key"
EXAMPLES = 25  # per operation and mode; bounded so the default run stays short


def test_no_input_yields_a_server_error(bundle: Path, tmp_path: Path) -> None:
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    with Server(
        bundle, tmp_path / "fuzz.sqlite", "--open-users", env={"RECLLM_API_KEY": KEY}
    ) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 9
        for operation in operations:
            modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
            strategy = st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes))

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=server.url, headers={"X-API-Key": KEY}, timeout=60)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    errors.append(f"{case.method} {case.formatted_path}: {response.text[:200]}")

            call()
        assert httpx_ok(server)
    total = sum(statuses.values())
    print(f"\nschemathesis: {total} cases, statuses {dict(sorted(statuses.items()))}")
    assert total >= len(operations) * 10
    assert errors == []


def httpx_ok(server: Server) -> bool:
    """The service still answers after the fuzzing."""
    import httpx

    return httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_fuzzed_item_additions_keep_the_api_usable(bundle: Path, tmp_path: Path) -> None:
    """Odd but valid metadata (empty fields, numbers, unicode) is encoded and served."""
    rec = Recommender.load(bundle)
    added = rec.add_items(
        [
            {"item_id": "u-1", "title": "Ünïcødé ✓ 映画", "genres": None, "year": 3000},
            {"item_id": " 42b ", "title": " x ", "year": -5, "extra": True},
        ]
    )
    assert [i.item_id for i in added] == ["u-1", "42b"]
    assert len(rec.recommend(history=["u-1", "42b"], k=5).items) == 5
    with pytest.raises(Exception, match="appears twice"):
        rec.add_items([{"item_id": "d", "title": "a"}, {"item_id": "d", "title": "b"}])
