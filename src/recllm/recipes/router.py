"""``recllm train-router``: generate queries, fine-tune the teacher, distil the student.

The teacher is the whole default backbone with an intent head, fine-tuned on generated
queries; the student keeps every other teacher layer (DistilBERT's initialisation) and
learns from the labels and from the teacher's softened distribution. The student serves
(it is about twice as fast); both are saved, with ``router.json`` naming the one in use and
recording the data, the held-out accuracy of both and the provenance.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from recllm.config import run_settings_problems
from recllm.errors import ConfigError
from recllm.progress import progress_bar
from recllm.routing.catalog import Catalog
from recllm.routing.classifier import ClassifierConfig, IntentClassifier
from recllm.routing.generate import LabelledQuery, generate
from recllm.routing.router import ROUTER_FILE

log = logging.getLogger(__name__)


@dataclass
class RouterTrainConfig:
    """How the router is trained."""

    output_dir: str = "runs/router"
    catalogs: list[str] = field(default_factory=lambda: ["ml-100k", "amazon-beauty"])
    data_dir: str | None = None
    per_intent: int = 1200  # generated queries per intent (over all catalogues)
    valid_share: float = 0.1  # generated queries held out to report accuracy
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    student_layers: list[int] = field(default_factory=lambda: [0, 2, 4])  # []: teacher serves
    epochs: int = 2
    student_epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    student_lr: float = 1e-4
    temperature: float = 2.0  # softening of the teacher's distribution for distillation
    distill_weight: float = 0.5  # share of the distillation term in the student's loss
    seed: int = 0
    num_threads: int | None = None
    progress: bool = True
    schedule: str = "full"  # a label saved with the router: "full", or the quick start's "short"

    def __post_init__(self) -> None:
        problems = []
        if not self.catalogs:
            problems.append("catalogs must name at least one dataset")
        if self.per_intent < 10:
            problems.append(f"per_intent must be >= 10, got {self.per_intent}")
        if not 0.0 < self.valid_share < 0.5:
            problems.append(f"valid_share must be in (0, 0.5), got {self.valid_share}")
        for name in ("epochs", "student_epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.temperature <= 0 or not 0.0 <= self.distill_weight <= 1.0:
            problems.append("temperature must be > 0 and distill_weight in [0, 1]")
        if not (0 < self.lr < math.inf and 0 < self.student_lr < math.inf):
            problems.append(
                f"lr and student_lr must be finite and > 0, got {self.lr}, {self.student_lr}"
            )
        problems += run_settings_problems(self.seed, self.num_threads)
        ConfigError.collect("router training", problems)


def load_catalogs(names: list[str], data_dir: Path | None) -> list[Catalog]:
    from recllm.data.registry import load_dataset

    return [Catalog.from_dataset(load_dataset(name, data_dir)) for name in names]


def train_router(config: RouterTrainConfig) -> dict[str, object]:
    """Train and save teacher and student; return the record written to ``router.json``."""
    from recllm.provenance import provenance, write_json

    started = provenance()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    data_dir = Path(config.data_dir) if config.data_dir else None
    catalogs = load_catalogs(config.catalogs, data_dir)
    queries = generate(catalogs, config.per_intent, config.seed)
    n_valid = int(len(queries) * config.valid_share)
    valid, train = queries[:n_valid], queries[n_valid:]
    labels = config.classifier.labels
    out = Path(config.output_dir)

    teacher = IntentClassifier.build(config.classifier)
    begin = time.perf_counter()
    _fit(teacher, None, train, labels, config, config.epochs, config.lr, "teacher")
    record: dict[str, object] = {
        "teacher": {
            "layers": teacher.n_layers,
            "valid_accuracy": accuracy(teacher, valid, labels),
            "train_seconds": round(time.perf_counter() - begin, 1),
        }
    }
    teacher.save_pretrained(out / "teacher")
    serving = "teacher"
    if config.student_layers:
        student = teacher.shrink(config.student_layers)
        begin = time.perf_counter()
        _fit(
            student,
            teacher,
            train,
            labels,
            config,
            config.student_epochs,
            config.student_lr,
            "student",
        )
        record["student"] = {
            "layers": config.student_layers,
            "valid_accuracy": accuracy(student, valid, labels),
            "train_seconds": round(time.perf_counter() - begin, 1),
        }
        student.save_pretrained(out / "student")
        serving = "student"
    record = {
        "serving": serving,
        "schedule": config.schedule,
        "catalogs": config.catalogs,
        "generated": {"train": len(train), "valid": len(valid), "per_intent": config.per_intent},
        **record,
        "config": asdict(config),
        **started,
    }
    write_json(out / ROUTER_FILE, record)
    return record


def _fit(
    model: IntentClassifier,
    teacher: IntentClassifier | None,
    data: list[LabelledQuery],
    labels: list[str],
    config: RouterTrainConfig,
    epochs: int,
    lr: float,
    name: str,
) -> None:
    """Cross-entropy on the labels, plus KL to the teacher's softened output if given."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    index = {label: i for i, label in enumerate(labels)}
    rng = random.Random(config.seed)
    t = config.temperature
    for epoch in range(1, epochs + 1):
        model.train()
        order = list(data)
        rng.shuffle(order)
        batches = [
            order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)
        ]
        bar = progress_bar(batches, desc=f"{name} epoch {epoch}/{epochs}", enabled=config.progress)
        for batch in bar:
            inputs = model.tokenize([q.text for q in batch])
            target = torch.tensor([index[q.intent.value] for q in batch])
            logits = model(**inputs)  # (B, n_labels)
            loss = F.cross_entropy(logits, target)
            if teacher is not None:
                with torch.no_grad():
                    teacher.eval()
                    soft = F.softmax(teacher(**inputs) / t, dim=-1)
                kl = F.kl_div(F.log_softmax(logits / t, dim=-1), soft, reduction="batchmean")
                loss = (1 - config.distill_weight) * loss + config.distill_weight * kl * t * t
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.4f}")
        log.info("%s epoch %d: last batch loss %.4f", name, epoch, loss.item())


def accuracy(model: IntentClassifier, data: list[LabelledQuery], labels: list[str]) -> float:
    """Share of queries whose most likely intent is their label."""
    correct = 0
    for i in range(0, len(data), 64):
        batch = data[i : i + 64]
        predicted = model.predict([q.text for q in batch]).argmax(-1).tolist()
        correct += sum(labels[p] == q.intent.value for p, q in zip(predicted, batch, strict=True))
    return round(correct / max(1, len(data)), 4)
