"""Item metadata encoding: each item's text through the backbone, once, cached on disk.

Each text gives a pooled vector (mean of the last hidden states over its real tokens,
as sentence-transformers pools all-MiniLM-L6-v2, before its L2 normalisation) and M
token embeddings, the last hidden states of its first M content tokens (special tokens
such as [CLS], [SEP] or <s> left out), which are the metadata embeddings E_i the adapter
attends to.

Results are cached as safetensors plus a JSON sidecar under
``<cache_dir>/item-encodings/<key>.safetensors``, the key hashing the backbone
fingerprint, M, the maximum length, the precision and the texts; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from recllm.distributed import World, all_gather_objects, broadcast_object
from recllm.errors import ConfigError, RecLLMError
from recllm.models.backbone import Backbone
from recllm.progress import progress_bar

log = logging.getLogger(__name__)

# Bump whenever the encoding recipe changes, so that stale cache files are not served.
ENCODING_FORMAT_VERSION = 1
CACHE_SUBDIR = "item-encodings"


@dataclass
class ItemEncodings:
    """Encodings of N item texts by a backbone of hidden size H.

    Attributes:
        pooled: (N, H) float32, mean of the last hidden states over each text's real tokens.
        tokens: (N, M, H) float32, hidden states of the first M content tokens, zero-padded.
        token_mask: (N, M) bool, True where ``tokens`` holds a real token.
        meta: how they were made (backbone fingerprint, M, max_length, text hash, ...).
    """

    pooled: Tensor
    tokens: Tensor
    token_mask: Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, hidden = self.pooled.shape
        if self.tokens.shape[0] != n or self.tokens.shape[2] != hidden:
            raise ValueError(
                f"tokens {tuple(self.tokens.shape)} do not match pooled {tuple(self.pooled.shape)}"
            )
        if self.token_mask.shape != self.tokens.shape[:2] or self.token_mask.dtype != torch.bool:
            raise ValueError(
                f"token_mask must be bool {tuple(self.tokens.shape[:2])}, got "
                f"{self.token_mask.dtype} {tuple(self.token_mask.shape)}"
            )

    @property
    def n_items(self) -> int:
        return int(self.pooled.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.pooled.shape[1])

    def save(self, path: str | Path) -> None:
        """Write ``path`` (safetensors) and ``path.with_suffix('.json')``, each atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "pooled": self.pooled.contiguous(),
            "tokens": self.tokens.contiguous(),
            "token_mask": self.token_mask.contiguous(),
        }
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
        os.close(fd)
        try:
            save_file(tensors, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        meta = {**self.meta, "n_items": self.n_items, "hidden_size": self.hidden_size}
        _atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> ItemEncodings:
        """Read what :meth:`save` wrote (safetensors only: no unpickling)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        sidecar = path.with_suffix(".json")
        try:
            tensors = load_file(path)
            meta = json.loads(sidecar.read_text())
            encodings = cls(tensors["pooled"], tensors["tokens"], tensors["token_mask"], meta)
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise RecLLMError(
                f"cannot read item encodings {path} (+ {sidecar.name}): {exc}"
            ) from exc
        if meta.get("n_items") != encodings.n_items:
            raise RecLLMError(
                f"{path}: sidecar says {meta.get('n_items')} items, file holds {encodings.n_items}"
            )
        return encodings


def encode_items(
    backbone: Backbone,
    texts: list[str],
    n_tokens: int = 8,
    max_length: int = 64,
    batch_size: int = 64,
    cache_dir: Path | None = None,
    progress: bool = True,
    bf16: bool = False,
    world: World | None = None,
) -> ItemEncodings:
    """Encode item texts with the backbone (no gradient, eval mode), through a disk cache.

    ``world``: under ``torchrun`` every rank encodes every ``world_size``-th batch and
    the results are gathered, so that each rank holds the same encodings as one process
    makes (the same batches, run elsewhere); rank 0 writes the cache.

    Texts are batched in order of token length, so that padding is small, and the results
    are returned in the original order. A text that is empty (or only whitespace) is
    encoded like any other, which for BERT means its [CLS] [SEP] only (GPT-2 style
    tokenizers, which add nothing, get one end-of-text token); it has no content tokens,
    so its ``token_mask`` row is all False. A warning counts such texts.

    Args:
        backbone: the model; its tokenizer must be set.
        texts: N item texts, in item-index order; at least one.
        n_tokens: M, token embeddings kept per item.
        max_length: tokens per text, special tokens included; longer texts are truncated.
        batch_size: texts per forward pass.
        cache_dir: cache root; results go to ``cache_dir/item-encodings``. None: no cache.
        progress: show a tqdm progress bar.
        bf16: run under ``torch.autocast`` with bfloat16; results are float32 either way.
    Returns:
        :class:`ItemEncodings` with pooled (N, H), tokens (N, M, H), token_mask (N, M).
    """
    problems = []
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 1:
        problems.append(f"n_tokens must be an integer >= 1, got {n_tokens!r}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        problems.append(f"max_length must be an integer >= 2, got {max_length!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        problems.append(f"batch_size must be an integer >= 1, got {batch_size!r}")
    ConfigError.collect("item encoding", problems)
    if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
        raise RecLLMError("encode_items needs a list of item texts (str)")
    if not texts:
        raise RecLLMError("encode_items got no item texts: the catalogue is empty")
    if backbone.tokenizer is None:
        raise RecLLMError(
            "this backbone has no tokenizer (it was built from a bare config); give "
            "backbone_from_hf_config a tokenizer to encode item texts"
        )

    meta = {
        "format": ENCODING_FORMAT_VERSION,
        "backbone": backbone.fingerprint(),
        "n_tokens": n_tokens,
        "max_length": max_length,
        "bf16": bool(bf16),
        "text_sha256": texts_sha256(texts),
        "n_items": len(texts),
        "dtype": "float32",
    }
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(cache_dir) / CACHE_SUBDIR / f"{key}.safetensors" if cache_dir else None
    world = world or World()
    if path is not None and broadcast_object(path.is_file()):  # rank 0 decides for all
        try:
            cached = ItemEncodings.load(path)
            if all(cached.meta.get(k) == v for k, v in meta.items()):
                return cached
            log.warning("item encodings %s do not match their key; encoding again", path)
        except RecLLMError as exc:
            log.warning("%s; encoding again", exc)

    encodings = _encode(
        backbone, list(texts), n_tokens, max_length, batch_size, progress, bf16, world
    )
    encodings.meta = meta
    if path is not None and world.is_main:
        try:
            encodings.save(path)
        except OSError as exc:
            # A full disk or read-only cache must not stop the run itself.
            log.warning("cannot write item encodings to %s (%s); continuing without", path, exc)
    return encodings


def texts_sha256(texts: list[str]) -> str:
    """SHA-256 of the texts in order, each length-prefixed so that boundaries count."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _encode(
    backbone: Backbone,
    texts: list[str],
    n_tokens: int,
    max_length: int,
    batch_size: int,
    progress: bool,
    bf16: bool,
    world: World,
) -> ItemEncodings:
    ids, special = _tokenize(backbone.tokenizer, texts, max_length)
    device = next(backbone.parameters()).device
    pad_id = backbone.tokenizer.pad_token_id or 0
    n, hidden = len(texts), backbone.hidden_size
    pooled = torch.zeros(n, hidden)  # (N, H)
    tokens = torch.zeros(n, n_tokens, hidden)  # (N, M, H)
    token_mask = torch.zeros(n, n_tokens, dtype=torch.bool)  # (N, M)
    order = sorted(range(n), key=lambda i: len(ids[i]))
    was_training = backbone.training
    backbone.eval()
    starts = list(range(0, n, batch_size))[world.rank :: world.world_size]
    mine = sum(len(order[s : s + batch_size]) for s in starts)
    bar = progress_bar(total=mine, desc="encoding items", unit="item", enabled=progress)
    started = time.perf_counter()
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for start in starts:
                rows = order[start : start + batch_size]
                length = max(len(ids[i]) for i in rows)
                input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)  # (b, T)
                real = torch.zeros(len(rows), length, dtype=torch.bool)  # (b, T)
                content = torch.zeros(len(rows), length, dtype=torch.bool)  # (b, T)
                for r, i in enumerate(rows):
                    k = len(ids[i])
                    input_ids[r, :k] = torch.tensor(ids[i])
                    real[r, :k] = True
                    content[r, :k] = ~torch.tensor(special[i], dtype=torch.bool)
                hidden_states = backbone.encode_text(input_ids.to(device), real.to(device))
                hidden_states = hidden_states.float().cpu()  # (b, T, H)
                weights = real.unsqueeze(-1).float()  # (b, T, 1)
                index = torch.tensor(rows)
                pooled[index] = (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
                # Rank of each content token within its text; keep ranks < M.
                rank = content.long().cumsum(1) - 1  # (b, T)
                keep = content & (rank < n_tokens)
                r_idx, t_idx = keep.nonzero(as_tuple=True)
                slot = rank[r_idx, t_idx]
                tokens[index[r_idx], slot] = hidden_states[r_idx, t_idx]
                token_mask[index[r_idx], slot] = True
                bar.update(len(rows))
    finally:
        bar.close()
        backbone.train(was_training)
    if world.distributed:  # every rank's rows, into every rank's tables
        my_rows = torch.tensor(
            [i for s in starts for i in order[s : s + batch_size]], dtype=torch.long
        )
        shares = all_gather_objects(
            (my_rows, pooled[my_rows], tokens[my_rows], token_mask[my_rows])
        )
        for got, part_pooled, part_tokens, part_mask in shares:
            pooled[got], tokens[got], token_mask[got] = part_pooled, part_tokens, part_mask
    log.info("encoded %d item texts in %.1f s", n, time.perf_counter() - started)
    return ItemEncodings(pooled, tokens, token_mask)


def _tokenize(
    tokenizer: Any, texts: list[str], max_length: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and special-token flags per text, truncated to ``max_length``."""
    encoded = tokenizer(
        texts,
        add_special_tokens=True,
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
        return_attention_mask=False,
    )
    ids: list[list[int]] = [list(x) for x in encoded["input_ids"]]
    special: list[list[int]] = [list(x) for x in encoded["special_tokens_mask"]]
    filler = next(
        (
            t
            for t in (tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id)
            if t is not None
        ),
        0,
    )
    empty = 0
    for i, text in enumerate(texts):
        if not text.strip():
            empty += 1
        if not ids[i]:  # tokenizers that add no special tokens give nothing to run on
            ids[i], special[i] = [filler], [1]
    if empty:
        log.warning(
            "%d of %d item texts are empty; they are encoded from special tokens only and "
            "have no token embeddings",
            empty,
            len(texts),
        )
    return ids, special


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
