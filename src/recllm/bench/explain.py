"""``recllm bench explain``: explanation quality and faithfulness on held-out pairs.

Held-out pairs are every user's validation and test targets (history as the evaluator
gives it) of the dataset's shipped config; each reference is a true reason sentence
realised from the pair's facts. Every system is scored on the same pairs with BLEU-4,
ROUGE-L, BERTScore, distinct-1/2, the unique-sentence ratio and faithfulness (the share of
its claims the checker verifies, a sentence with no checkable claim counting as one failed
claim). The references themselves are scored too, as a check of the checker.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from recllm.explain.baselines import RetrievalBaseline, template_reason
from recllm.explain.data import Example, held_out_examples, training_examples
from recllm.explain.faithfulness import FaithfulnessChecker
from recllm.explain.metrics import text_metrics

RESULTS_FILE = "explain/{dataset}.json"


def faithfulness(
    checker: FaithfulnessChecker, texts: list[str], pairs: list[Example]
) -> dict[str, Any]:
    verified = total = faithful = 0
    for text, pair in zip(texts, pairs, strict=True):
        check = checker.check(text, pair.history, pair.item, pair.ratings)
        verified += check.verified
        total += check.total
        faithful += check.faithful
    return {
        "faithfulness": round(verified / max(1, total), 4),
        "claims": total,
        "claims_verified": verified,
        "explanations_fully_verified": round(faithful / max(1, len(texts)), 4),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from recllm.bench.accuracy import dataset_split
    from recllm.routing.catalog import Catalog

    dataset = args.dataset or "ml-100k"
    split = dataset_split(dataset, args)
    catalog = Catalog.from_dataset(split.dataset)
    train = training_examples(split, catalog)
    held = held_out_examples(split, catalog)
    checker = FaithfulnessChecker(catalog)
    references = [e.text for e in held]
    retrieval = RetrievalBaseline(catalog, train)
    systems = {
        "reference": lambda e: e.text,
        "template": lambda e: template_reason(catalog, e.history, e.item),
        "retrieval": lambda e: retrieval(e.history, e.item),
    }
    figures: dict[str, Any] = {
        "dataset": split.dataset.name,
        "protocol": (
            "held-out pairs: each user's validation and test target with the evaluator's "
            "history; references: true reason sentences realised from the pair's facts (seed 1)"
        ),
        "train_pairs": len(train),
        "held_out_pairs": len(held),
        "systems": {},
    }
    for name, system in systems.items():
        begin = time.perf_counter()
        texts = [system(e) for e in held]
        seconds = time.perf_counter() - begin
        row = {**text_metrics(texts, references), **faithfulness(checker, texts, held)}
        row["ms_per_explanation"] = round(1000 * seconds / len(held), 3)
        row["examples"] = texts[:5]
        figures["systems"][name] = row
        print(
            f"{name}: BLEU-4 {row['bleu4']:.3f}, ROUGE-L {row['rouge_l']:.3f}, BERTScore "
            f"{row['bertscore_f1']:.3f}, faithfulness {row['faithfulness']:.3f}"
        )
    figures["reference_examples"] = references[:5]
    return figures
