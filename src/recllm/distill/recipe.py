"""``recllm distill``: train a student from a finished teacher run.

The run is an ordinary training run of a small RecLLM-Adapter (the training loop,
checkpoints, resume, early stopping and evaluator are :class:`TrainRecipe`'s) with
three additions: the student is initialised from the teacher where shapes allow, it
first learns on sequences sampled from the teacher (pre-distillation), and its loss is

    L = L_rec + kl_weight * T^2 KL(p_teacher || p_student) + attention_weight * L_attn

with both distillation terms counted at item positions only (the mask). Teacher
outputs come from a cache built once under the teacher run (``distill-cache/``).
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from recllm import distributed
from recllm.config import to_dict
from recllm.data.batching import (
    BucketBatchSampler,
    NextItemBatch,
    NextItemDataset,
    SequenceCollator,
    to_device,
)
from recllm.distill.config import DistillConfig
from recllm.distill.losses import attention_kl, head_averaged_item_block, score_kl
from recllm.distill.student import init_from_teacher, layer_map, n_layers, student_train_config
from recllm.distill.synthetic import sample_sequences
from recllm.distill.teacher import CachedTeacher, LiveTeacher, TeacherSpec, build_cache, cache_key
from recllm.errors import RecLLMError
from recllm.eval.evaluator import EvalResult
from recllm.models.losses import LossWeights, total_loss
from recllm.models.recllm import RecLLMModel
from recllm.progress import progress_bar
from recllm.recipes import parallel
from recllm.recipes.inference import load_run
from recllm.recipes.models import TrainableModel
from recllm.recipes.train import TrainRecipe, optimiser_step, require_finite

log = logging.getLogger(__name__)

Teacher = LiveTeacher | CachedTeacher


class DistillRecipe(TrainRecipe):
    """One distillation run: ``setup()`` -> ``train()`` -> ``test_best()`` -> ``cleanup()``."""

    def __init__(
        self,
        config: DistillConfig,
        resume: bool = False,
        overwrite: bool = False,
        data_dir: Path | None = None,
    ) -> None:
        self.distill_config = config
        progress = config.trainer.progress
        self.teacher_run = load_run(Path(config.teacher), data_dir, progress=progress)
        if not isinstance(self.teacher_run.model, RecLLMModel):
            raise RecLLMError(f"the teacher {config.teacher} is not a RecLLM-Adapter run")
        student_config = student_train_config(self.teacher_run.config, config)
        if data_dir:
            student_config.data.data_dir = str(data_dir)
        super().__init__(student_config, resume=resume, overwrite=overwrite)
        self.teacher: Teacher | None = None
        self.cache_seconds = 0.0

    @property
    def teacher_model(self) -> RecLLMModel:
        model = self.teacher_run.model
        assert isinstance(model, RecLLMModel)
        return model

    # -- setup -----------------------------------------------------------------
    def _build_model(self) -> TrainableModel:
        student = super()._build_model()
        assert isinstance(student, RecLLMModel)
        self.layer_map = layer_map(self.distill_config.student, n_layers(self.teacher_model))
        self.copied: list[str] = []
        if self.distill_config.student.init == "teacher":
            self.copied = init_from_teacher(student, self.teacher_model, self.layer_map)
            log.info("student: %d tensors initialised from the teacher", len(self.copied))
        return student

    def setup(self) -> None:
        super().setup()
        try:
            self.teacher_run.model.to(self.world.device)
            assert isinstance(self.train_data, NextItemDataset)
            if self.distill_config.distill.uses_teacher:
                self.teacher = self._teacher_for(self.train_data, "train")
            if self.rank == 0:
                (self.output_dir / "distill_config.json").write_text(
                    json.dumps(to_dict(self.distill_config), indent=2)
                )
        except BaseException:
            self.cleanup(failed=True)  # no partial run folder, lock released
            raise

    def _check_resume_config(self) -> None:
        """The student's training config and the distillation settings (teacher, loss
        weights, pre-distillation) must both be those the run was started with."""
        super()._check_resume_config()
        self._require_same_config(
            self.output_dir / "distill_config.json", DistillConfig, self.distill_config
        )

    def _spec(self) -> TeacherSpec:
        d = self.distill_config.distill
        layers = tuple(self.layer_map) if d.attention_weight > 0 else ()
        return TeacherSpec(top_k=d.top_k, temperature=d.temperature, layers=layers)

    def _teacher_for(self, dataset: NextItemDataset, name: str) -> Teacher:
        """The live teacher, or its outputs on ``dataset`` from the cache (built if new)."""
        live = LiveTeacher(self.teacher_model, self._spec())
        if not self.distill_config.distill.cache:
            return live
        teacher_dir = Path(self.distill_config.teacher)
        key = cache_key(_teacher_id(teacher_dir), dataset, live.spec)
        folder = teacher_dir / "distill-cache" / f"{name}-{key}"
        if not distributed.broadcast_object(folder.is_dir()):  # rank 0 decides for all
            started = time.perf_counter()
            progress = self.config.trainer.progress and self.world.is_main
            build_cache(
                live,
                dataset,
                folder,
                shard_sequences=self.distill_config.distill.cache_shard,
                progress=progress,
                world=self.world,
            )
            self.cache_seconds += time.perf_counter() - started
            log.info("teacher outputs cached in %s", folder)
        return CachedTeacher(folder, dataset.sequences.n_users)

    # -- training ----------------------------------------------------------------
    def train(self, until_epoch: int | None = None) -> dict[str, Any]:
        pre = self.distill_config.pre
        if pre.epochs and self.state["epoch"] == 0 and "pre" not in self.state:
            self.state["pre"] = self._pre_distill()
        return super().train(until_epoch)

    def _pre_distill(self) -> dict[str, Any]:
        """Stage 1: distillation terms only, on sequences sampled from the teacher."""
        pre, t = self.distill_config.pre, self.config.trainer
        started = time.perf_counter()
        sequences = sample_sequences(
            self.teacher_model,
            self.split.sequences("train"),
            n_sequences=pre.sequences or len(self.train_data),
            length=pre.length,
            temperature=pre.sample_temperature,
            seed=t.seed,
            progress=t.progress,
        )
        student = self.model
        assert isinstance(student, RecLLMModel)
        dataset = NextItemDataset(sequences, student.max_len, "last")
        teacher = self._teacher_for(dataset, "pre")
        sampler = BucketBatchSampler(
            dataset.lengths,
            t.batch_size,
            seed=t.seed,
            rank=self.world.rank,
            world_size=self.world.world_size,
        )
        loader = DataLoader(
            dataset, batch_sampler=sampler, collate_fn=SequenceCollator(student.pad_id)
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=pre.lr, weight_decay=t.weight_decay)
        losses = []
        self.model.train()
        for epoch in range(pre.epochs):
            sampler.set_epoch(epoch)
            total = 0.0
            bar = progress_bar(
                loader,
                desc=f"pre-distillation {epoch + 1}",
                enabled=t.progress and self.world.is_main,
            )
            for step, batch in enumerate(bar, start=1):
                batch = to_device(batch, self.world.device)
                loss = optimiser_step(
                    optimizer,
                    params,
                    partial(self.step_module, self._loss, batch, teacher, False),
                    t,
                    self.world,
                    parallel.share_of(batch, self.world),
                )
                require_finite(
                    loss,
                    "pre-distillation loss",
                    f"pre-distillation epoch {epoch + 1}, step {step}",
                )
                total += loss
            losses.append(total / max(len(loader), 1))
            if self.world.is_main:
                log.info("pre-distillation epoch %d: loss %.4f", epoch + 1, losses[-1])
        return {
            "sequences": len(dataset),
            "length": pre.length,
            "epochs": pre.epochs,
            "loss": losses,
            "seconds": time.perf_counter() - started,
        }

    def _batch_loss(self, batch: NextItemBatch) -> torch.Tensor:
        return self._loss(batch, self.teacher, with_rec=True)

    def _loss(self, batch: NextItemBatch, teacher: Teacher | None, with_rec: bool) -> torch.Tensor:
        """L_rec (if asked) + the distillation terms against ``teacher`` (if any)."""
        d, t = self.distill_config.distill, self.config.trainer
        model = self.model
        assert isinstance(model, RecLLMModel)
        want_maps = teacher is not None and d.attention_weight > 0
        output = model(
            batch.inputs,
            batch.weights,
            batch.mask,
            batch.targets if with_rec else None,
            loss=t.loss,
            n_negatives=t.n_negatives,
            generator=self.generator,
            output_attentions=want_maps,
        )
        if teacher is None:
            assert output.loss is not None
            return output.loss
        target = teacher(batch)
        # the recommendation-knowledge mask: item positions only (off: every position)
        positions = batch.mask if d.mask else torch.ones_like(batch.mask)
        scores = output.queries[positions] @ model.item_embeddings().T  # (P, N)
        indices = target.indices[positions] if target.indices is not None else None
        kl = score_kl(
            scores, target.logits[positions], indices, target.lse[positions], d.temperature
        )
        loss = total_loss(
            rec=output.loss, distill=kl, weights=LossWeights(gen=0.0, distill=d.kl_weight)
        )
        if want_maps:
            assert output.backbone_attentions is not None
            n_prompt = len(model.prompt_ids)
            maps = [head_averaged_item_block(m, n_prompt) for m in output.backbone_attentions]
            loss = loss + d.attention_weight * attention_kl(maps, target.maps, positions)
        return loss

    # -- results -------------------------------------------------------------------
    def results(self, test: EvalResult) -> dict[str, Any]:
        record = super().results(test)
        record["distill"] = {
            "teacher": self.distill_config.teacher,
            "teacher_parameters": sum(p.numel() for p in self.teacher_model.parameters()),
            "layer_map": self.layer_map,
            "initialised_from_teacher": len(self.copied),
            "pre_distillation": self.state.get("pre"),
            "teacher_cache_seconds": round(self.cache_seconds, 1),
            "config": to_dict(self.distill_config),
        }
        return record


def _teacher_id(run_dir: Path) -> str:
    """Identity of a teacher's weights: its best/ files' names, sizes and mtimes."""
    best = run_dir / "best"
    parts = [
        [p.name, p.stat().st_size, p.stat().st_mtime_ns]
        for p in sorted(best.iterdir())
        if p.is_file()
    ]
    return json.dumps(parts)
