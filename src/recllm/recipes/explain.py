"""``recllm train-explainer``: train the explanation generator on a trained recommender.

The recommender gives each (history, item) pair its user representation (the adapter's
aggregator output at the last step), the attribution of the history (the aggregator's
attention there; recency for models without one) and the items' metadata embeddings.
Facts are taken with that attribution, several true reasons are realised per training
pair, titles become slots, and the generator learns to write them with L_gen. The folder
it writes holds the generator, its vocabulary and ``explainer.json`` (the run it explains,
the data, the provenance), so ``Explainer.load`` rebuilds everything.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recllm.config import run_settings_problems
from recllm.errors import ConfigError, RecLLMError
from recllm.explain.conditioning import targets
from recllm.explain.data import Example, training_examples
from recllm.explain.explainer import (
    MANIFEST,
    Signals,
    attributed_facts,
    recommender_signals,
    weighted,
)
from recllm.explain.explainer import Explainer as BaseExplainer
from recllm.explain.generator import ExplanationGenerator, GeneratorConfig
from recllm.explain.phrasing import realise
from recllm.explain.reviews import AnyFacts, ReviewCorpus, has_reviews, review_examples
from recllm.explain.vocab import Vocab, delexicalise, source_tokens, tokenize
from recllm.progress import progress_bar
from recllm.recipes.ask import Explanation
from recllm.recipes.inference import LoadedRun, load_run
from recllm.routing.catalog import Catalog

log = logging.getLogger(__name__)
TARGETS = ("auto", "facts", "reviews")


@dataclass
class ExplainerTrainConfig:
    """How the explanation generator is trained."""

    run_dir: str = "runs/ml-100k"  # the trained recommender it explains
    output_dir: str = "runs/explainer"
    data_dir: str | None = None
    # facts: reasons realised from MovieLens-style facts; reviews: sentences extracted
    # from the users' reviews; auto: reviews when the interactions carry review text
    targets: str = "auto"
    per_user: int = 5  # training pairs from the end of each training sequence (facts)
    phrasings: int = 3  # true reasons realised per training pair (facts)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    num_threads: int | None = None
    progress: bool = True
    schedule: str = "full"  # a label saved with the explainer: "full", or the quick start's "short"

    def __post_init__(self) -> None:
        problems = []
        for name in ("per_user", "phrasings", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < math.inf:
            problems.append(f"lr must be a finite number > 0, got {self.lr}")
        problems += run_settings_problems(self.seed, self.num_threads)
        if self.targets not in TARGETS:
            problems.append(f"targets must be one of {TARGETS}, got {self.targets!r}")
        ConfigError.collect("explainer training", problems)


def rating_max(run: LoadedRun) -> float | None:
    """The highest training rating (ratings / it are behaviour weights); None without."""
    train = run.split.train
    return float(train["rating"].max()) if "rating" in train else None


def pair_signals(run: LoadedRun, pairs: list[Example]) -> Signals:
    """The recommender's signals for each pair (its ratings as behaviour weights)."""
    return recommender_signals(run.model, run.split.n_items, weighted(pairs, rating_max(run)))


class Explainer(BaseExplainer):
    """The explainer of a training run (``run``: the recommender with its data)."""

    def __init__(
        self,
        run: LoadedRun,
        generator: ExplanationGenerator,
        vocab: Vocab,
        cache_size: int = 10_000,
        corpus: ReviewCorpus | None = None,
    ) -> None:
        self.run = run
        super().__init__(
            run.model,
            Catalog.from_dataset(run.dataset),
            generator,
            vocab,
            rating_max(run),
            cache_size,
            corpus,
        )

    @classmethod
    def load(cls, folder: Path, data_dir: Path | None = None) -> Explainer:
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise RecLLMError(
                f"{folder} holds no {MANIFEST}: not a trained explainer; run `recllm train-explainer`"
            )
        manifest = json.loads((folder / MANIFEST).read_text())
        run = load_run(Path(manifest["run_dir"]), data_dir, progress=False)
        corpus = ReviewCorpus(run.split) if manifest.get("targets") == "reviews" else None
        return cls(
            run,
            ExplanationGenerator.from_pretrained(folder),
            Vocab.load(folder / "vocab.json"),
            corpus=corpus,
        )


def pair_for(explainer: Explainer, raw_user: str, raw_item: str) -> Example:
    """The (history, item) pair to explain for raw ids, or a clear error: unknown user or
    item, an empty history, or an item the user already has."""
    from recllm.recipes.inference import resolve_items, user_history

    run = explainer.run
    user, history, _ = user_history(run, raw_user)
    item = int(resolve_items(run, [raw_item])[0])
    if len(history) == 0:
        raise RecLLMError(f"user {raw_user!r} has no history: there is nothing to explain from")
    if item in set(history.tolist()):
        raise RecLLMError(
            f"user {raw_user!r} already has item {raw_item!r}: explanations are for new items"
        )
    return pair_of(run, user, history, item)


def pair_of(run: LoadedRun, user: int, history: np.ndarray, item: int) -> Example:
    """The pair of a user (by code), the history the ranking used and an item, with the
    user's ratings when the history is the user's own (NaN otherwise: not checkable)."""
    frame = run.dataset.interactions
    rows = frame[frame["user"] == user]
    ratings = (
        rows["rating"].to_numpy(dtype=float)
        if "rating" in rows.columns and len(rows) == len(history)
        else np.full(len(history), np.nan)
    )
    return Example(user, item, history, ratings, "", ())


class GeneratedExplanations:
    """The trained generator as the router's ``explain`` path (the Assistant's
    explainer): verified before output, through the hot-user cache."""

    label = "generator (verified)"

    def __init__(self, explainer: Explainer) -> None:
        self.explainer = explainer

    def __call__(self, catalog: Catalog, user: int, history: np.ndarray, item: int) -> Explanation:
        text = self.explainer.explain_cached(pair_of(self.explainer.run, user, history, item))
        return Explanation(str(catalog.item_ids[item]), str(catalog.titles[item]), text, self.label)


def review_corpus(run: LoadedRun, targets: str) -> ReviewCorpus | None:
    """The review corpus when explanations are extracted from reviews, else None."""
    reviews = has_reviews(run.split.train)
    if targets == "reviews" and not reviews:
        raise ConfigError(f"targets=reviews, but dataset {run.dataset.name!r} has no review text")
    return (
        ReviewCorpus(run.split) if targets == "reviews" or (targets == "auto" and reviews) else None
    )


def train_explainer(config: ExplainerTrainConfig) -> dict[str, Any]:
    """Train the generator for ``config.run_dir``; save it; return the manifest."""
    from recllm.provenance import provenance, write_json

    started = provenance()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    data_dir = Path(config.data_dir) if config.data_dir else None
    run = load_run(Path(config.run_dir), data_dir, progress=config.progress)
    catalog = Catalog.from_dataset(run.dataset)
    corpus = review_corpus(run, config.targets)
    rows, texts = [], []
    if corpus is None:
        pairs = training_examples(run.split, catalog, config.per_user, config.seed)
        signals = pair_signals(run, pairs)
        facts: list[AnyFacts] = []
        for i, f in enumerate(attributed_facts(catalog, pairs, signals)):
            facts.append(f)
            for _ in range(config.phrasings):
                rows.append(i)
                texts.append(delexicalise(realise(f, rng).text, f))
    else:
        pairs, skipped = review_examples(corpus, "train")
        log.info("%d training reviews have no sentence naming a feature: left out", skipped)
        signals = pair_signals(run, pairs)
        facts = [corpus.facts(e.user, e.item) for e in pairs]
        rows = list(range(len(pairs)))
        texts = [delexicalise(e.text, f) for e, f in zip(pairs, facts, strict=True)]
    vocab = Vocab.build([tokenize(t) for t in texts] + [source_tokens(f) for f in facts])
    gen_config = GeneratorConfig(
        **{
            **asdict(config.generator),
            "vocab_size": len(vocab),
            "user_dim": 0 if signals.user is None else int(signals.user.shape[1]),
            "item_dim": 0 if signals.item_vectors is None else int(signals.item_vectors.shape[1]),
        }
    )
    generator = ExplanationGenerator(gen_config)
    explainer = Explainer(run, generator, vocab, corpus=corpus)
    optimizer = torch.optim.AdamW(generator.parameters(), lr=config.lr, weight_decay=0.01)
    begin = time.perf_counter()
    history = []
    order = list(range(len(rows)))
    for epoch in range(1, config.epochs + 1):
        generator.train()
        rng.shuffle(order)
        total = 0.0
        batches = range(0, len(order), config.batch_size)
        for start in progress_bar(
            batches, desc=f"explainer epoch {epoch}/{config.epochs}", enabled=config.progress
        ):
            chosen = order[start : start + config.batch_size]
            cond = explainer.conditioning(facts, signals, [rows[c] for c in chosen])
            _, loss = generator(
                cond, targets(vocab, [texts[c] for c in chosen], gen_config.max_target)
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(generator.parameters(), 1.0)
            optimizer.step()
            total += float(loss.detach()) * len(chosen)
        history.append({"epoch": epoch, "loss_gen": round(total / len(order), 4)})
        log.info("explainer epoch %d: L_gen %.4f", epoch, total / len(order))
    out = Path(config.output_dir)
    generator.save_pretrained(out)
    vocab.save(out / "vocab.json")
    manifest = {
        "run_dir": config.run_dir,
        "dataset": run.dataset.name,
        "targets": "facts" if corpus is None else "reviews",
        "schedule": config.schedule,
        "training_pairs": len(pairs),
        "training_sentences": len(texts),
        "vocab_size": len(vocab),
        "parameters": sum(p.numel() for p in generator.parameters()),
        "train_seconds": round(time.perf_counter() - begin, 1),
        "history": history,
        "config": asdict(config),
        **started,
    }
    write_json(out / MANIFEST, manifest)
    return manifest
