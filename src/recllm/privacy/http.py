"""The attacks' view of the HTTP service: ``POST /v1/recommend`` as any client sends it.

Requests go one at a time (an attacker in no hurry is the strong case) and stop at a
query budget. A refused answer (401/403: no key; 429: over the rate limit) is None, the
same as a request the budget did not allow; any other failure is an error, since the
figures would otherwise hide it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from recllm.errors import RecLLMError
from recllm.privacy.defences import Answer

REFUSED = (401, 403, 429)


class HttpClient:
    """Counts what it sent and what came back; ``budget`` bounds the requests."""

    def __init__(self, url: str, budget: int, api_key: str | None = None) -> None:
        import logging

        import httpx

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one log line per probe is noise
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=60.0)
        self.budget = budget
        self.sent = 0
        self.statuses: Counter[int] = Counter()

    def recommend(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The service's answer, or None when refused or over budget."""
        if self.sent >= self.budget:
            return None
        self.sent += 1
        response = self.http.post("/v1/recommend", json=body)
        self.statuses[response.status_code] += 1
        if response.status_code in REFUSED:
            return None
        if response.status_code != 200:
            raise RecLLMError(
                f"the service answered {response.status_code} to a privacy probe: "
                f"{response.text[:200]}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self.http.close()


class HttpTarget:
    """The service as a :class:`~recllm.privacy.targets.Target` (history requests)."""

    def __init__(self, client: HttpClient, item_ids: Sequence[str]) -> None:
        self.client = client
        self.item_ids = [str(i) for i in item_ids]
        self.codes = {item: code for code, item in enumerate(self.item_ids)}
        self.n_items = len(self.item_ids)

    def answer(self, histories: Sequence[np.ndarray], k: int) -> list[Answer | None]:
        answers: list[Answer | None] = []
        for history in histories:
            body = {"history": [self.item_ids[int(c)] for c in history], "k": k}
            reply = self.client.recommend(body)
            if reply is None:
                answers.append(None)
                continue
            listed = reply["items"]
            items = np.array([self.codes[r["item_id"]] for r in listed], dtype=np.int64)
            shown = [r.get("score") for r in listed]
            scores = None if any(s is None for s in shown) else np.array(shown, dtype=float)
            answers.append(Answer(items, scores))
        return answers

    def list_user(self, user_id: str, k: int, exclude: list[str]) -> list[str] | None:
        """A known user's list (the exclusion attack's lister)."""
        body: dict[str, Any] = {"user_id": user_id, "k": k}
        if exclude:
            body["filters"] = {"exclude": exclude}
        reply = self.client.recommend(body)
        return None if reply is None else [r["item_id"] for r in reply["items"]]
