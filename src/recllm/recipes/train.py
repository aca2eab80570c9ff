"""Training recipe of RecLLM-Adapter: setup() -> train() -> evaluate() -> cleanup().

AdamW with linear warmup and cosine decay, gradient clipping, length-bucketed batches,
validation every ``eval_every`` epochs with early stopping on NDCG@10, a checkpoint
every epoch (safetensors + JSON) that ``resume`` continues exactly, TensorBoard scalars,
and a results JSON with the test metrics of the best validation epoch.

Under ``torchrun`` the same loop trains data-parallel (:mod:`recllm.recipes.parallel`:
DDP, or FSDP with ``trainer.strategy: fsdp``): every rank trains on its share of each
global batch, evaluates its share of the users, and resumes; rank 0 alone writes
checkpoints (under FSDP every rank writes its shards), scalars, progress and results.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from recllm import distributed
from recllm.config import from_dict, run_settings_problems, to_dict
from recllm.data.batching import WINDOW_MODES, BucketBatchSampler, to_device
from recllm.data.identity import catalogue_identity, check_identity, write_identity
from recllm.data.preprocess import PreprocessConfig, preprocess
from recllm.data.registry import load_dataset
from recllm.data.splits import Split, SplitConfig, split
from recllm.data.text import item_texts
from recllm.errors import ConfigError, RecLLMError
from recllm.eval.evaluator import EvalConfig, EvalResult, evaluate, require_targets
from recllm.explain.joint import EXPLAINER_DIR, GenerationConfig, GenerationTask
from recllm.fsutil import atomic_folder, damaged_file_errors, write_errors
from recllm.models.adapter.config import AdapterConfig
from recllm.models.backbone import Backbone, BackboneConfig, load_backbone
from recllm.models.item_encoder import ItemEncodings, encode_items
from recllm.models.lightgcn import CFConfig
from recllm.models.losses import REC_LOSSES, LossWeights, total_loss
from recllm.models.recllm import RecLLMModel, catalogue_hash
from recllm.models.sasrec import SASRecConfig
from recllm.progress import progress_bar
from recllm.recipes import parallel
from recllm.recipes.checkpoint import (
    load_latest_intact,
    prune_checkpoints,
    rng_states,
    save_checkpoint,
)
from recllm.recipes.model_names import CF_MODELS, MODEL_NAMES
from recllm.recipes.models import (
    TrainableModel,
    batch_loss,
    build_model,
    load_model,
    make_scorer,
    needs_backbone,
    saved_model_marker,
    sequence_output,
    training_data,
)
from recllm.recipes.run_folder import RunFolder, has_run
from recllm.recipes.sharded_checkpoint import save_sharded

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Which dataset, and how it is cleaned and split."""

    dataset: str = "ml-100k"
    data_dir: str | None = None
    cache_dir: str | None = None
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass
class EncoderConfig:
    """How item texts are encoded once by the backbone (cached on disk).

    ``backbone``: the language model that encodes the texts when it is not the model's
    own backbone (a distillation student reads the metadata embeddings its teacher's
    pretrained backbone made, so new items need no student retraining); None: the
    model's backbone."""

    n_tokens: int = 8
    max_length: int = 64
    batch_size: int = 64
    bf16: bool = False
    backbone: BackboneConfig | None = None

    def __post_init__(self) -> None:
        problems = [
            f"{k} must be >= 1, got {v}"
            for k, v in vars(self).items()
            if k not in ("bf16", "backbone") and v < 1
        ]
        ConfigError.collect("encoder", problems)


@dataclass
class TrainerConfig:
    """Optimisation and loop settings.

    Attributes:
        loss: ``"bpr"`` (sampled negatives, the design's choice), ``"ce"`` (full softmax),
            ``"bce"`` (sampled negatives, binary: the original SASRec objective) or
            ``"sampled_ce"`` (softmax over ``n_negatives`` negatives shared by the batch).
        n_negatives: negatives per position (``bpr``, ``bce``) or per batch (``sampled_ce``).
        epochs: maximum epochs; early stopping may end sooner.
        batch_size: sequences per batch (length-bucketed).
        lr, weight_decay: AdamW settings.
        backbone_lr: learning rate of the language model's trainable weights (None: ``lr``).
            A fully unfrozen pretrained backbone usually needs a far smaller step than the
            freshly initialised adapter beside it; the schedule scales both alike.
        warmup_ratio: share of steps with linear warmup before the cosine decay.
        grad_clip: max gradient norm (0 disables clipping).
        eval_every: validate every N epochs.
        patience: stop after this many validations without a better NDCG@10.
        seed: seed of everything random (sampler, negatives, dropout, init).
        num_threads: torch threads (None: torch's default).
        eval_batch_size: users scored at once during evaluation.
        bf16: bf16 autocast for the forward pass on CPU.
        progress: progress bars.
        tensorboard: write TensorBoard scalars under ``output_dir/tensorboard``.
        windows: ``"last"``: sequential models train on each user's last ``max_len + 1``
            items; ``"all"``: on every window of a long history, so no transition is
            left out (more steps per epoch).
        keep_checkpoints: newest per-epoch checkpoints kept on disk (0: all); resuming
            needs only the newest, and the best weights are kept apart in ``best/``.
        strategy: under ``torchrun``, ``"ddp"`` (a replica per process, gradients
            averaged) or ``"fsdp"`` (FSDP2: weights, gradients and optimiser states
            sharded over the processes, bf16 weights when ``bf16``; checkpoints sharded
            through ``torch.distributed.checkpoint``). One process ignores it.
        device: ``"cpu"``, ``"cuda"`` (each process its ``LOCAL_RANK``'s GPU) or
            ``"auto"`` (a GPU when there is one); the process group's backend follows
            (NCCL on GPUs, gloo on CPUs).
    """

    loss: Literal["bpr", "ce", "bce", "sampled_ce"] = "bpr"
    n_negatives: int = 1
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    backbone_lr: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    grad_clip: float = 1.0
    eval_every: int = 1
    patience: int = 3
    seed: int = 0
    num_threads: int | None = None
    eval_batch_size: int = 256
    bf16: bool = False
    progress: bool = True
    tensorboard: bool = True
    keep_checkpoints: int = 2
    windows: str = "last"
    strategy: str = "ddp"
    device: str = "cpu"

    def __post_init__(self) -> None:
        problems = []
        if self.windows not in WINDOW_MODES:
            problems.append(f"windows must be one of {WINDOW_MODES}, got {self.windows!r}")
        if self.strategy not in parallel.STRATEGIES:
            problems.append(f"strategy must be one of {parallel.STRATEGIES}, got {self.strategy!r}")
        if self.device not in distributed.DEVICES:
            problems.append(f"device must be one of {distributed.DEVICES}, got {self.device!r}")
        if self.keep_checkpoints < 0:
            problems.append(f"keep_checkpoints must be >= 0, got {self.keep_checkpoints}")
        if self.loss not in REC_LOSSES:
            problems.append(f"loss must be one of {', '.join(REC_LOSSES)}, got {self.loss!r}")
        for name in (
            "n_negatives",
            "epochs",
            "batch_size",
            "eval_every",
            "patience",
            "eval_batch_size",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        # "not (x > 0)" rather than "x <= 0": NaN fails every comparison
        if not 0 < self.lr < math.inf:
            problems.append(f"lr must be a finite number > 0, got {self.lr}")
        if self.backbone_lr is not None and not 0 < self.backbone_lr < math.inf:
            problems.append(f"backbone_lr must be > 0 (or null for lr), got {self.backbone_lr}")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        for name in ("grad_clip", "weight_decay"):
            if not 0 <= getattr(self, name) < math.inf:
                problems.append(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        problems += run_settings_problems(self.seed, self.num_threads)
        ConfigError.collect("trainer", problems)


@dataclass
class TrainConfig:
    """Everything a training run needs; loaded from YAML with ``key=value`` overrides.

    ``model`` picks what trains: ``recllm-adapter`` (uses ``backbone``, ``adapter``,
    ``encoder``) or a baseline: ``sasrec`` (uses ``sasrec``), ``bpr-mf`` or ``lightgcn``
    (use ``cf``). Data, trainer and evaluation are shared."""

    output_dir: str = "runs/default"
    model: str = "recllm-adapter"
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    sasrec: SASRecConfig = field(default_factory=SASRecConfig)
    cf: CFConfig = field(default_factory=CFConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def __post_init__(self) -> None:
        problems = []
        if self.model not in MODEL_NAMES:
            problems.append(f"model must be one of {MODEL_NAMES}, got {self.model!r}")
        if self.generation.weight > 0 and self.model != "recllm-adapter":
            problems.append(
                "generation.weight > 0 (joint explanation training) needs model recllm-adapter"
            )
        if self.trainer.strategy == "fsdp" and (
            self.model != "recllm-adapter" or self.generation.weight > 0
        ):
            problems.append(
                "trainer.strategy fsdp shards a language model: it needs model "
                "recllm-adapter and generation.weight 0 (use ddp for the others)"
            )
        if self.generation.weight > 0 and self.trainer.windows != "last":
            problems.append("generation.weight > 0 needs trainer.windows 'last'")
        ConfigError.collect("config", problems)


@dataclass
class Pipeline:
    """The data and frozen inputs a config describes: split, backbone, item encodings
    (the last two None for models that use no language model)."""

    split: Split
    backbone: Backbone | None
    encodings: ItemEncodings | None
    catalogue: str


def build_pipeline(
    config: TrainConfig,
    progress: bool = True,
    data_dir: Path | None = None,
    with_backbone: bool | None = None,
    world: distributed.World | None = None,
) -> Pipeline:
    """Load, preprocess and split the data, load the backbone, encode the items (cached).

    Training and inference both call this, so a saved run is always rebuilt exactly as
    it was trained. ``with_backbone`` (default: whether ``config.model`` uses one) says
    whether to load the language model and encode the items. ``world``: under
    ``torchrun``, rank 0 fills the data cache first, and the ranks share the encoding."""
    from recllm import paths

    source = data_dir or (Path(config.data.data_dir) if config.data.data_dir else None)
    cache_dir = Path(config.data.cache_dir) if config.data.cache_dir else None
    with distributed.main_first(world):
        dataset = preprocess(
            load_dataset(config.data.dataset, source, cache_dir), config.data.preprocess
        )
    texts = item_texts(dataset)
    data_split = split(dataset, config.data.split)
    if with_backbone is None:
        with_backbone = needs_backbone(config.model)
    if not with_backbone:
        return Pipeline(data_split, None, None, catalogue_hash(texts))
    backbone = load_backbone(config.backbone)
    text_encoder = load_backbone(config.encoder.backbone) if config.encoder.backbone else backbone
    encodings = encode_items(
        text_encoder,
        texts,
        n_tokens=config.encoder.n_tokens,
        max_length=config.encoder.max_length,
        batch_size=config.encoder.batch_size,
        cache_dir=paths.cache_dir(cache_dir),
        progress=progress,
        bf16=config.encoder.bf16,
        world=world,
    )
    return Pipeline(data_split, backbone, encodings, catalogue_hash(texts))


def warmup_cosine(total_steps: int, warmup_steps: int):
    """LR multiplier: linear warmup to 1, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def parameter_groups(model: torch.nn.Module, trainer: TrainerConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: trainable weights, with the backbone's apart at
    ``trainer.backbone_lr`` when that is set."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if trainer.backbone_lr is None:
        return [{"params": [p for _, p in trainable]}]
    backbone = [p for n, p in trainable if n.startswith("backbone.")]
    if not backbone:
        raise ConfigError(
            "trainer.backbone_lr is set but the model has no trainable backbone weights "
            "(backbone.finetune is frozen, or the model has no language model)"
        )
    rest = [p for n, p in trainable if not n.startswith("backbone.")]
    groups: list[dict[str, Any]] = [
        {"params": rest},
        {"params": backbone, "lr": trainer.backbone_lr},
    ]
    return [g for g in groups if g["params"]]


def optimiser_step(
    optimizer: torch.optim.Optimizer,
    params: Iterable[torch.nn.Parameter],
    batch_loss: Callable[[], torch.Tensor],
    trainer: TrainerConfig,
    world: distributed.World | None = None,
    share: float = 1.0,
) -> float:
    """One optimisation step, the same in every stage that trains a model: the loss under
    bf16 autocast (when on), backward, gradient clipping (when on), step.

    Several processes: ``share`` is this rank's share of the global batch
    (:func:`recllm.recipes.parallel.share_of`); the loss is weighted so that the
    gradients DDP/FSDP average are the global batch's, and the value returned is the
    global batch's mean loss, the same on every rank."""
    world = world or distributed.World()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(world.device.type, dtype=torch.bfloat16, enabled=trainer.bf16):
        loss = batch_loss()
    if world.distributed:
        (loss * (share * world.world_size)).backward()
    else:
        loss.backward()
    if trainer.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, trainer.grad_clip)
    optimizer.step()
    if world.distributed:
        return float(distributed.all_reduce_sum(loss.detach().float() * share))
    return loss.item()


def require_finite(loss: float, what: str, when: str) -> None:
    """Stop at once when a loss is NaN or infinite (not after an epoch of NaN weights)."""
    if not math.isfinite(loss):
        raise RecLLMError(
            f"the {what} became {loss} at {when}; lower trainer.lr or set trainer.grad_clip"
        )


class TrainRecipe:
    """One training run. Call :meth:`setup`, :meth:`train`, then :meth:`cleanup`."""

    def __init__(
        self,
        config: TrainConfig,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.config = config
        self.overwrite = overwrite
        self.resume = resume
        self.world = distributed.World()
        self.output_dir = Path(config.output_dir)
        self.writer: Any = None
        self.folder: RunFolder | None = None

    # -- setup -----------------------------------------------------------------
    def setup(self) -> None:
        """Check and lock the output folder (before anything is loaded), then build data,
        model, optimiser and loop state, restoring a checkpoint when resuming. A setup that
        fails leaves no partial run folder and releases the lock."""
        from recllm.provenance import provenance

        # Taken now, not when results are written: the code that runs is the code at start.
        self.provenance = provenance()
        self.world = distributed.init(self.config.trainer.device)
        if not self.world.is_main:  # rank 0 alone logs
            logging.getLogger("recllm").setLevel(logging.WARNING)
        with distributed.main_first(self.world):  # the others read it once it is ready
            if self.world.is_main:
                self.folder = RunFolder(
                    self.output_dir, resume=self.resume, overwrite=self.overwrite
                )
                self.folder.open()
        try:
            self._setup()
        except BaseException:
            self.cleanup(failed=True)
            raise

    @property
    def rank(self) -> int:
        return self.world.rank

    def _setup(self) -> None:
        cfg = self.config
        t = cfg.trainer
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        self._seed(t.seed)
        self.pipeline = build_pipeline(
            cfg, progress=t.progress and self.world.is_main, world=self.world
        )
        self.split: Split = self.pipeline.split
        for stage in ("valid", "test"):
            require_targets(self.split, stage)  # not after an epoch spent training
        torch.manual_seed(t.seed)  # model init independent of what loading consumed
        self.model = self._build_model()
        self._choose_attention()
        self.generation: GenerationTask | None = None
        if cfg.generation.weight > 0:
            assert isinstance(self.model, RecLLMModel)
            self.generation = GenerationTask(
                cfg.generation, self.model, self.split, self.split.dataset
            )
            # part of the model from now on: optimised, checkpointed and resumed with it
            self.model.add_module(EXPLAINER_DIR, self.generation.generator)
        self.train_data, collate = training_data(self.model, self.split, t.windows)
        self.sampler = BucketBatchSampler(
            self.train_data.lengths,
            t.batch_size,
            seed=t.seed,
            rank=self.world.rank,
            world_size=self.world.world_size,
        )
        self.loader = DataLoader(
            self.train_data,
            batch_sampler=self.sampler,
            collate_fn=collate,
        )
        # DDP-wrapped or FSDP-sharded under torchrun; the optimiser needs its parameters
        self.step_module = parallel.wrap(self.model, t.strategy, self.world, t.bf16)
        if self.world.rank:  # dropout and sampled negatives differ between ranks
            torch.manual_seed(t.seed + 7919 * self.world.rank)
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, t), lr=t.lr, weight_decay=t.weight_decay
        )
        steps = t.epochs * len(self.sampler)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(steps, max(1, int(t.warmup_ratio * steps)))
        )
        self.generator = torch.Generator(self.world.device).manual_seed(
            t.seed + 1 + 7919 * self.world.rank
        )
        self.state: dict[str, Any] = {
            "epoch": 0,
            "step": 0,
            "best_ndcg@10": -1.0,
            "best_epoch": -1,
            "bad_evals": 0,
            "stopped": False,
            "history": [],
        }
        identity = catalogue_identity(self.split.dataset)
        if self.resume and has_run(self.output_dir):
            self._check_resume_config()
            check_identity(self.output_dir, identity, users_matter=cfg.model in CF_MODELS)
            restored = load_latest_intact(
                self.output_dir,
                self.model,
                self.optimizer,
                self.scheduler,
                self.generator,
                self.world,
                self.step_module,
            )
            if restored is None:
                log.warning("resume: no checkpoint in %s, starting from scratch", self.output_dir)
            else:
                self.state = restored[1]
                log.info("resumed from %s (epoch %d done)", restored[0], self.state["epoch"])
        if self.rank == 0:
            with write_errors(f"the run's config to {self.output_dir}"):
                self.output_dir.mkdir(parents=True, exist_ok=True)
                (self.output_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
                write_identity(self.output_dir, identity)
            if t.tensorboard:
                self.writer = _tensorboard_writer(self.output_dir / "tensorboard")

    def _check_resume_config(self) -> None:
        """A resumed run needs the config it was started with."""
        self._require_same_config(self.output_dir / "config.json", TrainConfig, self.config)

    def _require_same_config(self, saved: Path, schema: type, current: Any) -> None:
        """Refuse to resume when ``current`` differs from the config saved at ``saved``
        (an instance of ``schema``) in anything but :data:`_RESUMABLE_CHANGES`."""
        if not saved.is_file():
            return
        with damaged_file_errors(saved):
            started = json.loads(saved.read_text())
        # settings added to the config since the run started count as their defaults
        # (a new setting's default must train as the code did before it existed)
        try:
            before = _flatten(to_dict(from_dict(schema, started)))
        except ConfigError as error:
            raise ConfigError(
                f"resume: {saved} is not a config this version can resume: {error}"
            ) from error
        now = _flatten(to_dict(current))
        changed = sorted(
            k
            for k in before.keys() | now.keys()
            if before.get(k) != now.get(k) and k not in _RESUMABLE_CHANGES
        )
        if changed:
            raise ConfigError(
                f"resume: the config differs from the one {self.output_dir} was started with "
                f"({', '.join(changed[:8])}); pass the same config and overrides, or a new output_dir"
            )

    def _choose_attention(self) -> None:
        """On a CPU, train a backbone left at the library's attention (sdpa) with eager
        attention: flash attention's backward at L <= 50 took about a fifth of a Beauty
        step (``results/models/train_speed.json``). Saved runs keep the configured choice,
        so inference, whose forward alone is a little faster with sdpa, is unchanged."""
        backbone = getattr(self.model, "backbone", None)
        if (
            isinstance(backbone, Backbone)
            and self.config.backbone.attn_implementation is None
            and self.world.device.type == "cpu"
        ):
            backbone.use_eager_attention()

    def _build_model(self) -> TrainableModel:
        """The freshly initialised model this run trains (a hook for distillation)."""
        return build_model(self.config, self.pipeline)

    def _batch_loss(self, batch: Any) -> torch.Tensor:
        """The training loss of one batch: L_rec, plus w_gen L_gen when generation trains
        jointly (a hook: distillation adds its own terms)."""
        if self.generation is None:
            return batch_loss(self.model, batch, self.config.trainer, self.generator)
        output = sequence_output(self.model, batch, self.config.trainer, self.generator)
        weights = LossWeights(gen=self.config.generation.weight)
        loss_gen = self.generation.loss(batch, output, self.generator)
        return total_loss(rec=output.loss, gen=loss_gen, weights=weights)

    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    # -- train -----------------------------------------------------------------
    def train(self, until_epoch: int | None = None) -> dict[str, Any]:
        """Train to ``trainer.epochs`` (or stop after ``until_epoch``, as an
        interruption would; ``resume`` then continues exactly)."""
        try:
            return self._train(until_epoch)
        except BaseException:
            self.cleanup(failed=True)
            raise

    def _train(self, until_epoch: int | None) -> dict[str, Any]:
        t = self.config.trainer
        last = min(t.epochs, until_epoch) if until_epoch is not None else t.epochs
        while self.state["epoch"] < last and not self.state["stopped"]:
            epoch = self.state["epoch"]
            started = time.perf_counter()
            loss = self._train_epoch(epoch)
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": loss,
                "seconds": time.perf_counter() - started,
            }
            if self.generation is not None:
                record["loss_gen"] = self.generation.pop_epoch_loss()
            if (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs:
                result = self.evaluate("valid")
                ndcg = result.metrics["ndcg@10"]
                record["valid"] = result.metrics
                if ndcg > self.state["best_ndcg@10"]:
                    self.state.update(
                        {"best_ndcg@10": ndcg, "best_epoch": epoch + 1, "bad_evals": 0}
                    )
                    self._save_best(epoch + 1)
                else:
                    self.state["bad_evals"] += 1
                    self.state["stopped"] = self.state["bad_evals"] >= t.patience
                self._scalars({f"valid/{k}": v for k, v in result.metrics.items()}, epoch + 1)
            if self.rank == 0:
                log.info(_epoch_line(record, t.epochs, self.state))
            self.state["history"].append(record)
            self.state["epoch"] = epoch + 1
            self._save_checkpoint(epoch)
            if self.state["stopped"]:
                log.info(
                    "early stopping: no better validation NDCG@10 for %d evaluations", t.patience
                )
                break
        if self.rank == 0 and self.state["history"]:
            log.info(
                "trained %d epochs in %.0f s; best validation ndcg@10 %.4f at epoch %d",
                self.state["epoch"],
                sum(e["seconds"] for e in self.state["history"]),
                self.state["best_ndcg@10"],
                self.state["best_epoch"],
            )
        return self.state

    def _save_checkpoint(self, epoch: int) -> None:
        """The checkpoint of ``epoch`` (0-based, done): rank 0 writes it, with every
        rank's RNG states; under FSDP every rank writes its shards of it."""
        folder = self.output_dir / "checkpoints" / f"epoch-{epoch + 1}"
        kept = f"; the checkpoint of epoch {epoch} is intact" if epoch else ""
        with write_errors(f"the checkpoint of epoch {epoch + 1}", kept):
            if parallel.is_sharded(self.step_module):
                save_sharded(
                    folder,
                    self.step_module,
                    self.optimizer,
                    self.scheduler,
                    self.generator,
                    self.state,
                    self.world,
                )
            else:
                rng = rng_states(self.generator, self.world)
                if self.world.is_main:
                    save_checkpoint(
                        folder,
                        self.model,
                        self.optimizer,
                        self.scheduler,
                        self.generator,
                        self.state,
                        rng,
                    )
        if self.world.is_main:
            prune_checkpoints(self.output_dir, self.config.trainer.keep_checkpoints)
        distributed.barrier()  # no rank runs ahead of a checkpoint it might resume from

    def _save_best(self, epoch: int) -> None:
        """The best weights so far, written whole or not at all; the first time, an
        earlier run this one replaces (``--overwrite``) can go. Under FSDP every rank
        takes part in gathering them; rank 0 writes."""
        best = self.output_dir / "best"
        sharded = parallel.is_sharded(self.step_module)
        state = parallel.full_trainable_state(self.step_module) if sharded else None
        if self.world.is_main:
            with (
                write_errors(f"the best weights (epoch {epoch}) to {best}"),
                atomic_folder(best) as tmp,
            ):
                if state is None:
                    self.model.save_pretrained(tmp)
                else:
                    assert isinstance(self.model, RecLLMModel)  # TrainConfig checks
                    self.model.save_pretrained(tmp, state)
            if self.generation is not None:
                self.generation.save(
                    self.output_dir / EXPLAINER_DIR,
                    self.output_dir,
                    {"epoch": epoch, **self.provenance},
                )
        if self.folder is not None:
            self.folder.commit()

    def train_step(self, batch: Any) -> float:
        """One optimiser and scheduler step on this rank's share of a global batch; the
        global batch's mean loss (what the training scale benchmark times)."""
        batch = to_device(batch, self.world.device)
        value = optimiser_step(
            self.optimizer,
            self.model.parameters(),
            partial(self.step_module, self._batch_loss, batch),
            self.config.trainer,
            self.world,
            parallel.share_of(batch, self.world),
        )
        self.scheduler.step()
        self.state["step"] += 1
        return value

    def _train_epoch(self, epoch: int) -> float:
        t = self.config.trainer
        self.model.train()
        self.sampler.set_epoch(epoch)
        total, batches = 0.0, 0
        bar = progress_bar(
            self.loader,
            desc=f"epoch {epoch + 1}",
            enabled=t.progress and self.rank == 0,
            unit="batch",
        )
        for batch in bar:
            value = self.train_step(batch)
            require_finite(
                value,
                "training loss",
                f"epoch {epoch + 1}, step {self.state['step']} (batch {batches + 1} of the "
                "epoch); nothing of this epoch was saved",
            )
            total += value
            batches += 1
            bar.set_postfix(loss=f"{value:.4f}")
            self._scalars(
                {"train/loss": value, "train/lr": float(self.scheduler.get_last_lr()[0])},
                self.state["step"],
            )
        return total / max(batches, 1)

    # -- evaluate --------------------------------------------------------------
    def evaluate(self, stage: Literal["valid", "test"]) -> EvalResult:
        """Full-ranking metrics; under torchrun each rank scores its share of the users
        and every rank gets the same metrics as one process would."""
        scorer = make_scorer(self.model, batch_size=self.config.trainer.eval_batch_size)
        with parallel.gathered_weights(self.step_module):
            return evaluate(
                scorer,
                self.split,
                stage,
                EvalConfig(),
                progress=self.config.trainer.progress and self.world.is_main,
                world=self.world,
            )

    def test_best(self) -> EvalResult:
        """Load the best validation weights and evaluate on the test split."""
        best = self.output_dir / "best"
        distributed.barrier()  # rank 0 has written best/
        if (best / saved_model_marker(self.config.model)).is_file():
            self.model = load_model(best, self.config, self.pipeline).to(self.world.device)
            self.step_module = parallel.TrainStep(self.model)  # evaluation only from here
        return self.evaluate("test")

    def results(self, test: EvalResult) -> dict[str, Any]:
        """The results record of this run (what ``results/<dataset>/<model>.json`` holds)."""
        from recllm.provenance import peak_rss_mb

        epochs = self.state["history"]
        params = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {
            "model": self.config.model,
            "dataset": self.split.dataset.name,
            "protocol": {
                "split": self.split.summary(),
                "split_config": to_dict(self.config.data.split),
                "preprocess": to_dict(self.config.data.preprocess),
                "evaluation": "full catalogue, history items excluded, ties in expectation, "
                "best validation NDCG@10 epoch evaluated on test",
            },
            "test": test.metrics,
            # cold-start splits: the same metrics on cold and on warm test items apart
            **({"test_groups": test.groups} if test.groups else {}),
            "valid_best": {
                "ndcg@10": self.state["best_ndcg@10"],
                "epoch": self.state["best_epoch"],
            },
            "epochs_run": len(epochs),
            "seconds_per_epoch": sum(e["seconds"] for e in epochs) / max(len(epochs), 1),
            "train_seconds": sum(e["seconds"] for e in epochs),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "parameters": params,
            "trainable_parameters": trainable,
            "seed": self.config.trainer.seed,
            "config": to_dict(self.config),
            "history": epochs,
            **self.provenance,
        }

    def _scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    # -- cleanup ---------------------------------------------------------------
    def cleanup(self, failed: bool = False) -> None:
        """Close the TensorBoard writer and release the run folder; after a failure,
        first remove a run folder that holds nothing resumable."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.folder is not None:
            if failed:
                self.folder.abort()
            self.folder.close()


def _epoch_line(record: dict[str, Any], epochs: int, state: dict[str, Any]) -> str:
    """The log's one line per epoch: loss, time and, when evaluated, validation figures."""
    line = f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}"
    if "loss_gen" in record:
        line += f", loss_gen {record['loss_gen']:.4f}"
    line += f", {record['seconds']:.1f} s"
    if "valid" in record:
        valid = record["valid"]
        line += (
            f"; valid recall@10 {valid['recall@10']:.4f} ndcg@10 {valid['ndcg@10']:.4f} "
            f"(best {state['best_ndcg@10']:.4f} at epoch {state['best_epoch']})"
        )
    return line


# Settings that may differ between a run and its resumption without changing results.
_RESUMABLE_CHANGES = {
    "trainer.progress",
    "trainer.num_threads",
    "trainer.tensorboard",
    "trainer.keep_checkpoints",
    "data.data_dir",
    "data.cache_dir",
    # the folder the run is resumed in is the one it was saved in, however it is spelt
    # (relative or absolute) and wherever it has been moved
    "output_dir",
    # how many processes share the work, and how, is not part of the result: a run
    # resumes at another world size and strategy (sharded checkpoints reshard)
    "trainer.strategy",
    "trainer.device",
}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "extra":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _tensorboard_writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed; scalars are only in trainer_state.json")
        return None
    return SummaryWriter(str(folder))
