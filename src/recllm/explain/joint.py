"""Generation trained jointly with ranking: L_total = L_rec + w_gen L_gen.

With ``generation.weight > 0`` the training recipe builds a :class:`GenerationTask`: an
explanation generator that becomes part of the model being trained (so the optimiser,
checkpoints and resume cover it). For each training sequence of a batch it explains the
sequence's last target from the facts of its history, attributed by the preference
aggregator's attention at that step, in a freshly drawn true phrasing; the generator is
conditioned on the adapter's user vector at that step *with its gradient*, so L_gen
trains the adapter too. The best epoch's generator is saved as an explainer folder that
``recllm explain`` and ``recllm bench explain`` load like a stand-alone one.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recllm.config import run_settings_problems
from recllm.data.batching import NextItemBatch
from recllm.data.schema import Dataset
from recllm.data.splits import Split
from recllm.errors import ConfigError
from recllm.explain.conditioning import build_conditioning, targets
from recllm.explain.explainer import MANIFEST
from recllm.explain.facts import Facts, facts_for
from recllm.explain.generator import ExplanationGenerator, GeneratorConfig
from recllm.explain.phrasing import realise
from recllm.explain.vocab import Vocab, delexicalise, source_tokens, tokenize
from recllm.models.recllm import RecLLMModel
from recllm.models.sequential import RecOutput
from recllm.routing.catalog import Catalog

EXPLAINER_DIR = "explainer"


@dataclass
class GenerationConfig:
    """Joint training of the explanation generator with the recommender.

    Attributes:
        weight: w_gen of L_total = L_rec + w_gen L_gen; 0 (default) trains ranking only,
            the design's value is 0.3.
        phrasings: true sentences realised per user when the vocabulary is built.
        generator: the generator's shape (its vocabulary and input sizes are filled in).
        seed: seed of the phrasings drawn during training.
    """

    weight: float = 0.0
    phrasings: int = 3
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.weight < 0:
            problems.append(f"weight must be >= 0, got {self.weight}")
        if self.phrasings < 1:
            problems.append(f"phrasings must be >= 1, got {self.phrasings}")
        problems += run_settings_problems(self.seed)
        ConfigError.collect("generation", problems)


class GenerationTask:
    """The generator, its vocabulary and the facts it learns from, for one training run."""

    def __init__(
        self, config: GenerationConfig, model: RecLLMModel, split: Split, dataset: Dataset
    ) -> None:
        self.config = config
        self.catalog = Catalog.from_dataset(dataset)
        self.rng = random.Random(config.seed)
        self.sequences = split.sequences("train")
        train = split.train
        self.ratings = (
            train["rating"].to_numpy(dtype=float)
            if "rating" in train.columns
            else np.full(len(train), np.nan)
        )
        self.item_vectors = model.pooled[: model.n_items].detach().float().numpy()
        facts = self._final_pair_facts(model.max_len)
        texts = [self._sentence(f) for f in facts for _ in range(config.phrasings)]
        self.vocab = Vocab.build([tokenize(t) for t in texts] + [source_tokens(f) for f in facts])
        self.generator = ExplanationGenerator(
            GeneratorConfig(
                **{
                    **asdict(config.generator),
                    "vocab_size": len(self.vocab),
                    "user_dim": model.config.d_model,
                    "item_dim": model.config.meta_dim,
                }
            )
        )
        self.epoch_losses: list[float] = []

    def _final_pair_facts(self, max_len: int) -> list[Facts]:
        """Facts of each user's last training transition (for the vocabulary)."""
        facts = []
        for user in np.flatnonzero(self.sequences.lengths >= 2):
            items = self.sequences.items_of(int(user))
            start = int(self.sequences.indptr[user])
            ratings = self.ratings[start : start + len(items)]
            history = items[:-1][-max_len:]
            facts.append(
                facts_for(self.catalog, history, int(items[-1]), ratings[:-1][-len(history) :])
            )
        return facts

    def _sentence(self, facts: Facts) -> str:
        return delexicalise(realise(facts, self.rng).text, facts)

    def _window_ratings(self, user: int, n_inputs: int) -> np.ndarray:
        """Ratings of the ``n_inputs`` items before the user's last training item (the
        inputs of the "last" window the batch holds)."""
        end = int(self.sequences.indptr[user + 1]) - 1
        return self.ratings[end - n_inputs : end]

    def loss(
        self, batch: NextItemBatch, output: RecOutput, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """L_gen of explaining each sequence's last target, through the user vectors.
        The phrasings are drawn with a seed from ``generator`` (the recipe's, which its
        checkpoints restore, so a resumed run draws the same sentences)."""
        if generator is not None:
            self.rng.seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        if output.user is None or output.attention is None:
            raise ConfigError("joint generation needs a model with a preference aggregator")
        lengths = batch.mask.sum(1)
        facts = []
        for row, user in enumerate(batch.users.tolist()):
            n = int(lengths[row])
            history = batch.inputs[row, :n].numpy()
            attribution = output.attention[row, n - 1, :n].detach().float().numpy()
            item = int(batch.targets[row, n - 1])
            ratings = self._window_ratings(int(user), n)
            facts.append(facts_for(self.catalog, history, item, ratings, attribution))
        users = output.user[torch.arange(len(lengths)), lengths - 1]  # (B, d), with gradient
        cond = build_conditioning(
            self.generator.config, self.vocab, facts, users.float(), self.item_vectors
        )
        sentences = [self._sentence(f) for f in facts]
        _, loss = self.generator(
            cond, targets(self.vocab, sentences, self.generator.config.max_target)
        )
        self.epoch_losses.append(float(loss.detach()))
        return loss

    def pop_epoch_loss(self) -> float:
        """Mean L_gen since the last call (one epoch's)."""
        mean = float(np.mean(self.epoch_losses)) if self.epoch_losses else float("nan")
        self.epoch_losses = []
        return mean

    def save(self, folder: Path, run_dir: Path, extra: dict[str, Any]) -> None:
        """An explainer folder for the run (generator, vocabulary, manifest)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.generator.save_pretrained(folder)
        self.vocab.save(folder / "vocab.json")
        manifest = {
            "run_dir": str(run_dir),
            "joint": {"weight": self.config.weight, **extra},
            "vocab_size": len(self.vocab),
            "parameters": sum(p.numel() for p in self.generator.parameters()),
            "config": asdict(self.config),
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
