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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from recllm.config import run_settings_problems
from recllm.data.sequences import UserSequences
from recllm.errors import ConfigError, RecLLMError
from recllm.explain.baselines import template_reason
from recllm.explain.conditioning import build_conditioning, targets
from recllm.explain.data import Example, training_examples
from recllm.explain.facts import Facts, facts_for
from recllm.explain.faithfulness import FaithfulnessChecker
from recllm.explain.generator import Conditioning, ExplanationGenerator, GeneratorConfig
from recllm.explain.phrasing import realise
from recllm.explain.reviews import AnyFacts, ReviewCorpus, has_reviews, review_examples
from recllm.explain.vocab import (
    Vocab,
    delexicalise,
    relexicalise,
    source_tokens,
    tokenize,
)
from recllm.recipes.ask import Explanation
from recllm.recipes.inference import LoadedRun, load_run
from recllm.routing.catalog import Catalog

log = logging.getLogger(__name__)
MANIFEST = "explainer.json"
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


@dataclass
class Signals:
    """What the recommender says about a batch of pairs."""

    user: np.ndarray | None  # (N, u) user representations
    attribution: list[np.ndarray | None]  # per pair: a weight per history item
    item_vectors: np.ndarray | None  # (n_items, m) item metadata embeddings


def recommender_signals(
    run: LoadedRun, pairs: list[tuple[np.ndarray, np.ndarray]], batch: int = 128
) -> Signals:
    """User vectors and attributions of ``pairs`` of (history, behaviour weights)."""
    from recllm.models.lightgcn import LightGCN
    from recllm.models.sequential import pad_histories

    model = run.model
    pooled = getattr(model, "pooled", None)
    item_vectors = None if pooled is None else pooled[: run.split.n_items].detach().float().numpy()
    if isinstance(model, LightGCN):  # user-embedding models read no history
        return Signals(None, [None] * len(pairs), item_vectors)
    max_len = model.max_len
    users: list[np.ndarray] = []
    attributions: list[np.ndarray | None] = []
    model.eval()
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        lengths = np.array([len(h) for h, _ in chunk])
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        seqs = UserSequences(
            indptr,
            np.concatenate([h for h, _ in chunk]).astype(np.int32),
            np.concatenate([w for _, w in chunk]).astype(np.float32),
        )
        items, weights, mask = pad_histories(
            seqs, np.arange(len(chunk)), max_len, int(model.pad_id)
        )
        with torch.inference_mode():
            out = model(items, weights, mask)
        last = mask.sum(1) - 1
        rows = torch.arange(len(chunk))
        vector = out.user if out.user is not None else out.queries
        users.append(vector[rows, last].float().numpy())
        for row, n in enumerate(lengths):
            if out.attention is None:
                attributions.append(None)
                continue
            seen = min(int(n), max_len)
            weights_row = np.zeros(int(n))
            weights_row[-seen:] = out.attention[row, last[row], :seen].float().numpy()
            attributions.append(weights_row)
    return Signals(np.concatenate(users), attributions, item_vectors)


def pair_signals(run: LoadedRun, pairs: list[Example]) -> Signals:
    """The recommender's signals for each pair (its ratings as behaviour weights)."""
    train = run.split.train
    scale = float(train["rating"].max()) if "rating" in train else 1.0  # ratings -> weights
    return recommender_signals(
        run, [(e.history, np.nan_to_num(e.ratings / scale, nan=1.0)) for e in pairs]
    )


def attributed_facts(catalog: Catalog, pairs: list[Example], signals: Signals) -> list[Facts]:
    """Facts of each pair, its history weighed by the recommender's attribution."""
    return [
        facts_for(catalog, e.history, e.item, e.ratings, attribution)
        for e, attribution in zip(pairs, signals.attribution, strict=True)
    ]


def pair_facts(
    run: LoadedRun, catalog: Catalog, pairs: list[Example], corpus: ReviewCorpus | None = None
) -> tuple[list[AnyFacts], Signals]:
    """Facts of each pair (attributed facts, or review facts from ``corpus`` when given)
    and the recommender's signals."""
    signals = pair_signals(run, pairs)
    if corpus is not None:
        return [corpus.facts(e.user, e.item) for e in pairs], signals
    return list(attributed_facts(catalog, pairs, signals)), signals


class Explainer:
    """A trained generator with the recommender run and catalogue it explains.

    ``explain_cached`` keeps the latest ``cache_size`` explanations (the design's hot-user
    cache): a user who asks again about the same item is answered without the models.
    """

    def __init__(
        self,
        run: LoadedRun,
        generator: ExplanationGenerator,
        vocab: Vocab,
        cache_size: int = 10_000,
        corpus: ReviewCorpus | None = None,
    ) -> None:
        self.run = run
        self.generator = generator
        self.vocab = vocab
        self.cache: OrderedDict[tuple[int, int, int, str], str] = OrderedDict()
        self.cache_size = cache_size
        self.rng = torch.Generator().manual_seed(0)  # sampling of verified candidates
        self.fallbacks = 0
        self.catalog = Catalog.from_dataset(run.dataset)
        self.corpus = corpus  # review explanations: their facts and checker
        self.checker: FaithfulnessChecker | ReviewCorpus = corpus or FaithfulnessChecker(
            self.catalog
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

    def facts(self, pairs: list[Example]) -> tuple[list[AnyFacts], Signals]:
        return pair_facts(self.run, self.catalog, pairs, self.corpus)

    def conditioning(
        self, facts: Sequence[AnyFacts], signals: Signals, rows: list[int]
    ) -> Conditioning:
        user = None if signals.user is None else torch.from_numpy(signals.user[rows]).float()
        chosen = [facts[i] for i in rows]
        return build_conditioning(
            self.generator.config, self.vocab, chosen, user, signals.item_vectors
        )

    def explain_cached(self, pair: Example, method: str = "greedy", verify: bool = True) -> str:
        """One (verified) explanation, from the bounded cache when this user asked before."""
        key = _cache_key(pair, method + ("+verified" if verify else ""))
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        text = self.explain([pair], method, verify=verify)[0]
        self.cache[key] = text
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)  # the least recently used
        return text

    def explain(
        self,
        pairs: list[Example],
        method: str = "greedy",
        batch: int = 64,
        verify: bool = False,
        candidates: int = 4,
        **decoding: Any,
    ) -> list[str]:
        """One sentence per pair (history before the item, ratings, item).

        With ``verify``, up to ``candidates`` sentences are written per pair (the decoding
        ``method`` first, then samples) and the first that the faithfulness checker fully
        verifies is kept; when none is, the template sentence is (counted in
        ``self.fallbacks``). Every claim of the output is then true by construction.
        """
        facts, signals = self.facts(pairs)
        texts = []
        for start in range(0, len(pairs), batch):
            rows = list(range(start, min(start + batch, len(pairs))))
            cond = self.conditioning(facts, signals, rows)
            drafts = self._texts(self.generator.generate(cond, method, **decoding), facts, rows)
            if not verify:
                texts += drafts
                continue
            chosen: list[str | None] = [
                text if self._verified(text, pairs[r]) else None
                for text, r in zip(drafts, rows, strict=True)
            ]
            pending = [k for k, text in enumerate(chosen) if text is None]
            if pending and candidates > 1:
                # All further candidates of all failed rows in one sampled decoding pass
                # (attempt-major), so a hard pair costs two passes, not ``candidates``.
                again = [rows[k] for k in pending] * (candidates - 1)
                sampled = self.generator.generate(
                    self.conditioning(facts, signals, again),
                    "sample",
                    top_k=10,
                    generator=self.rng,
                )
                for j, text in enumerate(self._texts(sampled, facts, again)):
                    k = pending[j % len(pending)]
                    if chosen[k] is None and self._verified(text, pairs[rows[k]]):
                        chosen[k] = text
            for k, r in enumerate(rows):
                if chosen[k] is None:
                    self.fallbacks += 1
                    chosen[k] = template_reason(facts[r])
            texts += [c for c in chosen if c is not None]
        return texts

    def _verified(self, text: str, pair: Example) -> bool:
        return self.checker.check(text, pair.history, pair.item, pair.ratings).faithful

    def _texts(self, ids: list[list[int]], facts: Sequence[AnyFacts], rows: list[int]) -> list[str]:
        return [
            relexicalise(self.vocab.decode(i), facts[r]) for r, i in zip(rows, ids, strict=True)
        ]


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


def _cache_key(pair: Example, method: str) -> tuple[int, int, int, str]:
    # the history length stands for its state: histories only grow
    return (pair.user, pair.item, len(pair.history), method)


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
        for start in tqdm(
            batches, desc=f"explainer epoch {epoch}/{config.epochs}", disable=not config.progress
        ):
            chosen = order[start : start + config.batch_size]
            cond = explainer.conditioning(facts, signals, [rows[c] for c in chosen])
            _, loss = generator(cond, targets(vocab, [texts[c] for c in chosen]))
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
