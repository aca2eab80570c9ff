"""``recllm serve``: the HTTP service (FastAPI) over one :class:`Recommender`.

Routes are thin: each validates its body (pydantic), calls the Python API and returns its
typed result as JSON. User errors are 4xx with a message naming the problem (404 for
unknown ids, 422 for the rest, 413 for an oversized body, 401/403 for keys); an
unexpected error is a 500 without a traceback, counted in the metrics. The current
recommender sits behind :class:`ServiceState`, so a new bundle is swapped in whole
(``POST /v1/admin/reload`` or SIGHUP) while requests keep being answered.

A service has a role: ``all`` answers everything; ``rank`` answers everything but writes
no explanation itself, forwarding that work to an ``explain`` service
(:mod:`recllm.serve.explain_client`), which serves ``/v1/explain`` and the batch endpoint
the rank service calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, TypeVar

from cachetools import TTLCache
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recllm import __version__
from recllm.errors import RecLLMError
from recllm.serve.api import Filters, NotFoundError, Recommender
from recllm.serve.explain_client import BATCH_PATH, RemoteExplainer
from recllm.serve.page import install_page
from recllm.serve.results import to_json
from recllm.serve.schemas import (
    AskBody,
    EventBody,
    ExplainBatchBody,
    ExplainBody,
    HistoryOut,
    HistoryPage,
    ItemMatches,
    ItemsBody,
    ItemSearch,
    RecommendBody,
    ReloadBody,
    UserMatches,
    UserSearch,
    history_entries,
)
from recllm.serve.store import StoreUnavailableError, open_store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 2_000_000
KEY_ENV = "RECLLM_API_KEY"
T = TypeVar("T")
ROLES = ("all", "rank", "explain")
# fine below 20 ms, the design's budget for the hop
HOP_BUCKETS = (
    *(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05),
    *(0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@dataclass
class ServiceSettings:
    """How the service runs; ``api_key`` None disables the admin endpoints; ``role`` and
    ``explain_url`` as the module docstring says."""

    bundle: str
    store: str
    api_key: str | None = None
    require_key: bool = False
    # requests naming a user_id need the key (a client cannot read another user's list)
    protect_users: bool = False
    rate_limit: int = 0  # requests a minute per client on the /v1 routes (0: no limit)
    # what a ranked list shows beside the ranking: "shown" scores to score_decimals, or
    # "hidden" (null): less for a membership attack to read, the same ranking
    scores: str = "shown"
    score_decimals: int = 4
    explanation_ttl: float = 600.0
    max_body_bytes: int = MAX_BODY_BYTES
    threads: int = 1  # torch / ONNX Runtime threads per worker (requests run in a pool)
    compute_slots: int = 0  # recommend/explain/ask computed at once (0: 2, a rank role 16)
    role: str = "all"
    explain_url: str | None = None
    explain_timeout: float = 2.0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise RecLLMError(f"--role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if (self.role == "rank") != (self.explain_url is not None):
            raise RecLLMError(
                "--role rank needs --explain-url URL (the explain service), and only it takes "
                f"one; got role {self.role!r} with explain_url {self.explain_url!r}"
            )
        if self.explain_url is not None and not self.explain_url.startswith(
            ("http://", "https://")
        ):
            raise RecLLMError(f"--explain-url must be an http(s) URL, got {self.explain_url!r}")
        if self.compute_slots < 0:
            raise RecLLMError(
                f"--compute-slots must be >= 0 (0: the default), got {self.compute_slots}"
            )
        if not 0 < self.explain_timeout <= 600:
            raise RecLLMError(
                f"--explain-timeout must be in (0, 600] seconds, got {self.explain_timeout}"
            )


class ServiceState:
    """The recommender being served, swapped whole on reload."""

    def __init__(self, settings: ServiceSettings, recommender: Recommender | None = None) -> None:
        import torch

        self.settings = settings
        # Requests run in a thread pool; with several intra-op threads each pool thread
        # brings its own OpenMP team and they fight over the cores (measured: a verified
        # explanation took 2-4x longer with 2 threads than with 1 on 2 cores).
        torch.set_num_threads(settings.threads)
        self.store = open_store(settings.store)
        self.explain_via = (
            RemoteExplainer(
                settings.explain_url,
                settings.explain_timeout,
                api_key=settings.api_key,
            )
            if settings.explain_url is not None
            else None
        )
        self.recommender = recommender or self._load(settings.bundle)
        self.loaded_at = time.time()
        self._reloading = threading.Lock()

    def _load(self, bundle: str) -> Recommender:
        return Recommender.load(
            bundle,
            store=self.store,
            explanation_ttl=self.settings.explanation_ttl,
            threads=self.settings.threads,
            explain_via=self.explain_via,
        )

    def reload(self, bundle: str | None = None) -> Recommender:
        """Load ``bundle`` (default: the current one again) and swap it in atomically;
        the old one keeps answering until then, and stays if the new one fails."""
        with self._reloading:
            target = bundle or self.settings.bundle
            fresh = self._load(target)
            self.recommender = fresh  # one reference assignment: requests see old or new
            self.settings.bundle = target
            self.loaded_at = time.time()
            log.info("reloaded bundle %s", target)
            return fresh


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.limit)(scope, receive, send)


class Measure:
    """Count and time every request by route template, method and status (pure ASGI:
    Starlette's ``BaseHTTPMiddleware`` costs about a millisecond a request)."""

    def __init__(self, app: ASGIApp, metrics: _Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        begin = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(path).observe(time.perf_counter() - begin)
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.mirror()


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body is larger than {limit} bytes"}, 413)


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _Metrics:
    """Prometheus metrics of one app (its own registry, so apps do not share counters).

    With several workers (``PROMETHEUS_MULTIPROC_DIR`` set by :func:`serve`), every
    worker writes its values to that folder and ``/metrics`` adds them up across
    workers, whichever worker answers the scrape. So the recommender's own tallies
    (explanation cache, catalogue size, bundle) are mirrored into metrics after each
    request rather than read at scrape time, which would see one worker only.
    """

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recllm_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recllm_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )
        self.cache = Counter(
            "recllm_explanation_cache",
            "Explanation cache lookups",
            ["result"],
            registry=self.registry,
        )
        self.items = Gauge(
            "recllm_catalogue_items",
            "Items served (per worker)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model = Gauge(
            "recllm_model_info",
            "The served bundle (per worker): 1 for the bundle it serves now",
            ["dataset", "kind", "source_commit", "created", "package_version"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self._seen: tuple[int, int, int] = (-1, 0, 0)  # recommender id, hits, misses
        self._model_labels: tuple[str, ...] | None = None
        self._lock = threading.Lock()
        self.hop = Histogram(
            "recllm_explain_hop_seconds",
            "Rank service: round trip of a call to the explain service",
            buckets=HOP_BUCKETS,
            registry=self.registry,
        )
        self.hop_overhead = Histogram(
            "recllm_explain_hop_overhead_seconds",
            "Rank service: round trip minus the explain service's own time (network, "
            "serialisation, queueing)",
            buckets=HOP_BUCKETS,
            registry=self.registry,
        )
        self.hop_failures = Counter(
            "recllm_explain_hop_failures",
            "Rank service: calls to the explain service answered without reasons, by reason",
            ["reason"],
            registry=self.registry,
        )
        if state.explain_via is not None:  # the same client across reloads
            state.explain_via.observe(self.observe_hop, self.count_hop_failure)

    def observe_hop(self, seconds: float, overhead: float) -> None:
        self.hop.observe(seconds)
        self.hop_overhead.observe(overhead)

    def count_hop_failure(self, reason: str) -> None:
        self.hop_failures.labels(reason).inc()

    def mirror(self) -> None:
        """Carry the recommender's tallies into the metrics (cheap: called per request)."""
        rec = self.state.recommender
        with self._lock:
            if self._seen[0] != id(rec):  # a reload: a new recommender counts from zero
                self._seen = (id(rec), 0, 0)
                self._show_model(rec)
            _, hits, misses = self._seen
            self.cache.labels("hit").inc(max(rec.cache_hits - hits, 0))
            self.cache.labels("miss").inc(max(rec.cache_misses - misses, 0))
            self._seen = (id(rec), rec.cache_hits, rec.cache_misses)
            self.items.set(rec.n_items)

    def _show_model(self, rec: Recommender) -> None:
        info = rec.info
        models = info.get("models", {}).get("recommender", {})
        labels = (
            str(info.get("dataset", "")),
            str(models.get("kind", "")),
            str(info.get("source_commit", "")),
            str(info.get("created", "")),
            __version__,
        )
        if self._model_labels is not None and self._model_labels != labels:
            self.model.labels(*self._model_labels).set(0)
        self.model.labels(*labels).set(1)
        self._model_labels = labels

    def exposition(self) -> bytes:
        """The Prometheus text of this app, summed over workers when there are several."""
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def create_app(settings: ServiceSettings, recommender: Recommender | None = None) -> FastAPI:
    """The service over ``settings.bundle`` (or an already loaded ``recommender``)."""
    state = ServiceState(settings, recommender)
    metrics = _Metrics(state)
    metrics.mirror()
    app = FastAPI(
        title="RecLLM-Adapter",
        version=__version__,
        description="Recommendations, verified explanations and routed queries over a bundle.",
    )
    app.state.service = state
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Measure, metrics=metrics)  # outermost: sees 413s too
    _install_handlers(app)
    if settings.role != "explain":  # the page needs the ranking routes
        install_page(app)

    def current() -> Recommender:
        return state.recommender

    # The checks are async (they never block): FastAPI runs a plain def dependency in the
    # thread pool, a hop per check per request that cost more than the check itself.
    async def user_key(request: Request) -> None:
        if settings.require_key:
            _check_key(request, settings.api_key)

    async def admin_key(request: Request) -> None:
        _check_key(request, settings.api_key)

    limiter = RateLimiter(settings.rate_limit) if settings.rate_limit > 0 else None

    async def limited(request: Request) -> None:
        if limiter is not None:
            limiter.check(_client_of(request))

    def lookup(request: Request, user_id: str | None) -> None:
        """A request about a known user: only for key holders when users are protected."""
        if settings.protect_users and user_id is not None:
            _check_key(request, settings.api_key, "requests naming a user_id")

    user = [Depends(limited), Depends(user_key)]
    admin = [Depends(admin_key)]

    ranking = APIRouter()  # every role but explain

    # Recommend, explain, ask and the explain role's batch wait for a compute slot in
    # arrival order, then run in the thread pool. The recommender computes one request at
    # a time, so with a thread per waiting request they raced for its lock and the GIL,
    # and unlucky ones waited several turns: measured at concurrency 16, two slots cut recommend's p99 by about a third.
    # A rank service waits on its explain service, not on compute, so it gets more slots.
    slots = asyncio.Semaphore(settings.compute_slots or (16 if settings.role == "rank" else 2))

    async def computed(work: Callable[..., T], *args: Any) -> T:
        async with slots:
            return await run_in_threadpool(work, *args)

    @ranking.post("/v1/recommend", dependencies=user)
    async def recommend(body: RecommendBody, request: Request) -> dict[str, Any]:
        lookup(request, body.user_id)
        filters = (
            Filters(
                tuple(body.filters.genres),
                body.filters.year_from,
                body.filters.year_to,
                tuple(body.filters.exclude),
            )
            if body.filters
            else None
        )
        history = history_entries(body.history)
        result = await computed(current().recommend, body.user_id, history, body.k, filters)
        return shown_scores(to_json(result), settings)

    @app.post("/v1/explain", dependencies=user)
    async def explain(body: ExplainBody, request: Request) -> dict[str, Any]:
        lookup(request, body.user_id)
        history = history_entries(body.history)
        return to_json(await computed(current().explain, body.item_id, body.user_id, history))

    @ranking.post("/v1/ask", dependencies=user)
    async def ask(body: AskBody, request: Request) -> dict[str, Any]:
        lookup(request, body.user_id)
        history = history_entries(body.history)
        answer = await computed(current().ask, body.text, body.user_id, history, body.k)
        return shown_scores(to_json(answer), settings)

    @ranking.post("/v1/events", dependencies=user, status_code=201)
    def events(body: EventBody, request: Request) -> dict[str, Any]:
        lookup(request, body.user_id)
        return to_json(current().record(body.user_id, body.item_id, body.rating, body.ts))

    @ranking.post("/v1/items", dependencies=admin)
    def add_items(body: ItemsBody) -> dict[str, Any]:
        added = current().add_items(body.items)
        return {"items": [asdict(i) for i in added]}

    @ranking.get("/v1/items/{item_id}", dependencies=user)
    def get_item(item_id: str) -> dict[str, Any]:
        return to_json(current().item(item_id))

    @ranking.get("/v1/items", dependencies=user)
    def find_items(search: Annotated[ItemSearch, Query()]) -> ItemMatches:
        """Catalogue items by title, as typed so far (typos tolerated), best first."""
        found = current().find_items(search.q, search.limit)
        return ItemMatches(query=search.q, items=found)

    @ranking.get("/v1/users", dependencies=user)
    def find_users(search: Annotated[UserSearch, Query()], request: Request) -> UserMatches:
        """Known user ids starting with ``prefix``."""
        lookup(request, search.prefix)  # who the users are is theirs to protect too
        return UserMatches(
            prefix=search.prefix, users=current().find_users(search.prefix, search.limit)
        )

    @ranking.get("/v1/users/{user_id}/history", dependencies=user)
    def user_history(
        user_id: Annotated[str, PathParam(min_length=1, max_length=200)],
        page: Annotated[HistoryPage, Query()],
        request: Request,
    ) -> HistoryOut:
        """A known user's most recent items, newest first."""
        lookup(request, user_id)
        found = current().history(user_id, page.limit)
        return HistoryOut(user_id=found.user_id, length=found.length, items=list(found.items))

    explaining = APIRouter()  # the explain role: what a rank service calls

    @explaining.post(BATCH_PATH, dependencies=user)
    async def explain_batch(body: ExplainBatchBody, request: Request) -> dict[str, Any]:
        lookup(request, body.user_id)
        history = history_entries(body.history) or []

        def explain_timed() -> tuple[list[Any], float]:
            begin = time.perf_counter()  # from the slot on: the wait for it is queueing
            explained = current().explain_many(body.item_ids, body.user_id, history)
            return explained, time.perf_counter() - begin

        explained, seconds = await computed(explain_timed)
        return {
            "explanations": [to_json(e) for e in explained],
            "seconds": seconds,  # lets the caller tell the hop's cost apart
        }

    app.include_router(explaining if settings.role == "explain" else ranking)

    @app.post("/v1/admin/reload", dependencies=admin)
    def reload(body: ReloadBody | None = None) -> dict[str, Any]:
        fresh = state.reload(body.bundle if body else None)
        return {"reloaded": state.settings.bundle, "created": fresh.info.get("created")}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        rec = current()
        return {
            "status": "ready",
            "dataset": rec.info.get("dataset"),
            "items": rec.n_items,
            "users": rec.n_users,
            "rating_max": rec.parts.rating_max,
            "router": rec.router is not None,
            "explainer": rec.explainer is not None,
            "role": settings.role,
            "protected_users": settings.protect_users,
            "loaded_at": state.loaded_at,
        }

    @app.get("/metrics")
    def prometheus() -> Response:
        metrics.mirror()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


def shown_scores(payload: dict[str, Any], settings: ServiceSettings) -> dict[str, Any]:
    """``payload`` with its items' scores as the settings show them: rounded to
    ``score_decimals`` (the recommender rounds to 4), or null when hidden."""
    if settings.scores == "shown" and settings.score_decimals >= 4:
        return payload
    for item in payload.get("items") or ():
        score = item.get("score")
        if score is not None:
            item["score"] = (
                None if settings.scores == "hidden" else round(score, settings.score_decimals)
            )
    return payload


def _check_key(request: Request, expected: str | None, what: str = "admin endpoints") -> None:
    if expected is None:
        raise _Refused(
            403,
            f"{what} are disabled: start the service with RECLLM_API_KEY set or "
            "--api-key-file to enable them",
        )
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        given = given or auth[7:].strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _Refused(401, "a valid API key is required (header X-API-Key or Bearer)")


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def _client_of(request: Request) -> str:
    """Who a rate limit counts: the key a client sends, else its address."""
    given = request.headers.get("x-api-key") or request.headers.get("authorization")
    if given:
        return "key:" + hashlib.sha256(given.encode()).hexdigest()[:16]
    return "addr:" + (request.client.host if request.client else "unknown")


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, bursts of up to ten
    seconds' worth. It bounds how many probes one client can send, which bounds what a
    membership attack learns in a given time (``recllm bench privacy``)."""

    def __init__(self, per_minute: int, clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, per_minute / 6.0)
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(clients, 3600)
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise _Refused(
                    429,
                    f"rate limit: at most {round(self.rate * 60)} requests a minute per client",
                    {"Retry-After": str(max(1, round(wait)))},
                )
            self._buckets[client] = (tokens - 1.0, now)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Refused)
    async def refused(_: Request, exc: _Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, exc.status, headers=exc.headers)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 404)

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.error("%s", exc)
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "1"})

    @app.exception_handler(RecLLMError)
    async def invalid(_: Request, exc: RecLLMError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    @app.exception_handler(RequestValidationError)
    async def unreadable(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()[:10]
        ]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, 422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"detail": "internal error (logged by the service)"}, 500)


def settings_from_env() -> ServiceSettings:
    """Settings passed to worker processes (``recllm serve --workers N``)."""
    import json

    raw = os.environ.get("RECLLM_SERVE_SETTINGS")
    if not raw:
        raise RecLLMError("RECLLM_SERVE_SETTINGS is not set: start workers with `recllm serve`")
    return ServiceSettings(**json.loads(raw))
