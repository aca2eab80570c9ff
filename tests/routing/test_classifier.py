"""The intent classifier on a tiny random BERT: shapes, shrinking, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import save_tiny_bert

from recllm.errors import ConfigError, RecLLMError
from recllm.routing.classifier import ClassifierConfig, IntentClassifier


def tiny_classifier(tmp_path: Path) -> IntentClassifier:
    folder = save_tiny_bert(tmp_path / "tiny-bert")
    return IntentClassifier.build(ClassifierConfig(backbone=str(folder), max_length=16))


def test_forward_predict_and_round_trip(tmp_path: Path) -> None:
    model = tiny_classifier(tmp_path)
    inputs = model.tokenize(["why fargo", "recommend three comedies please"])
    assert model(**inputs).shape == (2, 4)
    probs = model.predict(["why fargo", "hello"])
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    model.save_pretrained(tmp_path / "saved")
    loaded = IntentClassifier.from_pretrained(tmp_path / "saved")
    torch.testing.assert_close(loaded.predict(["why fargo", "hello"]), probs)


def test_shrink_keeps_the_chosen_layers(tmp_path: Path) -> None:
    model = tiny_classifier(tmp_path)
    student = model.shrink([1])
    assert student.n_layers == 1 and model.n_layers == 2
    torch.testing.assert_close(
        student.encoder.encoder.layer[0].state_dict(), model.encoder.encoder.layer[1].state_dict()
    )
    with pytest.raises(ConfigError, match=r"subset of 0\.\.1"):
        model.shrink([5])


def test_bad_config_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_length"):
        ClassifierConfig(max_length=2)
    with pytest.raises(RecLLMError, match="not a saved intent classifier"):
        IntentClassifier.from_pretrained(tmp_path)
