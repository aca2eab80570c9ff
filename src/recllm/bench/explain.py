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
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from recllm.bench.timing import latency_ms
from recllm.explain.baselines import RetrievalBaseline, ReviewRetrieval, template_reason
from recllm.explain.data import Example, held_out_examples, training_examples
from recllm.explain.facts import facts_for
from recllm.explain.faithfulness import FaithfulnessChecker
from recllm.explain.metrics import text_metrics
from recllm.explain.phrasing import realise
from recllm.explain.reviews import (
    ReviewCorpus,
    has_reviews,
    review_examples,
    words,
)
from recllm.routing.catalog import Catalog

if TYPE_CHECKING:
    from recllm.data.splits import Split
    from recllm.recipes.explain import Explainer

RESULTS_FILE = "explain/{dataset}.json"


def faithfulness(
    checker: FaithfulnessChecker | ReviewCorpus, texts: list[str], pairs: list[Example]
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


def feature_matching_ratio(corpus: ReviewCorpus, texts: list[str], pairs: list[Example]) -> float:
    """Share of sentences that name the feature of the pair's reference sentence (PETER's
    FMR)."""
    hits = 0
    for text, pair in zip(texts, pairs, strict=True):
        found = corpus.explanation(pair.text, pair.item)
        hits += found is not None and found.feature in words(text)
    return round(hits / max(1, len(texts)), 4)


@dataclass
class Suite:
    """Held-out pairs of a dataset, their references, the checker and the baselines."""

    held: list[Example]
    references: list[str]
    checker: FaithfulnessChecker | ReviewCorpus
    systems: dict[str, Callable[[], list[str]]]
    train_pairs: int
    protocol: str
    left_out: int = 0  # held-out pairs without a reference


def fact_suite(split: Split, explainer: Explainer | None) -> Suite:
    """Reasons realised from MovieLens-style facts of each held-out pair."""
    from recllm.recipes.explain import attributed_facts, pair_signals

    catalog = Catalog.from_dataset(split.dataset)
    train = training_examples(split, catalog)
    held = held_out_examples(split, catalog)
    # facts with the recommender's attribution when there is one, recency otherwise
    facts = (
        attributed_facts(catalog, held, pair_signals(explainer.run, held))
        if explainer is not None
        else [facts_for(catalog, e.history, e.item, e.ratings) for e in held]
    )
    rng = random.Random(1)
    references = [realise(f, rng).text for f in facts]
    retrieval = RetrievalBaseline(catalog, train)
    systems = {
        "reference": lambda: references,
        "template": lambda: [template_reason(f) for f in facts],
        "retrieval": lambda: [retrieval(e.history, e.item) for e in held],
    }
    protocol = (
        "held-out pairs: each user's validation and test target with the evaluator's "
        "history; references: true reason sentences realised from the pair's facts "
        "(attribution from the recommender's aggregator when an explainer is given, "
        "recency otherwise; seed 1)"
    )
    return Suite(held, references, FaithfulnessChecker(catalog), systems, len(train), protocol)


def review_suite(corpus: ReviewCorpus) -> Suite:
    """Sentences of the users' own held-out reviews as references."""
    train, _ = review_examples(corpus, "train")
    held, left_out = review_examples(corpus, "held_out")
    facts = [corpus.facts(e.user, e.item) for e in held]
    references = [e.text for e in held]
    retrieval = ReviewRetrieval(
        [corpus.facts(e.user, e.item) for e in train], [e.text for e in train]
    )
    systems = {
        "reference": lambda: references,
        "template": lambda: [template_reason(f) for f in facts],
        "retrieval": lambda: [retrieval(f) for f in facts],
    }
    protocol = (
        "held-out pairs: each user's validation and test review with the evaluator's "
        "history; reference: the review's sentence naming the item's most specific feature "
        "(TF-IDF over the items' training reviews); pairs whose review names none are left "
        "out (held_out_left_out); faithfulness: the share of feature words mentioned that "
        "are features of the item; fmr: the share of sentences naming the reference's feature"
    )
    return Suite(held, references, corpus, systems, len(train), protocol, left_out)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from recllm.bench.accuracy import dataset_split

    explainer = None
    if args.explainer:
        from recllm.recipes.explain import Explainer

        explainer = Explainer.load(Path(args.explainer), args.data_dir)
        split = explainer.run.split
        corpus = explainer.corpus
    else:
        split = dataset_split(args.dataset or "ml-100k", args)
        corpus = ReviewCorpus(split) if has_reviews(split.train) else None
    suite = review_suite(corpus) if corpus is not None else fact_suite(split, explainer)
    held, references, systems = suite.held, suite.references, suite.systems
    if explainer is not None:
        systems["ours"] = lambda: explainer.explain(held, method=args.method)
        systems["ours_verified"] = lambda: explainer.explain(held, method=args.method, verify=True)
    figures: dict[str, Any] = {
        "dataset": split.dataset.name,
        "explainer": args.explainer,
        "decoding": args.method,
        "protocol": suite.protocol,
        "train_pairs": suite.train_pairs,
        "held_out_pairs": len(held),
        "held_out_left_out": suite.left_out,
        "systems": {},
    }
    for name, system in systems.items():
        begin = time.perf_counter()
        texts = system()
        seconds = time.perf_counter() - begin
        row = {**text_metrics(texts, references), **faithfulness(suite.checker, texts, held)}
        if corpus is not None:
            row["fmr"] = feature_matching_ratio(corpus, texts, held)
        row["ms_per_explanation_batched"] = round(1000 * seconds / len(held), 3)
        row["examples"] = texts[:5]
        if name == "ours_verified" and explainer is not None:
            row["template_fallbacks"] = explainer.fallbacks
        figures["systems"][name] = row
        print(
            f"{name}: BLEU-4 {row['bleu4']:.3f}, ROUGE-L {row['rouge_l']:.3f}, BERTScore "
            f"{row['bertscore_f1']:.3f}, faithfulness {row['faithfulness']:.3f}"
        )
    if explainer is not None:
        torch.set_num_threads(1)
        sample = held[: args.latency_pairs]
        explainer.cache.clear()
        sample_facts, signals = explainer.facts(sample)
        conditions = [
            explainer.conditioning(sample_facts, signals, [i]) for i in range(len(sample))
        ]
        cached = [partial(explainer.explain_cached, e, args.method) for e in sample]
        figures["latency_one_thread_batch_1"] = {
            # recommender forward (user vector, attribution) + facts + generation
            "end_to_end": latency_ms(cached),
            "cache_hit": latency_ms(cached),  # the same requests again
            "generation_only": latency_ms(
                [partial(explainer.generator.generate, c, args.method) for c in conditions]
            ),
        }
    figures["reference_examples"] = references[:5]
    return figures
