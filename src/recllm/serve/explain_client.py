"""The rank service's hop to the explain service (``recllm serve --role rank``).

The rank service resolves the user's history itself (it owns the ranking and reads the
store), then sends the history and the items to explain in one request to the explain
service's ``POST /v1/explain/batch``; the explain service answers with the explanations
and the seconds it spent on them, so the hop's own cost (network, serialisation, queueing)
is the round trip minus that. A hop that fails, is refused or outlasts the timeout raises
:class:`ExplainServiceError`; the caller answers without reasons and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from recllm.serve.results import ExplanationResult

BATCH_PATH = "/v1/explain/batch"
# (round trip seconds, round trip minus the explain service's own seconds)
HopObserver = Callable[[float, float], None]
# (why the hop failed: "timeout", "unreachable", "refused" or "malformed")
FailureObserver = Callable[[str], None]


class ExplainServiceError(Exception):
    """The explain service gave no usable answer; ``reason`` is one word for metrics."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RemoteExplainer:
    """Explanations from the explain service at ``url``, within ``timeout`` seconds; with
    ``api_key``, sent as ``X-API-Key`` (an explain service run with ``--require-key`` and the
    same key). Thread-safe: one pooled HTTP client shared by every request thread."""

    def __init__(
        self,
        url: str,
        timeout: float,
        api_key: str | None = None,
        on_hop: HopObserver | None = None,
        on_failure: FailureObserver | None = None,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        self._on_hop = on_hop
        self._on_failure = on_failure

    def observe(self, on_hop: HopObserver, on_failure: FailureObserver) -> None:
        """Report each hop's timings and each failure's reason (the service's metrics)."""
        self._on_hop, self._on_failure = on_hop, on_failure

    def explain(
        self,
        user_id: str | None,
        history: Sequence[tuple[str, float | None]],
        item_ids: Sequence[str],
    ) -> list[ExplanationResult]:
        """Explanations of ``item_ids`` for this history (oldest first), in that order."""
        try:
            return self._explain(user_id, history, item_ids)
        except ExplainServiceError as exc:
            if self._on_failure is not None:
                self._on_failure(exc.reason)
            raise

    def _explain(
        self,
        user_id: str | None,
        history: Sequence[tuple[str, float | None]],
        item_ids: Sequence[str],
    ) -> list[ExplanationResult]:
        import httpx

        body = {
            "user_id": user_id,
            "history": [{"item_id": item, "rating": rating} for item, rating in history],
            "item_ids": list(item_ids),
        }
        begin = time.perf_counter()
        try:
            response = self._http.post(BATCH_PATH, json=body)
        except httpx.TimeoutException as exc:
            raise ExplainServiceError(
                f"the explain service at {self.url} did not answer in {self.timeout:g} s",
                "timeout",
            ) from exc
        except httpx.HTTPError as exc:
            raise ExplainServiceError(
                f"the explain service at {self.url} is unreachable: {exc}", "unreachable"
            ) from exc
        seconds = time.perf_counter() - begin
        if response.status_code != 200:
            raise ExplainServiceError(
                f"the explain service at {self.url} answered {response.status_code}: "
                f"{response.text[:200]}",
                "refused",
            )
        try:  # a proxy or another service at that URL may answer 200 with anything
            data = response.json()
            explained = [_result(e) for e in data["explanations"]]
            own = float(data["seconds"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ExplainServiceError(
                f"the explain service at {self.url} gave a malformed answer: {exc!r}", "malformed"
            ) from exc
        if len(explained) != len(item_ids):
            raise ExplainServiceError(
                f"the explain service at {self.url} explained {len(explained)} of "
                f"{len(item_ids)} items",
                "malformed",
            )
        if self._on_hop is not None:
            self._on_hop(seconds, max(seconds - own, 0.0))
        return explained

    def close(self) -> None:
        self._http.close()


def _result(data: dict[str, Any]) -> ExplanationResult:
    return ExplanationResult(**{**data, "claims": tuple(data.get("claims", ()))})
