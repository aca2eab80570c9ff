"""Tables of the benchmarks that are not ranking accuracy: routing, constraints, data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recllm.docgen.markdown import (
    DATASET_LABELS,
    Column,
    Record,
    get,
    read_record,
    source_line,
    table,
    text,
)


def routing(results: Path) -> dict[str, str]:
    """Router accuracy and latency; constraint cost per dataset."""
    path = results / "routing" / "router.json"
    record = read_record(path)
    intents = ("recommend", "explain", "recommend_and_explain", "out_of_scope")
    columns = [
        Column("layers", "layers", fmt="d"),
        Column("intent accuracy", "accuracy", fmt=".4f"),
        *(Column(f"{i.replace('_', ' ')} P / R", _precision_recall(i), fmt="") for i in intents),
        Column("classifier p50 ms", "latency_classifier/p50_ms", fmt=".1f"),
        Column("route p50 ms", "latency_route/p50_ms", fmt=".1f"),
        Column("route p99 ms", "latency_route/p99_ms", fmt=".1f"),
    ]
    rows = [(role, record[role]) for role in ("teacher", "student")]
    slot_columns = [Column(s, f"slot_accuracy/{s}") for s in ("item", "genre", "years", "k")]
    slot_columns.append(Column("title resolution", "item_resolution_accuracy"))
    out = {
        "routing": table(rows, columns, "router")
        + "\n"
        + table(rows, slot_columns, "slot accuracy")
        + source_line([path], results.parent)
    }
    files = sorted((results / "routing").glob("constraints-*.json"))
    constraint_rows = []
    for file in files:
        c = read_record(file)
        for name, figures in c["constraints"].items():
            label = f"{DATASET_LABELS.get(c['dataset'], c['dataset'])}, {name}"
            constraint_rows.append((label, figures))
    mode_columns = [
        Column(f"satisfaction: {m}", f"{m}/satisfaction@10") for m in ("none", "boost", "filter")
    ] + [Column(f"R@10: {m}", f"{m}/recall@10") for m in ("none", "boost", "filter")]
    mode_columns += [
        Column(f"N@10 change: {m}", _change(m), fmt="+.1%") for m in ("boost", "filter")
    ]
    out["constraints"] = table(constraint_rows, mode_columns, "dataset, constraint") + (
        source_line(files, results.parent)
    )
    return out


def _precision_recall(intent: str) -> Callable[[Record], str]:
    def cell(r: Record) -> str:
        figures = r["per_intent"][intent]
        return f"{figures['precision']:.2f} / {figures['recall']:.2f}"

    return cell


def _change(mode: str) -> Callable[[Record], float]:
    return lambda r: r[mode]["ndcg@10"] / r["none"]["ndcg@10"] - 1


def data_benchmarks(results: Path) -> dict[str, str]:
    """Cache, batching, bf16 item encoding and scale benchmarks."""
    cache_path, batching_path = results / "data" / "cache.json", results / "data" / "batching.json"
    cache = read_record(cache_path)
    out = {
        "bench-cache": table(
            list(cache["datasets"].items()),
            [
                Column("parse s", "first_load_s", fmt=".4f"),
                Column("cached load s", "cached_load_s", fmt=".4f"),
                Column("speedup", "speedup", fmt=".1f", suffix="x"),
            ],
            "dataset",
        )
        + source_line([cache_path], results.parent)
    }
    batching = read_record(batching_path)
    out["bench-batching"] = table(
        list(batching["datasets"].items()),
        [
            Column("sequences", "sequences", fmt=",d"),
            Column("padding, random", "random/padding_fraction", fmt=".1%"),
            Column("padding, bucketed", "bucketed/padding_fraction", fmt=".1%"),
            Column("samples/s, random", "random/samples_per_s", fmt=",.0f"),
            Column("samples/s, bucketed", "bucketed/samples_per_s", fmt=",.0f"),
            Column("speedup", "speedup", fmt=".2f", suffix="x"),
        ],
        "dataset",
    ) + source_line([batching_path], results.parent)
    bf16_path = results / "models" / "item_encoding_bf16.json"
    bf16 = read_record(bf16_path)
    out["bench-bf16"] = table(
        [("float32", {"s": get(bf16, "best_seconds/float32")}), ("bf16", bf16)],
        [
            Column("seconds", lambda r: r.get("s", get(r, "best_seconds/bf16")), fmt=".2f"),
            Column("speedup", "speedup_bf16", fmt=".2f", suffix="x"),
            Column("min pooled cosine to float32", "pooled_cosine/min", fmt=".5f"),
        ],
        f"encoding {bf16['n_items']:,} item texts",
    ) + source_line([bf16_path], results.parent)
    train_speed = results / "models" / "train_speed.json"
    out["bench-train-speed"] = _speed_table(train_speed, "epoch", results.parent)
    eval_speed = results / "models" / "eval_speed.json"
    if eval_speed.is_file():
        out["bench-eval-speed"] = _speed_table(eval_speed, "evaluation", results.parent)
    scale_path = results / "data" / "scale.json"
    scale = read_record(scale_path)
    out["bench-scale"] = table(
        [
            ("load + preprocess + split", scale["load_preprocess_split"]),
            ("full-ranking evaluation of every user", scale["evaluation"]),
        ],
        [
            Column("seconds", "seconds", fmt=".1f"),
            Column("target s", "target_seconds", fmt=".0f"),
            Column("peak MB", "peak_rss_mb", fmt=",.0f"),
            Column("target MB", "target_peak_rss_mb", fmt=",.0f"),
            text("met", lambda r: "yes" if r["pass_seconds"] and r["pass_peak_rss"] else "no"),
        ],
        "step (synthetic ML-20M-sized data)",
    ) + source_line([scale_path], results.parent)
    return out


def _speed_table(path: Path, timed: str, root: Path) -> str:
    """``benchmarks/train_speed.py``'s before/after comparison; ``timed``: what it timed
    (``epoch``, or ``evaluation`` with ``--evaluate``, which trains nothing)."""
    speed = read_record(path)
    after = {**speed["after"], "speedup": speed["speedup"]}
    columns = [
        Column(f"best {timed} s", f"best_{timed}_seconds", fmt=".1f"),
        Column("speedup", "speedup", fmt=".2f", suffix="x"),
    ]
    if timed == "epoch":
        columns.append(Column("loss after the epoch", lambda r: r["losses"][-1], fmt=".4f"))
    columns += [
        Column("valid R@10", "valid/recall@10", fmt=".4f"),
        Column("valid N@10", "valid/ndcg@10", fmt=".4f"),
    ]
    rows = [(f"before (`{speed['before_commit']}`)", speed["before"]), ("after", after)]
    return table(rows, columns, "code") + source_line([path], root)


def serving(results: Path) -> dict[str, str]:
    """The service over loopback (``recllm bench serve``): latency and throughput per
    endpoint and concurrency, beside the same requests through the Python API."""
    files = sorted((results / "serve").glob("*.json"))
    records = [(file, read_record(file)) for file in files]  # read once for all three tables
    rows: list[tuple[str, Record]] = []
    for _, record in records:
        model = get(record, "recommender/kind") or "?"
        backend = get(record, "recommender/backend") or "torch"
        name = f"{record['name']} ({model}, {backend}, {record.get('catalogue_items')} items)"
        for endpoint, levels in record["http"].items():
            api = record["python_api"].get(endpoint, {})
            for level, figures in levels.items():
                label = f"{name}: {endpoint}, {level.replace('_', ' ')}"
                rows.append((label, {**figures, "api": api, "rss": record["server_peak_rss_mb"]}))
    columns = [
        Column("p50 ms", "p50_ms", fmt=".1f"),
        Column("p95 ms", "p95_ms", fmt=".1f"),
        Column("p99 ms", "p99_ms", fmt=".1f"),
        Column("req/s", "throughput_rps", fmt=".1f"),
        Column("non-200", "non_200", fmt="d"),
        Column("Python API p50 / p99 ms", _api_latency, fmt=""),
        Column("server peak MB", "rss", fmt=".0f"),
    ]
    if not rows:
        return {
            "serve": "No `recllm bench serve` results yet.\n",
            "serve-targets": "",
            **_hop(records, results),
        }
    return {
        "serve": table(rows, columns, "bundle: endpoint, load")
        + source_line(files, results.parent),
        "serve-targets": _serving_targets(records, results.parent),
        **_hop(records, results),
    }


def _hop(records: list[tuple[Path, Record]], results: Path) -> dict[str, str]:
    """The rank service's hop to the explain service (``recllm bench serve --split``):
    round trip and overhead timed alone, and the failures seen under load."""
    split = [(file, record) for file, record in records if "split" in record]
    if not split:
        return {"serve-hop": "No `recllm bench serve --split` results yet.\n"}
    rows = [(str(record["name"]), record["split"]) for _, record in split]
    columns = [
        Column("round trip p50 ms", "hop_alone/round_trip/p50_ms", fmt=".1f"),
        Column("round trip p99 ms", "hop_alone/round_trip/p99_ms", fmt=".1f"),
        Column("overhead p50 ms", "hop_alone/overhead/p50_ms", fmt=".1f"),
        Column("overhead p99 ms", "hop_alone/overhead/p99_ms", fmt=".1f"),
        Column("calls timed", "hop_alone/requests", fmt="d"),
        Column("calls under load", "hop_under_load/calls", fmt="d"),
        Column(
            "failed under load",
            lambda r: sum(
                v for k, v in (r.get("hop_under_load") or {}).items() if k.startswith("failed_")
            ),
            fmt="d",
        ),
    ]
    return {
        "serve-hop": table(rows, columns, "bundle (rank + explain on loopback)")
        + source_line([file for file, _ in split], results.parent)
    }


# The serving issue's latency aims: (endpoint, concurrency level, p99 bound in ms).
SERVE_TARGETS = (
    ("recommend", "concurrency_16", 50.0),
    ("explain", "concurrency_1", 100.0),
    ("ask", "concurrency_1", 100.0),
)


def _serving_targets(records: list[tuple[Path, Record]], root: Path) -> str:
    """The distilled students' p99 latencies against the aims, read from the same files."""
    rows: list[tuple[str, Record]] = []
    used = []
    for file, record in records:
        if get(record, "recommender/kind") != "student" or "split" in record:
            continue  # the aims are for one service with the student (split: docs/scale.md)
        used.append(file)
        for endpoint, level, bound in SERVE_TARGETS:
            p99 = get(record, f"http/{endpoint}/{level}/p99_ms")
            if p99 is None:
                continue
            label = f"{record['name']}: {endpoint}, {level.replace('_', ' ')}"
            rows.append((label, {"aim": bound, "p99": p99, "met": "yes" if p99 < bound else "no"}))
    if not rows:
        return ""
    columns = [
        Column("p99 aimed below, ms", "aim", fmt=".0f"),
        Column("p99 measured, ms", "p99", fmt=".1f"),
        text("met", "met"),
    ]
    return table(rows, columns, "student bundle: endpoint, load") + source_line(used, root)


def _api_latency(record: Record) -> str:
    api = record.get("api") or {}
    if "p50_ms" not in api:
        return ""
    return f"{api['p50_ms']:.1f} / {api['p99_ms']:.1f}"
