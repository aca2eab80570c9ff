"""``recllm bench routing``: the router on the hand-written queries it never trained on.

Reports intent accuracy with per-intent precision and recall for the teacher and the
serving student, slot accuracy of the full route, and latency of one query on one CPU
thread (p50/p99 of the classifier alone and of the whole route with slots).
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recllm.bench.timing import latency_ms
from recllm.errors import RecLLMError
from recllm.routing.classifier import IntentClassifier
from recllm.routing.router import Router
from recllm.routing.schema import INTENTS, MentionStatus, Route
from recllm.routing.text import normalise

RESULTS_FILE = "routing/router.json"
DEFAULT_QUERIES = Path("tests/fixtures/routing/handwritten.jsonl")
SLOTS = ("item", "genre", "years", "k")


def load_queries(path: Path) -> list[dict[str, Any]]:
    """Labelled queries, one JSON object per line, each with text, intent and catalog."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecLLMError(f"{path}:{number}: not valid JSON ({exc})") from exc
        missing = {"text", "intent", "catalog"} - set(row)
        if missing or row["intent"] not in INTENTS:
            raise RecLLMError(f"{path}:{number}: needs text, catalog and one of {INTENTS}")
        rows.append(row)
    return rows


def intent_report(gold: list[str], predicted: list[str]) -> dict[str, Any]:
    """Accuracy, and precision/recall/F1 and support per intent."""
    per_intent = {}
    for intent in INTENTS:
        tp = sum(g == p == intent for g, p in zip(gold, predicted, strict=True))
        n_pred = predicted.count(intent)
        n_gold = gold.count(intent)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[intent] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": n_gold,
        }
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    return {"accuracy": round(correct / len(gold), 4), "per_intent": per_intent}


def slot_correct(row: dict[str, Any], route: Route) -> dict[str, bool]:
    """Whether each slot of a route matches the labels (absent labels mean "none")."""
    slots = route.slots
    want = row.get("item")
    if want is None:
        item = slots.item is None
    elif isinstance(want, dict):  # a mention the catalogue cannot resolve
        item = (
            slots.item is not None
            and slots.item.status is MentionStatus.NOT_FOUND
            and normalise(slots.item.mention) == normalise(want["unresolved"])
        )
    else:
        item = slots.item is not None and slots.item.title == want
    return {
        "item": item,
        "genre": set(slots.genres) == set(row.get("genre") or []),
        "years": (slots.year_from, slots.year_to) == (row.get("year_from"), row.get("year_to")),
        "k": slots.k == row.get("k"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    router_dir = Path(args.router)
    rows = load_queries(Path(args.queries))
    data_dir = Path(args.data_dir) if args.data_dir else None
    from recllm.recipes.router import load_catalogs

    names = sorted({row["catalog"] for row in rows})
    catalogs = dict(zip(names, load_catalogs(names, data_dir), strict=True))
    torch.set_num_threads(1)  # the target is one CPU core
    texts = [row["text"] for row in rows]
    gold = [row["intent"] for row in rows]
    manifest = json.loads((router_dir / "router.json").read_text())
    figures: dict[str, Any] = {
        "router": str(router_dir),
        "queries": str(args.queries),
        "n_queries": len(rows),
        "serving": manifest["serving"],
        "generated_valid_accuracy": {
            m: manifest[m]["valid_accuracy"] for m in ("teacher", "student") if m in manifest
        },
        "threads": 1,
    }
    for member in ("teacher", "student"):
        if not (router_dir / member).is_dir():
            continue
        classifier = IntentClassifier.from_pretrained(router_dir / member)
        routers = {name: Router(classifier, catalog) for name, catalog in catalogs.items()}
        routes = [routers[row["catalog"]].route(row["text"]) for row in rows]
        report = intent_report(gold, [r.intent.value for r in routes])
        checks = [slot_correct(row, route) for row, route in zip(rows, routes, strict=True)]
        report["slot_accuracy"] = {
            s: round(float(np.mean([c[s] for c in checks])), 4) for s in SLOTS
        }
        with_item = [c["item"] for row, c in zip(rows, checks, strict=True) if row.get("item")]
        report["item_resolution_accuracy"] = (
            round(float(np.mean(with_item)), 4) if with_item else None
        )
        report["errors"] = [
            {"text": row["text"], "gold": row["intent"], "predicted": route.intent.value}
            for row, route in zip(rows, routes, strict=True)
            if route.intent.value != row["intent"]
        ]
        report["latency_classifier"] = latency_ms(
            [partial(classifier.predict, [t]) for t in texts], args.repeats, warmup=10
        )
        report["latency_route"] = latency_ms(
            [partial(routers[row["catalog"]].route, row["text"]) for row in rows],
            args.repeats,
            warmup=10,
        )
        report["parameters"] = sum(p.numel() for p in classifier.parameters())
        report["layers"] = classifier.n_layers
        figures[member] = report
        print(
            f"{member}: intent accuracy {report['accuracy']:.3f}, "
            f"route p50 {report['latency_route']['p50_ms']:.2f} ms on 1 thread"
        )
    return figures
