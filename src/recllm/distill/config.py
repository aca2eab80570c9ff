"""Configuration of ``recllm distill``: the teacher run, the student's shape, the
distillation losses, the pre-distillation stage and the trainer (YAML + ``key=value``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recllm.errors import ConfigError
from recllm.recipes.train import TrainerConfig


@dataclass
class StudentConfig:
    """A BERT-architecture student with its own (narrower) RecAdapter.

    Attributes:
        layers, hidden, heads, intermediate: the student backbone's transformer shape.
        vocab_size: word embeddings of the student; it reads adapter embeddings only, so
            one row suffices unless a text prompt is wanted (then the teacher's tokenizer
            size, and a tokenizer).
        d_model, adapter_heads: the student adapter's width and cross-attention heads.
        init: ``"teacher"``: copy every teacher weight whose shape matches (backbone
            layers through ``layer_map``, embeddings, adapter); ``"random"``: none.
        layer_map: for each student layer, the teacher layer it learns from (its
            initialisation and its attention map); None: evenly spaced, ending at the
            teacher's last layer (6 -> 2 layers: teacher layers 2 and 5).
    """

    layers: int = 2
    hidden: int = 128
    heads: int = 4
    intermediate: int = 512
    vocab_size: int = 1
    d_model: int = 64
    adapter_heads: int = 4
    init: str = "teacher"
    layer_map: list[int] | None = None

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("layers", "hidden", "heads", "intermediate", "vocab_size", "d_model")
            if getattr(self, name) < 1
        ]
        if self.hidden % self.heads:
            problems.append(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        if self.adapter_heads < 1 or self.d_model % self.adapter_heads:
            problems.append(
                f"adapter_heads ({self.adapter_heads}) must divide d_model ({self.d_model})"
            )
        if self.init not in ("teacher", "random"):
            problems.append(f"init must be 'teacher' or 'random', got {self.init!r}")
        if self.layer_map is not None and len(self.layer_map) != self.layers:
            problems.append(
                f"layer_map needs one teacher layer per student layer ({self.layers}), "
                f"got {self.layer_map}"
            )
        ConfigError.collect("student", problems)


@dataclass
class DistillLossConfig:
    """L = L_rec + kl_weight * T^2 KL(p_teacher || p_student) + attention_weight * L_attn.

    Attributes:
        kl_weight: weight of the score-distribution KL (the design's 0.5).
        temperature: T of both softmaxes (the design's 0.8).
        top_k: the teacher's K best items per position are kept, the rest of the
            catalogue is one "tail" bucket whose mass is exact (the cache stores the
            teacher's log-normaliser); 0: the whole catalogue, item by item.
        attention_weight: weight of the attention-map KL between mapped layers (heads
            averaged); 0 turns attention distillation off.
        mask: the recommendation-knowledge mask: distillation losses count only item
            positions, never padding (or a prompt). Off (an ablation) needs the live
            teacher (``cache: false``): padding positions are not cached.
        cache: teacher outputs computed once and kept in safetensors shards; False runs
            the teacher on every batch (slow; for the mask ablation and for checks).
        cache_shard: sequences per cache shard; under ``torchrun`` the ranks share the
            shards out, and the files are the same whatever the world size.
    """

    kl_weight: float = 0.5
    temperature: float = 0.8
    top_k: int = 100
    attention_weight: float = 1.0
    mask: bool = True
    cache: bool = True
    cache_shard: int = 2048

    def __post_init__(self) -> None:
        problems = []
        if self.kl_weight < 0 or self.attention_weight < 0:
            problems.append("kl_weight and attention_weight must be >= 0")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if self.cache_shard < 1:
            problems.append(f"cache_shard must be >= 1, got {self.cache_shard}")
        if self.top_k < 0:
            problems.append(f"top_k must be >= 0 (0: the full catalogue), got {self.top_k}")
        if not self.mask and self.cache:
            problems.append(
                "mask: false needs cache: false (the cache holds item positions only; "
                "distilling padding positions needs the live teacher)"
            )
        ConfigError.collect("distill", problems)

    @property
    def uses_teacher(self) -> bool:
        return self.kl_weight > 0 or self.attention_weight > 0


@dataclass
class PreDistillConfig:
    """Stage 1: distillation on sequences sampled from the teacher's own next-item
    distribution, before stage 2 on the real training data.

    Attributes:
        epochs: passes over the synthetic sequences (0: no pre-distillation).
        sequences: how many to sample; 0: as many as there are training sequences.
        length: items per synthetic sequence (short keeps sampling cheap: one teacher
            pass per step).
        sample_temperature: temperature of the teacher's softmax when sampling.
        lr: learning rate of stage 1 (constant, AdamW).
    """

    epochs: int = 2
    sequences: int = 0
    length: int = 20
    sample_temperature: float = 1.0
    lr: float = 1e-3

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 0 or self.sequences < 0:
            problems.append("epochs and sequences must be >= 0")
        if self.length < 2:
            problems.append(f"length must be >= 2 (an input and a target), got {self.length}")
        if self.sample_temperature <= 0 or self.lr <= 0:
            problems.append("sample_temperature and lr must be > 0")
        ConfigError.collect("pre", problems)


@dataclass
class DistillConfig:
    """Everything ``recllm distill`` needs. ``teacher``: the output_dir of a finished
    ``recllm train`` run of RecLLM-Adapter; the student uses its data, split and item
    encodings."""

    teacher: str = ""
    output_dir: str = "runs/distill"
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillLossConfig = field(default_factory=DistillLossConfig)
    pre: PreDistillConfig = field(default_factory=PreDistillConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self) -> None:
        problems = []
        if not self.teacher:
            problems.append("teacher: the output_dir of a finished `recllm train` run is required")
        if self.trainer.windows != "last":
            problems.append(
                "trainer.windows must be 'last' for distillation (teacher outputs are cached "
                "per user sequence)"
            )
        ConfigError.collect("distill config", problems)
