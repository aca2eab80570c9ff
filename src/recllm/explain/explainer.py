"""A trained explanation generator over a trained recommender, with verify-before-output.

It needs no dataset and no training code: the recommender (for the user representation and
the aggregator's attribution), the catalogue (titles, genres, years), the highest rating of
the data (ratings become behaviour weights), the generator and its vocabulary. A training
run (``recllm.recipes.explain``) and a served bundle (``recllm.serve``) both build one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from recllm.data.sequences import UserSequences
from recllm.explain.baselines import template_reason
from recllm.explain.conditioning import build_conditioning
from recllm.explain.data import Example
from recllm.explain.facts import Facts, facts_for
from recllm.explain.faithfulness import FaithfulnessChecker
from recllm.explain.generator import Conditioning, ExplanationGenerator
from recllm.explain.reviews import AnyFacts, ReviewCorpus
from recllm.explain.vocab import Vocab, relexicalise
from recllm.routing.catalog import Catalog

MANIFEST = "explainer.json"
# A verified batch of at most this many sentences (pairs x candidates) is decoded in one
# pass, first choices and their sampled alternatives together: a batch this small costs
# the per-step overhead, not arithmetic, so the alternatives come almost free and a pair
# whose first choice fails costs no second pass (what an online "why?" waits for).
FUSED_ROWS = 32


@dataclass
class Signals:
    """What the recommender says about a batch of pairs."""

    user: np.ndarray | None  # (N, u) user representations
    attribution: list[np.ndarray | None]  # per pair: a weight per history item
    item_vectors: np.ndarray | None  # (n_items, m) item metadata embeddings


@dataclass(frozen=True)
class Explained:
    """One explanation with what it rests on.

    ``verified``: the faithfulness checker confirmed every claim of ``text`` against the
    data (False for a sentence it could not check, e.g. a history without ratings).
    ``source``: "generator" or "template" (the fallback when no draft verified).
    ``claims``: each claim found in ``text`` with whether the data confirms it.
    """

    text: str
    verified: bool
    source: str
    claims: tuple[dict[str, Any], ...]


def recommender_signals(
    model: Any, n_items: int, pairs: list[tuple[np.ndarray, np.ndarray]], batch: int = 128
) -> Signals:
    """User vectors and attributions of ``pairs`` of (history, behaviour weights)."""
    from recllm.models.sequential import pad_histories

    pooled = getattr(model, "pooled", None)
    item_vectors = None if pooled is None else pooled[:n_items].detach().float().numpy()
    if getattr(model, "max_len", None) is None:  # user-embedding models read no history
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


def weighted(pairs: list[Example], rating_max: float | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(history, behaviour weights) of each pair: ratings / ``rating_max``, 1 where unknown."""
    scale = rating_max or 1.0
    return [(e.history, np.nan_to_num(e.ratings / scale, nan=1.0)) for e in pairs]


def attributed_facts(catalog: Catalog, pairs: list[Example], signals: Signals) -> list[Facts]:
    """Facts of each pair, its history weighed by the recommender's attribution."""
    return [
        facts_for(catalog, e.history, e.item, e.ratings, attribution)
        for e, attribution in zip(pairs, signals.attribution, strict=True)
    ]


def describe(
    checker: FaithfulnessChecker | ReviewCorpus, text: str, pair: Example, source: str
) -> Explained:
    """``text`` checked against ``pair``: its claims with their verdicts, and whether all hold."""
    check = checker.check(text, pair.history, pair.item, pair.ratings)
    claims = tuple(
        {**{k: v for k, v in asdict(claim).items() if v is not None}, "verified": ok}
        for claim, ok in check.claims
    )
    return Explained(text, check.faithful, source, claims)


class Explainer:
    """A trained generator with the recommender and catalogue it explains.

    ``explain_cached`` keeps the latest ``cache_size`` explanations (the design's hot-user
    cache): a user who asks again about the same item is answered without the models.
    """

    def __init__(
        self,
        model: Any,
        catalog: Catalog,
        generator: ExplanationGenerator,
        vocab: Vocab,
        rating_max: float | None,
        cache_size: int = 10_000,
        corpus: ReviewCorpus | None = None,
    ) -> None:
        self.model = model
        self.catalog = catalog
        self.generator = generator
        self.vocab = vocab
        self.rating_max = rating_max
        self.cache: OrderedDict[tuple[int, int, int, str], str] = OrderedDict()
        self.cache_size = cache_size
        self.rng = torch.Generator().manual_seed(0)  # sampling of verified candidates
        self.fallbacks = 0
        self.corpus = corpus  # review explanations: their facts and checker
        self.checker: FaithfulnessChecker | ReviewCorpus = corpus or FaithfulnessChecker(catalog)

    def signals(self, pairs: list[Example]) -> Signals:
        """The recommender's signals for each pair (its ratings as behaviour weights)."""
        return recommender_signals(
            self.model, len(self.catalog.titles), weighted(pairs, self.rating_max)
        )

    def facts(self, pairs: list[Example]) -> tuple[list[AnyFacts], Signals]:
        """Facts of each pair (attributed, or the review corpus's) and the signals."""
        signals = self.signals(pairs)
        if self.corpus is not None:
            return [self.corpus.facts(e.user, e.item) for e in pairs], signals
        return list(attributed_facts(self.catalog, pairs, signals)), signals

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
        key = (pair.user, pair.item, len(pair.history), method + ("+verified" if verify else ""))
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        text = self.explain([pair], method, verify=verify)[0]
        self.cache[key] = text
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)  # the least recently used
        return text

    def explain_checked(self, pairs: list[Example], method: str = "greedy") -> list[Explained]:
        """Verified-before-output explanations, with their claims and the checker's verdicts.

        All pairs are decoded together (one batch), so a list of ten recommendations costs
        two decoding passes, not ten.
        """
        texts, fell_back = self._write(pairs, method, verify=True)
        return [
            self.described(text, pair, "template" if fallback else "generator")
            for text, pair, fallback in zip(texts, pairs, fell_back, strict=True)
        ]

    def described(self, text: str, pair: Example, source: str) -> Explained:
        return describe(self.checker, text, pair, source)

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
        return self._write(pairs, method, batch, verify, candidates, **decoding)[0]

    def _write(
        self,
        pairs: list[Example],
        method: str = "greedy",
        batch: int = 64,
        verify: bool = False,
        candidates: int = 4,
        **decoding: Any,
    ) -> tuple[list[str], list[bool]]:
        """The sentences of :meth:`explain`, and for each whether it is the template."""
        facts, signals = self.facts(pairs)
        texts: list[str] = []
        fell_back: list[bool] = []
        for start in range(0, len(pairs), batch):
            rows = list(range(start, min(start + batch, len(pairs))))
            fused = (
                verify
                and method == "greedy"
                and not decoding
                and candidates > 1
                and len(rows) * candidates <= FUSED_ROWS
            )
            decoded = rows * (candidates if fused else 1)
            cond = self.conditioning(facts, signals, decoded)
            if fused:  # greedy first choices, then their samples: one pass
                ids = self.generator.generate(
                    cond, "sample", top_k=10, generator=self.rng, greedy_rows=len(rows)
                )
            else:
                ids = self.generator.generate(cond, method, **decoding)
            written = self._texts(ids, facts, decoded)
            drafts = written[: len(rows)]
            if not verify:
                texts += drafts
                fell_back += [False] * len(drafts)
                continue
            chosen: list[str | None] = [
                text if self._verified(text, pairs[r]) else None
                for text, r in zip(drafts, rows, strict=True)
            ]
            pending = [k for k, text in enumerate(chosen) if text is None]
            alternatives: list[tuple[int, str]] = []  # (row index in the batch, sentence)
            if pending and fused:
                alternatives = [(j % len(rows), t) for j, t in enumerate(written[len(rows) :])]
            elif pending and candidates > 1:
                # All further candidates of all failed rows in one sampled decoding pass
                # (attempt-major), so a hard pair costs two passes, not ``candidates``.
                again = [rows[k] for k in pending] * (candidates - 1)
                sampled = self.generator.generate(
                    self.conditioning(facts, signals, again),
                    "sample",
                    top_k=10,
                    generator=self.rng,
                )
                alternatives = [
                    (pending[j % len(pending)], t)
                    for j, t in enumerate(self._texts(sampled, facts, again))
                ]
            for k, text in alternatives:
                if chosen[k] is None and self._verified(text, pairs[rows[k]]):
                    chosen[k] = text
            for k, r in enumerate(rows):
                fell_back.append(chosen[k] is None)
                if chosen[k] is None:
                    self.fallbacks += 1
                    chosen[k] = template_reason(facts[r])
            texts += [c for c in chosen if c is not None]
        return texts, fell_back

    def _verified(self, text: str, pair: Example) -> bool:
        return self.checker.check(text, pair.history, pair.item, pair.ratings).faithful

    def _texts(self, ids: list[list[int]], facts: Sequence[AnyFacts], rows: list[int]) -> list[str]:
        return [
            relexicalise(self.vocab.decode(i), facts[r]) for r, i in zip(rows, ids, strict=True)
        ]
