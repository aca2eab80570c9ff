"""A query's genre and year slots applied to a ranking: filter, or boost.

``filter`` removes every item that misses a constraint (satisfaction is then 100 % unless
too few items qualify); ``boost`` adds a bonus to the items that meet them, so strong
matches of other kinds can still appear. An item meets a genre constraint when it has any
of the named genres, and a year constraint when its year is known and in range.
"""

from __future__ import annotations

import numpy as np
import torch

from recllm.errors import RecLLMError
from recllm.routing.catalog import Catalog
from recllm.routing.schema import Slots

MODES = ("filter", "boost")


def satisfies(catalog: Catalog, slots: Slots) -> np.ndarray | None:
    """(n_items,) bool: which items meet the slots' genre and year constraints; None when
    the slots constrain nothing."""
    if not slots.genres and slots.year_from is None and slots.year_to is None:
        return None
    ok = np.ones(len(catalog.titles), dtype=bool)
    if slots.genres:
        wanted = set(slots.genres)
        ok &= np.array([bool(wanted & set(g)) for g in catalog.genres_of])
    if slots.year_from is not None or slots.year_to is not None:
        known = catalog.years > 0
        low = slots.year_from if slots.year_from is not None else -np.inf
        high = slots.year_to if slots.year_to is not None else np.inf
        ok &= known & (catalog.years >= low) & (catalog.years <= high)
    return ok


def apply_constraints(
    scores: torch.Tensor, meets: np.ndarray | None, mode: str = "filter", bonus: float = 0.0
) -> torch.Tensor:
    """Scores with the constraints applied (a copy).

    Args:
        scores: (n_items,) model scores.
        meets: (n_items,) bool from :func:`satisfies`, or None (returned unchanged).
        mode: "filter" sets missing items to -inf; "boost" adds ``bonus`` to meeting ones
            (``bonus`` 0 means one standard deviation of the finite scores).
    """
    if mode not in MODES:
        raise RecLLMError(f"constraint mode must be one of {MODES}, got {mode!r}")
    if meets is None:
        return scores
    if meets.shape != tuple(scores.shape):
        raise RecLLMError(f"constraint mask has {meets.shape[0]} items, scores {scores.shape[0]}")
    out = scores.clone()
    mask = torch.from_numpy(meets)
    if mode == "filter":
        out[~mask] = float("-inf")
        return out
    finite = out[torch.isfinite(out)]
    step = bonus or (float(finite.std()) if finite.numel() > 1 else 1.0)
    out[mask] += step
    return out
