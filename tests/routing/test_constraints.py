"""Genre/year constraints on scores: which items meet them, filter and boost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import movie_catalog

from recllm.errors import RecLLMError
from recllm.routing.constraints import apply_constraints, satisfies
from recllm.routing.schema import Slots

CATALOG = movie_catalog()  # Toy Story, Usual Suspects, Seven, Sabrina 1954, Sabrina 1995, Star Wars


def test_satisfies_genres_any_of_and_year_ranges() -> None:
    assert satisfies(CATALOG, Slots()) is None
    comedy = satisfies(CATALOG, Slots(genres=("Comedy",)))
    assert comedy.tolist() == [True, False, False, False, True, False]
    either = satisfies(CATALOG, Slots(genres=("Crime", "Thriller")))
    assert either.tolist() == [False, True, True, False, False, False]
    old = satisfies(CATALOG, Slots(year_to=1979))
    assert old.tolist() == [False, False, False, True, False, True]
    both = satisfies(CATALOG, Slots(genres=("Comedy",), year_from=1990))
    assert both.tolist() == [True, False, False, False, True, False]


def test_filter_and_boost() -> None:
    scores = torch.tensor([0.5, 3.0, 2.0, 1.0, 0.0, 4.0])
    meets = np.array([True, False, False, False, True, False])
    filtered = apply_constraints(scores, meets, "filter")
    assert torch.isinf(filtered[~torch.from_numpy(meets)]).all()
    assert filtered[0] == 0.5 and scores[1] == 3.0  # a copy
    boosted = apply_constraints(scores, meets, "boost", bonus=10.0)
    assert boosted.tolist() == [10.5, 3.0, 2.0, 1.0, 10.0, 4.0]
    assert apply_constraints(scores, None, "filter") is scores
    with pytest.raises(RecLLMError, match="mode must be one of"):
        apply_constraints(scores, meets, "rerank")
    with pytest.raises(RecLLMError, match="constraint mask has 2 items"):
        apply_constraints(scores, meets[:2], "filter")
