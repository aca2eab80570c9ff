"""The two reference systems every explanation generator is compared with.

* Template: one fixed sentence filled with the pair's facts (true, but always the same
  shape): "<title>: you recently watched <most attributed film>, and it is a <genre> film."
* Retrieval: the training explanation of the nearest training pair, returned verbatim;
  pairs are compared by the item's genres and the genre mix of the recent history (cosine).
  Fluent, but its facts belong to someone else.

For review explanations the template names the item's most specific feature ("The strings
work well."), and retrieval compares pairs by the item's and the user's features.
"""

from __future__ import annotations

import numpy as np

from recllm.explain.data import Example
from recllm.explain.facts import WINDOW, Facts
from recllm.explain.reviews import ReviewFacts
from recllm.routing.catalog import Catalog


def template_reason(facts: Facts | ReviewFacts) -> str:
    if isinstance(facts, ReviewFacts):
        return f"The {facts.features[0]} works well." if facts.features else "It works well."
    title = facts.title
    if not facts.attributed:
        genre = facts.genres[0].lower() if facts.genres else "new"
        return f"{title}: it is a {genre} film."
    cited = facts.attributed[0]
    if not facts.genres:
        return f"{title}: you recently watched {cited.title}."
    shared = [g for g in facts.genres if g in cited.genres]
    genre = (shared or list(facts.genres))[0].lower()
    article = "an" if genre[:1] in "aeiou" else "a"
    if shared:
        return f"{title}: like {cited.title}, it is {article} {genre} film."
    # the item's genre before the cited film: after it, "it" could be read as that film
    return f"{title}: it is {article} {genre} film, and you recently watched {cited.title}."


class RetrievalBaseline:
    """Nearest training explanation by (item genres, recent-history genre mix)."""

    def __init__(self, catalog: Catalog, train: list[Example]) -> None:
        if not train:
            raise ValueError("retrieval needs at least one training explanation")
        self.catalog = catalog
        self.genres = {
            g: i for i, g in enumerate(sorted({g for gs in catalog.genres_of for g in gs}))
        }
        self.texts = [e.text for e in train]
        self.features = np.stack([self._features(e.history, e.item) for e in train])

    def _features(self, history: np.ndarray, item: int) -> np.ndarray:
        vector = np.zeros(2 * len(self.genres), dtype=np.float32)
        for g in self.catalog.genres_of[item]:
            vector[self.genres[g]] = 1.0
        for h in history[-WINDOW:]:
            for g in self.catalog.genres_of[h]:
                vector[len(self.genres) + self.genres[g]] += 1.0 / WINDOW
        return vector / max(float(np.linalg.norm(vector)), 1e-8)

    def __call__(self, history: np.ndarray, item: int) -> str:
        return self.texts[int(np.argmax(self.features @ self._features(history, item)))]


class ReviewRetrieval:
    """Nearest training review sentence by (item features, user features), cosine."""

    def __init__(self, facts: list[ReviewFacts], texts: list[str]) -> None:
        if not texts or len(facts) != len(texts):
            raise ValueError("retrieval needs one training sentence per training pair (>= 1)")
        names = sorted({f for pair in facts for f in (*pair.features, *pair.user_features)})
        self.index = {name: i for i, name in enumerate(names)}
        self.texts = texts
        self.features = np.stack([self._features(f) for f in facts])

    def _features(self, facts: ReviewFacts) -> np.ndarray:
        vector = np.zeros(2 * len(self.index), dtype=np.float32)
        for offset, names in ((0, facts.features), (len(self.index), facts.user_features)):
            for name in names:
                if name in self.index:
                    vector[offset + self.index[name]] = 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-8)

    def __call__(self, facts: ReviewFacts) -> str:
        return self.texts[int(np.argmax(self.features @ self._features(facts)))]
