"""One entry point for a user's words: route the query, rank, explain.

Used by ``recllm ask`` (and by the service later). The ranking is always fixed before any
explanation is written, so explaining never changes what is recommended. Explanations
come from the trained generator when one is given
(:class:`recllm.recipes.explain.GeneratedExplanations`), otherwise from
:func:`minimal_explanation`: a clearly marked sentence built only from facts of the data
(shared genres, the history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recllm.models.sequential import top_k
from recllm.recipes.inference import LoadedRun, require_positive_k, score_items, user_history
from recllm.routing.catalog import Catalog
from recllm.routing.constraints import apply_constraints, satisfies
from recllm.routing.router import Router
from recllm.routing.schema import Intent, Route, named_item

MINIMAL = "minimal (facts of the data; no explanation generator given)"
RECENT = 10  # history items an explanation looks at


@dataclass(frozen=True)
class RankedItem:
    item: int
    item_id: str
    title: str
    score: float
    meets_constraints: bool | None  # None: the query set no constraint


@dataclass(frozen=True)
class Explanation:
    item_id: str
    title: str
    text: str
    generator: str


@dataclass(frozen=True)
class Answer:
    route: Route
    items: tuple[RankedItem, ...] = ()
    explanations: tuple[Explanation, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            **self.route.to_json(),
            "items": [asdict(i) for i in self.items],
            "explanations": [asdict(e) for e in self.explanations],
            "notes": [*self.route.notes, *self.notes],
        }


# (catalogue, user code, the history the ranking used, item) -> explanation
Explainer = Callable[[Catalog, int, np.ndarray, int], Explanation]


def minimal_explanation(catalog: Catalog, user: int, history: np.ndarray, item: int) -> Explanation:
    """Why ``item``, from facts only: the genres it shares with the recent history."""
    recent = history[-RECENT:][::-1]  # most recent first
    genres = set(catalog.genres_of[item])
    sharing = [h for h in recent if genres & set(catalog.genres_of[h])]
    title = str(catalog.titles[item])
    if sharing:
        shared = sorted(genres & {g for h in sharing for g in catalog.genres_of[h]})
        text = (
            f"{title}: {len(sharing)} of your last {len(recent)} items share a genre with it "
            f"({', '.join(shared)}), most recently {catalog.titles[sharing[0]]}."
        )
    else:
        text = (
            f"{title}: ranked by the model from your last {len(recent)} items; it shares no "
            "genre with them."
        )
    return Explanation(str(catalog.item_ids[item]), title, text, MINIMAL)


class Assistant:
    """A trained run, its catalogue and a router, answering queries for one user at a time."""

    def __init__(
        self,
        run: LoadedRun,
        router: Router,
        default_k: int = 10,
        mode: str = "filter",
        explainer: Explainer = minimal_explanation,
    ) -> None:
        require_positive_k(default_k)
        self.run = run
        self.catalog = router.catalog or Catalog.from_dataset(run.dataset)
        self.router = Router(router.classifier, self.catalog)
        self.default_k = default_k
        self.mode = mode
        self.explainer = explainer

    def ask(self, query: str, user: str) -> Answer:
        route = self.router.route(query)
        if route.intent is Intent.OUT_OF_SCOPE:
            return Answer(route, notes=("out of scope: nothing recommended or explained",))
        user_code, history, weights = user_history(self.run, user)
        notes: list[str] = []
        mention = route.slots.item
        named = named_item(route, notes)
        if route.intent is Intent.EXPLAIN:
            if mention is not None and named is None:
                return Answer(route, notes=tuple(notes))
            if named is None:
                notes.append("no item named: explaining the top recommendation")
                ranked = self._rank(route, user_code, history, weights, None, 1, notes)
                if not ranked:
                    return Answer(route, notes=tuple(notes))
                named = ranked[0].item
            explanation = self.explainer(self.catalog, user_code, history, named)
            return Answer(route, (), (explanation,), tuple(notes))
        k = route.slots.k or self.default_k
        ranked = self._rank(route, user_code, history, weights, named, k, notes)
        explanations: tuple[Explanation, ...] = ()
        if route.intent is Intent.RECOMMEND_AND_EXPLAIN:  # after the ranking is fixed
            explanations = tuple(
                self.explainer(self.catalog, user_code, history, r.item) for r in ranked
            )
        return Answer(route, tuple(ranked), explanations, tuple(notes))

    def _rank(
        self,
        route: Route,
        user: int,
        history: np.ndarray,
        weights: np.ndarray,
        seed: int | None,
        k: int,
        notes: list[str],
    ) -> list[RankedItem]:
        """Top-k with the query's constraints; a named item seeds "more like this" by
        joining the history as its most recent item (sequential models)."""
        if seed is not None:
            if getattr(self.run.model, "max_len", None) is None:
                notes.append("this model scores users, not histories: the named item is ignored")
            else:
                history = np.append(history, seed).astype(history.dtype)
                weights = np.append(weights, 1.0).astype(weights.dtype)
        meets = satisfies(self.catalog, route.slots)
        scores = apply_constraints(score_items(self.run, history, weights, user), meets, self.mode)
        top = top_k(scores, history, k)
        if meets is not None and self.mode == "filter" and len(top) < k:
            notes.append(f"only {len(top)} unseen items meet the constraints")
        return [
            RankedItem(
                item,
                str(self.catalog.item_ids[item]),
                str(self.catalog.titles[item]),
                round(score, 4),
                None if meets is None else bool(meets[item]),
            )
            for item, score in top
        ]
