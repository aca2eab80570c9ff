"""Latency of single requests: each call timed alone, p50/p99 in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def latency_ms(
    calls: Sequence[Callable[[], object]], repeats: int = 1, warmup: int = 0
) -> dict[str, float]:
    """p50/p99 over ``repeats`` passes of ``calls``, after ``warmup`` untimed calls (keep it
    0 when a call changes state, e.g. fills a cache, that later calls would profit from)."""
    for call in calls[:warmup]:
        call()
    times = []
    for _ in range(repeats):
        for call in calls:
            begin = time.perf_counter()
            call()
            times.append((time.perf_counter() - begin) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        "timed": len(times),
    }
