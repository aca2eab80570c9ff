"""``recllm bench serve`` on the toy bundle: it drives every endpoint at each concurrency
over loopback, gets only 200s, and writes the figures with the in-process baseline."""

from __future__ import annotations

import json
from pathlib import Path

from recllm.cli import main


def test_bench_serve_writes_latency_per_endpoint_and_level(bundle: Path, tmp_path: Path) -> None:
    argv = ["bench", "serve", "--bundle", str(bundle), "--requests", "6"]
    argv += ["--concurrency", "1", "3", "--results-dir", str(tmp_path), "--label", "toy"]
    assert main(argv) == 0
    result = json.loads((tmp_path / "serve" / "toy.json").read_text())
    assert set(result["http"]) == {"recommend", "explain", "ask"}
    for endpoint, levels in result["http"].items():
        assert set(levels) == {"concurrency_1", "concurrency_3"}
        for row in levels.values():
            assert row["requests"] == 6 and row["non_200"] == 0
            assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
            assert row["throughput_rps"] > 0
        assert result["python_api"][endpoint]["requests"] == 6
    explain = result["http"]["explain"]["concurrency_1"]["explanation_cache"]
    assert explain["hit"] + explain["miss"] == 6
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert result["server_peak_rss_mb"] > 50
    assert result["catalogue_items"] == manifest["n_items"]
    assert result["benchmark"] == "serve" and "git_commit" in result


def test_bench_serve_split_drives_a_rank_service_and_times_the_hop(
    bundle: Path, tmp_path: Path
) -> None:
    """--split: the endpoints go through a rank service calling an explain service (no
    degraded answer), and the hop is timed alone; the figures are discarded here."""
    argv = ["bench", "serve", "--bundle", str(bundle), "--requests", "3", "--split"]
    argv += ["--concurrency", "1", "--endpoints", "recommend", "explain"]
    argv += ["--results-dir", str(tmp_path), "--label", "toy"]
    assert main(argv) == 0
    result = json.loads((tmp_path / "serve" / "toy.json").read_text())
    assert result["server"]["role"] == "rank + explain"
    explain = result["http"]["explain"]["concurrency_1"]
    assert explain["requests"] == 3 and explain["non_200"] == 0 and explain["degraded"] == 0
    split = result["split"]
    assert split["hop_under_load"]["calls"] >= 1
    assert not any(k.startswith("failed_") and v for k, v in split["hop_under_load"].items())
    alone = split["hop_alone"]
    assert alone["requests"] == 3
    assert 0 <= alone["overhead"]["p50_ms"] <= alone["round_trip"]["p50_ms"]
    assert split["explain_service_peak_rss_mb"] > 50
