"""Review explanations: sentences, the feature lexicon from training reviews only, the
extracted explanation sentence, the feature checker and the review baselines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import TOY_FEATURES, write_toy_reviews

from recllm.data.registry import load_dataset
from recllm.data.splits import Split
from recllm.data.splits import split as make_split
from recllm.errors import RecLLMError
from recllm.explain.baselines import ReviewRetrieval, template_reason
from recllm.explain.reviews import ReviewCorpus, review_examples, sentences


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    folder = write_toy_reviews(tmp_path_factory.mktemp("reviews") / "mi")
    return make_split(load_dataset(str(folder)))


def feature_of(split: Split, item: int) -> str:
    code = int(str(split.dataset.items["item_id"].iloc[item])[1:])
    return TOY_FEATURES[code % len(TOY_FEATURES)]


def test_sentences_split_also_without_a_space() -> None:
    assert sentences("Works. Good cable.It hums! Really? yes") == [
        "Works.",
        "Good cable.",
        "It hums!",
        "Really?",
        "yes",
    ]


def test_each_item_gets_its_own_feature_and_sentence(split: Split) -> None:
    corpus = ReviewCorpus(split, min_reviews=1)
    for item, features in corpus.item_features.items():
        assert features[0] == feature_of(split, item)  # generic words score ~0
        assert "solid" not in features and "price" not in features
    item = int(split.train["item"].iloc[0])
    found = corpus.explanation(str(split.train["review"].iloc[0]), item)
    assert found is not None and found.feature == feature_of(split, item)
    assert found.sentence == f"The {found.feature} feels solid and does its job well."
    assert corpus.explanation("Too short pedal.", item) is None  # under 5 words
    assert corpus.explanation("A generic sentence about nothing in particular.", item) is None


def test_held_out_reviews_are_not_read_for_the_lexicon(split: Split) -> None:
    test = split.test.copy()
    test.loc[test.index[0], "review"] = "The zanzibar knob works."  # one held-out review
    corpus = ReviewCorpus(dataclasses.replace(split, test=test), min_reviews=1)
    assert "zanzibar" not in corpus.lexicon
    # the same review in training makes it a feature of its item: the check can fail
    train = pd.concat([split.train, test.iloc[:1]], ignore_index=True)
    assert (
        "zanzibar" in ReviewCorpus(dataclasses.replace(split, train=train), min_reviews=1).lexicon
    )


def test_review_examples_count_what_they_leave_out(split: Split) -> None:
    corpus = ReviewCorpus(split, min_reviews=1)
    train, skipped = review_examples(corpus, "train")
    users = split.train["user"].nunique()
    assert len(train) + skipped == len(split.train) - users  # each user's first has no history
    held, left_out = review_examples(corpus, "held_out")
    assert len(held) + left_out == 2 * split.n_users
    for example in held[:5]:
        assert feature_of(split, example.item) in example.text
    with pytest.raises(ValueError, match="stage"):
        review_examples(corpus, "test")


def test_checker_verifies_the_items_features(split: Split) -> None:
    corpus = ReviewCorpus(split, min_reviews=1)
    item = int(split.train["item"].iloc[0])
    own = feature_of(split, item)
    other = next(f for f in TOY_FEATURES if f != own)
    history = np.array([0])
    assert corpus.check(f"The {own} is great.", history, item).faithful
    mixed = corpus.check(f"The {own} is great. The {other} is not.", history, item)
    assert (mixed.total, mixed.verified) == (2, 1)
    vague = corpus.check("It is great.", history, item)
    assert vague.total == 1 and not vague.faithful  # nothing checkable is a failure


def test_review_baselines(split: Split) -> None:
    corpus = ReviewCorpus(split, min_reviews=1)
    train, _ = review_examples(corpus, "train")
    facts = [corpus.facts(e.user, e.item) for e in train]
    assert template_reason(facts[0]) == f"The {feature_of(split, train[0].item)} works well."
    retrieval = ReviewRetrieval(facts, [e.text for e in train])
    assert feature_of(split, train[3].item) in retrieval(facts[3])  # same item, same feature
    with pytest.raises(ValueError, match="one training sentence"):
        ReviewRetrieval(facts, [])


def test_a_dataset_without_reviews_is_refused(tmp_path: Path) -> None:
    from helpers import write_toy_movielens

    movielens = make_split(load_dataset(str(write_toy_movielens(tmp_path / "ml"))))
    with pytest.raises(RecLLMError, match="no 'review' column"):
        ReviewCorpus(movielens)
