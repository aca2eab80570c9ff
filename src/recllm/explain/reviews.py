"""Explanations from review text: feature lexicon, sentence extraction, facts and checks.

For datasets whose interactions carry reviews (Amazon Musical Instruments), the target of
an explanation is a sentence the user wrote about a *feature* of the item, as in PETER's
data construction (Li et al., 2021). Without a phrase-level sentiment tool, an item's
features are the words most specific to its training reviews: TF-IDF with one document per
item (words common to every product, "great" or "the", score near zero), kept when they
occur in at least ``min_reviews`` of its reviews. From each review the sentence that
mentions the item's most specific feature becomes the explanation of that (user, item).

Only training reviews build the lexicon and the user profiles, so a held-out review is
never read before it is used as a reference. An explanation is grounded when every
feature word it mentions is a feature of the recommended item (``ReviewChecker``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recllm.data.splits import Split
from recllm.errors import RecLLMError
from recllm.explain.data import Example, user_sequences
from recllm.explain.facts import Facts
from recllm.explain.faithfulness import Check
from recllm.explain.phrasing import Claim

REVIEW_COLUMN = "review"
_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")
# a sentence ends at . ! ? (also when the next one starts without a space: "it.The")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s*(?=[A-Z\"'(])|(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class ReviewFacts:
    """What an explanation of ``item`` for ``user`` may draw on: the item's features and
    the features the user wrote about in training reviews (most specific first)."""

    item: int
    title: str
    features: tuple[str, ...]
    user_features: tuple[str, ...]
    attributed: tuple = ()  # no cited history items: only the item's title is a slot

    def source_tokens(self, slot: str) -> list[str]:
        return [slot, "features", *self.features, "user", *self.user_features]


AnyFacts = Facts | ReviewFacts  # what an explanation is built from, either kind


@dataclass(frozen=True)
class ReviewExplanation:
    """A sentence of a review that states a feature of the reviewed item."""

    feature: str
    sentence: str


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def sentences(review: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(review) if s and s.strip()]


def has_reviews(frame: pd.DataFrame) -> bool:
    return REVIEW_COLUMN in frame.columns


class ReviewCorpus:
    """The feature lexicon of a split's training reviews, and what follows from it."""

    def __init__(
        self,
        split: Split,
        features_per_item: int = 20,
        min_reviews: int = 2,
        max_item_share: float = 0.2,
        sentence_words: tuple[int, int] = (5, 25),
        user_features: int = 6,
        source_features: int = 8,
    ) -> None:
        train = split.train
        if not has_reviews(train):
            raise RecLLMError(
                f"dataset {split.dataset.name!r} has no {REVIEW_COLUMN!r} column: review "
                "explanations need review text (e.g. amazon-musical-instruments)"
            )
        self.split = split
        self.titles = [str(t) for t in split.dataset.items["item_id"]]
        self.sentence_words = sentence_words
        self.source_features = source_features
        self.item_features = _item_features(train, features_per_item, min_reviews, max_item_share)
        self.lexicon = {f for features in self.item_features.values() for f in features}
        self.user_profiles = self._user_profiles(train, user_features)

    def explanation(self, review: str, item: int) -> ReviewExplanation | None:
        """The sentence of ``review`` that states the item's most specific feature, or None
        when no sentence of a usable length names one of its features."""
        rank = {f: r for r, f in enumerate(self.item_features.get(item, ()))}
        lo, hi = self.sentence_words
        best: tuple[int, ReviewExplanation] | None = None
        for sentence in sentences(review):
            tokens = words(sentence)
            if not lo <= len(tokens) <= hi:
                continue
            named = [t for t in tokens if t in rank]
            if named:
                feature = min(named, key=rank.__getitem__)
                if best is None or rank[feature] < best[0]:
                    best = (rank[feature], ReviewExplanation(feature, sentence))
        return None if best is None else best[1]

    def facts(self, user: int, item: int) -> ReviewFacts:
        return ReviewFacts(
            item,
            self.titles[item],
            tuple(self.item_features.get(item, ())[: self.source_features]),
            self.user_profiles.get(user, ()),
        )

    def check(
        self, text: str, history: np.ndarray, item: int, ratings: np.ndarray | None = None
    ) -> Check:
        """Each feature word of the lexicon in ``text`` is a claim about ``item``, verified
        when it is one of the item's features; a sentence naming none counts as a failure
        (the same rule as the MovieLens checker). ``history`` and ``ratings`` are unused:
        review explanations make no claims about them."""
        del history, ratings
        result = Check()
        own = set(self.item_features.get(item, ()))
        for sentence in sentences(text):
            mentioned = [w for w in dict.fromkeys(words(sentence)) if w in self.lexicon]
            if not mentioned:
                result.empty_sentences.append(sentence)
            for feature in mentioned:
                result.claims.append((Claim("item_feature", feature=feature), feature in own))
        return result

    def _user_profiles(self, train: pd.DataFrame, top: int) -> dict[int, tuple[str, ...]]:
        counts: dict[int, Counter[str]] = {}
        for row in train[["user", "item", REVIEW_COLUMN]].itertuples(index=False):
            found = self.explanation(str(row.review), int(row.item))
            if found is not None:
                counts.setdefault(int(row.user), Counter())[found.feature] += 1
        return {u: tuple(f for f, _ in c.most_common(top)) for u, c in counts.items()}


def _item_features(
    train: pd.DataFrame, per_item: int, min_reviews: int, max_item_share: float
) -> dict[int, tuple[str, ...]]:
    """Per item, its words by TF-IDF over items (one document per item), kept when they
    occur in at least ``min_reviews`` of its reviews (or in its only review) and in the
    reviews of at most ``max_item_share`` of all items (so "works" or "sound", said of
    everything, are no feature of anything)."""
    in_reviews: dict[int, Counter[str]] = {}
    review_counts: Counter[int] = Counter()
    term_counts: dict[int, Counter[str]] = {}
    for item, review in zip(train["item"], train[REVIEW_COLUMN], strict=True):
        tokens = [t for t in words(str(review)) if len(t) >= 3]
        review_counts[int(item)] += 1
        in_reviews.setdefault(int(item), Counter()).update(set(tokens))
        term_counts.setdefault(int(item), Counter()).update(tokens)
    n_items = len(term_counts)
    document_frequency = Counter(t for counts in term_counts.values() for t in counts)
    features = {}
    for item, counts in term_counts.items():
        needed = min(min_reviews, review_counts[item])
        total = sum(counts.values())
        scored = [
            (counts[t] / total * math.log(n_items / document_frequency[t]), t)
            for t in counts
            if in_reviews[item][t] >= needed and document_frequency[t] <= max_item_share * n_items
        ]
        best = sorted(scored, key=lambda pair: (-pair[0], pair[1]))[:per_item]
        features[item] = tuple(t for score, t in best if score > 0)
    return features


def review_examples(corpus: ReviewCorpus, stage: str) -> tuple[list[Example], int]:
    """(user, item, history, sentence) examples of ``stage``, and how many reviews gave no
    explanation sentence (they are left out, and the count says so).

    ``train``: every training review after the user's first (so there is a history);
    ``held_out``: each user's validation and test review, with the evaluator's history.
    """
    split = corpus.split
    if stage == "train":
        frames = [(split.train, None)]
    elif stage == "held_out":
        frames = [(split.targets(s), split.history(s)) for s in ("valid", "test")]
    else:
        raise ValueError(f"stage must be 'train' or 'held_out', got {stage!r}")
    examples, skipped = [], 0
    for targets, histories in frames:
        sequences = user_sequences(targets if histories is None else histories)
        for user, rows in targets.groupby("user", sort=True):
            items, ratings = sequences.get(int(user), (np.zeros(0, int), np.zeros(0)))
            for position, row in enumerate(rows.itertuples(index=False)):
                if histories is None:  # training: the history is what came before
                    history, rated = items[:position], ratings[:position]
                else:
                    history, rated = items, ratings
                if len(history) == 0:
                    continue
                found = corpus.explanation(str(row.review), int(row.item))
                if found is None:
                    skipped += 1
                    continue
                examples.append(
                    Example(int(user), int(row.item), history, rated, found.sentence, ())
                )
    return examples, skipped
