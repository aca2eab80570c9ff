"""Explanation metrics against hand-computed values, the two baselines, and the
held-out / training pairs of a toy split."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import movie_catalog

from recllm.explain.baselines import RetrievalBaseline, template_reason
from recllm.explain.data import Example
from recllm.explain.facts import facts_for
from recllm.explain.faithfulness import FaithfulnessChecker
from recllm.explain.metrics import bleu4, distinct_n, rouge_l, unique_sentence_ratio

CATALOG = movie_catalog()


def test_metrics() -> None:
    same = ["it is a comedy film you will like"] * 2
    assert bleu4(same, same) == pytest.approx(1.0)
    assert rouge_l(["a b c d"], ["a b x d"]) == pytest.approx(0.75)  # LCS 3 of 4 both ways
    assert distinct_n(["a b a", "a c"], 1) == pytest.approx(3 / 5)
    assert distinct_n(["a b a", "a c"], 2) == pytest.approx(3 / 3)
    assert unique_sentence_ratio(["x", "x", "y", "z"]) == 0.75
    with pytest.raises(ValueError, match="as many references"):
        bleu4(["a"], [])


def test_template_is_always_faithful_and_retrieval_returns_a_training_text() -> None:
    history = np.array([5, 0, 1])
    checker = FaithfulnessChecker(CATALOG)
    text = template_reason(facts_for(CATALOG, history, 4))
    assert text == "Sabrina: like Toy Story, it is a comedy film."  # a genre they share
    assert checker.check(text, history, 4).faithful
    text = template_reason(facts_for(CATALOG, np.array([5, 1]), 4))  # nothing shared
    assert text.endswith("it is a comedy film, and you recently watched The Usual Suspects.")
    assert checker.check(text, np.array([5, 1]), 4).faithful
    train = [
        Example(0, 2, np.array([1, 2]), np.ones(2), "crime text", ()),
        Example(1, 0, np.array([4, 3]), np.ones(2), "comedy text", ()),
    ]
    retrieval = RetrievalBaseline(CATALOG, train)
    assert retrieval(np.array([0, 4]), 4) == "comedy text"  # a comedy after comedies
    assert retrieval(np.array([1]), 2) == "crime text"
    with pytest.raises(ValueError, match="at least one"):
        RetrievalBaseline(CATALOG, [])
