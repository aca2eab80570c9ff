"""``recllm bench serve --bundle BUNDLE``: the running service driven over loopback.

The service is started as its own process (``recllm serve``) with a fresh event store. For
each endpoint (recommend, explain, ask) and each concurrency level, a bounded load
generator sends a fixed number of requests (and stops early at ``--max-seconds``), each
client waiting for its answer before sending the next. Per endpoint and level it records
p50 / p95 / p99 latency, throughput and the count of non-200 answers; then the server's
peak RSS. The same requests are timed in-process through the Python API, so the HTTP
overhead is visible beside them. The load generator shares the machine with the server:
on a 2-core machine the figures include that contention.

With ``--split`` the service runs as a rank service calling an explain service
(``--role rank`` / ``--role explain``, both on loopback), so the endpoints' figures include
the hop; the hop itself is then timed alone: one client sends explain-service calls one at
a time through the rank service's own client (:class:`RemoteExplainer`), and records the
round trip and the round trip minus the explain service's own time (network,
serialisation, queueing: the design's budget is 20 ms).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any

import numpy as np

from recllm.errors import RecLLMError

RESULTS_FILE = "serve/{name}.json"
ENDPOINTS = ("recommend", "explain", "ask")
QUERIES = (
    "recommend me something",
    "what should I watch next",
    "anything like my last one?",
    "3 picks from the 90s and tell me why",
    "why would I like the top one?",
    "something fun for tonight",
)


def percentiles(times_ms: list[float]) -> dict[str, float]:
    if not times_ms:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    return {f"p{q}_ms": round(float(np.percentile(times_ms, q)), 2) for q in (50, 95, 99)}


def requests_for(rec: Any, endpoint: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` request bodies: known users drawn at random; explain asks about one of the
    user's top 10, ask sends a query from a fixed list."""
    rng = random.Random(seed)
    users = sorted(rec._seed)[:5000]
    if not users:
        raise RecLLMError("the bundle has no users' histories: export it without --no-histories")
    bodies = []
    for _ in range(n):
        user = rng.choice(users)
        if endpoint == "recommend":
            bodies.append({"user_id": user, "k": 10})
        elif endpoint == "explain":
            top = rng.choice(rec.recommend(user_id=user, k=10).items).item_id
            bodies.append({"user_id": user, "item_id": top})
        else:
            bodies.append({"user_id": user, "text": rng.choice(QUERIES)})
    return bodies


def drive(
    url: str, endpoint: str, bodies: list[dict[str, Any]], clients: int, max_s: float
) -> tuple[list[float], list[int], float, int]:
    """Send ``bodies`` from ``clients`` concurrent clients, each waiting for its answer
    before sending the next; stop early after ``max_s``. Latencies (ms), non-200
    statuses, wall seconds, and how many answers came degraded (a rank service whose
    explain service failed).

    The clients are asyncio tasks over aiohttp's keep-alive connections: the load generator
    shares the machine's cores with the server it measures, and aiohttp spends a fraction
    of the CPU per request that httpx does, so less of its cost lands in the figures.
    """
    import asyncio

    import aiohttp

    async def main() -> tuple[list[float], list[int], float, int]:
        queue = list(reversed(bodies))
        times: list[float] = []
        failures: list[int] = []
        degraded: list[bool] = []
        deadline = time.monotonic() + max_s
        connector = aiohttp.TCPConnector(limit=clients)
        timeout = aiohttp.ClientTimeout(total=60.0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def client() -> None:
                while queue and time.monotonic() < deadline:
                    body = queue.pop()
                    begin = time.perf_counter()
                    async with http.post(f"{url}/v1/{endpoint}", json=body) as response:
                        payload = await response.read()
                    times.append((time.perf_counter() - begin) * 1000)
                    if response.status != 200:
                        failures.append(response.status)
                    elif endpoint != "recommend":
                        degraded.append(bool(json.loads(payload).get("degraded")))

            begin = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            return times, failures, time.perf_counter() - begin, sum(degraded)

    return asyncio.run(main())


def cache_counts(url: str) -> dict[str, int]:
    """The service's explanation cache hits and misses so far (from /metrics)."""
    from urllib.request import urlopen

    counts = {"hit": 0, "miss": 0}
    with urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    for line in text.splitlines():
        for result in counts:
            if line.startswith(f'recllm_explanation_cache_total{{result="{result}"}}'):
                counts[result] = int(float(line.split()[-1]))
    return counts


def hop_counts(url: str) -> dict[str, int]:
    """A rank service's calls to its explain service so far, and its failures by reason."""
    import httpx

    counts: dict[str, int] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("recllm_explain_hop_seconds_count "):
            counts["calls"] = int(float(line.split()[-1]))
        elif line.startswith("recllm_explain_hop_failures_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            counts[f"failed_{reason}"] = int(float(line.split()[-1]))
    return counts


def time_hop(url: str, calls: list[tuple[str, list[Any], str]]) -> dict[str, Any]:
    """The hop alone: ``calls`` (user, history, item) sent one at a time to the explain
    service at ``url`` through the rank service's client; percentiles of the round trip
    and of its overhead (the round trip minus the explain service's own time)."""
    from recllm.serve.explain_client import RemoteExplainer

    trips: list[float] = []
    overheads: list[float] = []

    def observe(seconds: float, overhead: float) -> None:
        trips.append(seconds * 1000)
        overheads.append(overhead * 1000)

    hop = RemoteExplainer(url, 60.0, on_hop=observe)
    try:
        for user, history, item in calls:
            hop.explain(user, history, [item])
    finally:
        hop.close()
    return {
        "round_trip": percentiles(trips),
        "overhead": percentiles(overheads),
        "requests": len(trips),
    }


def in_process(call: Callable[[dict[str, Any]], object], bodies: list[dict[str, Any]]) -> dict:
    times = []
    for body in bodies:
        begin = time.perf_counter()
        call(body)
        times.append((time.perf_counter() - begin) * 1000)
    return {**percentiles(times), "requests": len(times)}


def _python_api(
    bundle: Path, tmp: Path, args: argparse.Namespace
) -> tuple[
    dict[str, Any], dict[str, list[dict[str, Any]]], dict[str, Any], list[tuple[str, list, str]]
]:
    """The bundle's manifest, the request bodies per endpoint, their in-process latency, and
    (with ``--split``) the explain-service calls that time the hop alone."""
    import torch

    from recllm.serve.api import Recommender

    # one compute thread, as each server worker has (--threads 1): with the default of
    # one per core, small ops paid for thread hand-offs the server does not pay
    torch.set_num_threads(1)
    rec = Recommender.load(bundle, store=tmp / "api.sqlite", threads=1)
    endpoints = [e for e in args.endpoints if e != "ask" or rec.router is not None]
    n = args.requests * len(args.concurrency)  # each level gets its own share
    bodies = {e: requests_for(rec, e, n, seed=i) for i, e in enumerate(endpoints)}
    hop_calls = []
    if args.split:
        drawn = requests_for(rec, "explain", args.requests, seed=len(endpoints))
        hop_calls = [(b["user_id"], rec.history_of(b["user_id"]), b["item_id"]) for b in drawn]
    rec._explanations.clear()  # the explain bodies were made by recommending, not explaining
    calls: dict[str, Callable[[dict[str, Any]], object]] = {
        "recommend": lambda b: rec.recommend(user_id=b["user_id"], k=b["k"]),
        "explain": lambda b: rec.explain(b["item_id"], user_id=b["user_id"]),
        "ask": lambda b: rec.ask(b["text"], user_id=b["user_id"]),
    }
    timed = {}
    for endpoint in endpoints:
        hits = rec.cache_hits
        timed[endpoint] = in_process(calls[endpoint], bodies[endpoint][: args.requests])
        timed[endpoint]["explanation_cache_hits"] = rec.cache_hits - hits
    return rec.info, bodies, timed, hop_calls


def _levels(
    url: str, endpoint: str, bodies: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """One endpoint driven at each concurrency level, after an untimed warm-up."""
    warm = [b for b in bodies[:20] if endpoint != "explain"]
    drive(url, endpoint, warm, 1, args.max_seconds)
    rows = {}
    for level, clients in enumerate(args.concurrency):
        share = bodies[level :: len(args.concurrency)]
        before = cache_counts(url)
        times, failures, wall, degraded = drive(url, endpoint, share, clients, args.max_seconds)
        after = cache_counts(url)
        rows[f"concurrency_{clients}"] = {
            **percentiles(times),
            "requests": len(times),
            "non_200": len(failures),
            "degraded": degraded,
            "throughput_rps": round(len(times) / wall, 1),
            "explanation_cache": {k: after[k] - before[k] for k in after},
        }
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    from recllm.serve.process import ServerProcess

    if args.bundle is None:
        raise RecLLMError("bench serve needs --bundle BUNDLE (a folder written by recllm export)")
    bundle = Path(args.bundle)
    split: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="recllm-bench-serve-") as tmp, ExitStack() as stack:
        manifest, bodies, python_api, hop_calls = _python_api(bundle, Path(tmp), args)
        server_args = ["--workers", str(args.workers)]
        store = Path(tmp) / "service.sqlite"
        explain = None
        if args.split:  # a generous timeout: the hop is measured, not the degraded answer
            explain = stack.enter_context(
                ServerProcess(bundle, store, *server_args, "--role", "explain")
            )
            server_args += ["--role", "rank", "--explain-url", explain.url]
            server_args += ["--explain-timeout", "60"]
        server = stack.enter_context(ServerProcess(bundle, store, *server_args))
        http = {
            endpoint: _levels(server.url, endpoint, bodies[endpoint], args) for endpoint in bodies
        }
        peak = server.peak_rss_mb()
        if explain is not None:
            split = {
                "hop_under_load": hop_counts(server.url),
                "hop_alone": time_hop(explain.url, hop_calls),
                "explain_service_peak_rss_mb": round(explain.peak_rss_mb(), 1),
            }
    models = manifest.get("models", {})
    figures = {
        "name": args.label or manifest.get("dataset", bundle.name),
        "bundle": str(bundle),
        "dataset": manifest.get("dataset"),
        "catalogue_items": manifest.get("n_items"),
        "recommender": models.get("recommender", {}),
        "explanations": "generator" if "explainer" in models else "template",
        "requests_per_level": args.requests,
        "server": {
            "workers": args.workers,
            "threads_per_worker": 1,
            "role": "rank + explain" if args.split else "all",
        },
        "load_generator": f"aiohttp {_version('aiohttp')}, asyncio, keep-alive",
        "http": http,
        "python_api": python_api,
        "server_peak_rss_mb": round(peak, 1),
        **({"split": split} if split else {}),
        "note": "explain answers after the first for a (user, item) come from the cache; "
        "requests draw users at random, so repeats are rare",
    }
    _print(figures)
    return figures


def _print(figures: dict[str, Any]) -> None:
    for endpoint, levels in figures["http"].items():
        api = figures["python_api"][endpoint]
        for level, row in levels.items():
            print(
                f"{endpoint:>9} {level:>15}: p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} "
                f"ms  {row['throughput_rps']:7.1f} req/s  non-200 {row['non_200']}"
            )
        print(
            f"{endpoint:>9} {'python api':>15}: p50 {api['p50_ms']:7.1f} ms  p99 {api['p99_ms']:7.1f} ms"
        )
    print(f"server peak RSS {figures['server_peak_rss_mb']} MB")
    if "split" in figures:
        for part in ("round_trip", "overhead"):
            row = figures["split"]["hop_alone"][part]
            print(f"      hop {part:>15}: p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms")
