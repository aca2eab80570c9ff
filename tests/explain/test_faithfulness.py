"""Facts, reason sentences and the faithfulness checker on a small movie catalogue:
every generated sentence verifies, and every kind of false or empty claim is caught."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import movie_catalog

from recllm.explain.facts import facts_for
from recllm.explain.faithfulness import FaithfulnessChecker
from recllm.explain.phrasing import realise

CATALOG = movie_catalog()  # 0 Toy Story (Animation, Comedy, 1995), 1 The Usual Suspects
# (Crime, 1995), 2 Seven (Se7en) (Thriller, 1995), 3 Sabrina (Romance, 1954),
# 4 Sabrina (Comedy, 1995), 5 Star Wars (War, Sci-Fi, 1977)
CHECKER = FaithfulnessChecker(CATALOG)
HISTORY = np.array([5, 0, 1, 3])  # oldest first
RATINGS = np.array([5.0, 4.0, 2.0, 4.0])
ITEM = 4  # Sabrina (1995), a comedy


def test_facts_count_the_recent_history_and_prefer_attributed_items_sharing_a_genre() -> None:
    facts = facts_for(CATALOG, HISTORY, ITEM, RATINGS)
    assert facts.window == 4 and facts.genre_counts == {"Comedy": 1}
    assert facts.liked_counts == {"Comedy": 1}
    assert facts.recent[0].title == "Sabrina" and facts.attributed[0].title == "Toy Story"
    weighted = facts_for(CATALOG, HISTORY, 2, RATINGS, attribution=np.array([0.7, 0.1, 0.1, 0.1]))
    assert weighted.attributed[0].title == "Star Wars"  # no genre shared: by weight
    with pytest.raises(ValueError, match="3 ratings for 4"):
        facts_for(CATALOG, HISTORY, ITEM, RATINGS[:3])


def test_every_generated_reason_is_verified() -> None:
    rng = random.Random(0)
    for item in range(len(CATALOG.titles)):
        facts = facts_for(CATALOG, HISTORY, item, RATINGS)
        for _ in range(30):
            reason = realise(facts, rng)
            check = CHECKER.check(reason.text, HISTORY, item, RATINGS)
            assert check.faithful, (reason.text, check)
            assert len(check.claims) == len(reason.claims), reason.text


@pytest.mark.parametrize(
    ("text", "verified", "total"),
    [
        ("Why Sabrina? You gave Toy Story four stars.", 2, 2),
        ("Why Sabrina? You gave Toy Story five stars.", 1, 2),  # wrong rating
        ("Sabrina: you recently watched Seven (Se7en).", 0, 1),  # not in the history
        ("Sabrina: one of your last four films were comedy films.", 1, 1),
        ("Sabrina: two of your last four films were comedy films.", 0, 1),  # wrong count
        ("Sabrina: you rated one comedy film 4 stars or more among your last 4.", 1, 1),
        ("Sabrina: it is a horror film.", 0, 1),  # wrong genre
        ("Sabrina: it came out in 1954.", 0, 1),  # the other Sabrina's year
        ("Like Toy Story, it is a comedy film.", 2, 2),
        ("Like The Usual Suspects, it is a comedy film.", 1, 2),  # not a crime film
        ("You will love it, trust me.", 0, 1),  # nothing checkable: a failure
        ("Sabrina: it is a comedy film. It is great fun.", 1, 2),  # one vague sentence
        # after a cited film, "it" may mean that film: the claim must hold for both
        ("Sabrina: you saw Toy Story, and it came out in 1995.", 3, 3),  # both 1995
        ("Sabrina: you saw Star Wars, and it came out in 1995.", 2, 3),  # Star Wars: 1977
        ("Sabrina: you saw Star Wars. Also, it is a comedy film.", 2, 3),
        ("Sabrina: you saw Toy Story, and it is a comedy film.", 3, 3),  # both comedies
        ("Sabrina: you saw Star Wars, and Sabrina came out in 1995.", 2, 2),  # named
        ("Sabrina: it came out in 1995, and you saw Star Wars.", 2, 2),  # pronoun first
    ],
)
def test_false_or_vague_claims_fail(text: str, verified: int, total: int) -> None:
    check = CHECKER.check(text, HISTORY, ITEM, RATINGS)
    assert (check.verified, check.total) == (verified, total)
    assert check.faithful == (verified == total)


def test_slots_round_trip_and_an_empty_slot_writes_nothing() -> None:
    from recllm.explain.vocab import delexicalise, relexicalise, tokenize

    facts = facts_for(CATALOG, np.array([0]), ITEM, np.array([4.0]))  # one cited film
    text = "Why Sabrina? You gave Toy Story four stars."
    assert delexicalise(text, facts) == "Why [ITEM] ? You gave [H1] four stars."
    assert relexicalise(tokenize(delexicalise(text, facts)), facts) == text
    assert relexicalise(["like", "[H3]", "it", "is"], facts) == "like it is"


def test_a_rating_claim_about_an_unrated_item_is_false_not_an_error() -> None:
    """A history given without ratings (NaN) cannot back a claim of stars."""
    unrated = np.array([5.0, np.nan, 2.0, 4.0])  # Toy Story's rating unknown
    check = CHECKER.check("Why Sabrina? You gave Toy Story four stars.", HISTORY, ITEM, unrated)
    assert not check.faithful and sum(ok for _, ok in check.claims) == 1
