"""What the explanation generator reads for a batch of pairs, in one place for the
stand-alone explainer and for joint training with the recommender."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recllm.explain.generator import Conditioning, GeneratorConfig
from recllm.explain.reviews import AnyFacts
from recllm.explain.vocab import BOS, EOS, HISTORY_SLOTS, PAD, Vocab, source_tokens, tokenize


def build_conditioning(
    config: GeneratorConfig,
    vocab: Vocab,
    facts: Sequence[AnyFacts],
    user: torch.Tensor | None,
    item_vectors: np.ndarray | None,
) -> Conditioning:
    """What the generator reads for each of ``facts``: the facts as tokens, the user
    vectors (B, u) from the recommender (with their gradient, when trained jointly), and
    the metadata embeddings of the item and of the cited history items."""
    source = padded([vocab.encode(source_tokens(f)) for f in facts], config.max_source)
    cond = Conditioning(source, source != vocab.index[PAD])
    if config.user_dim and user is not None:
        cond.user = user
    if config.item_dim and item_vectors is not None:
        slots = 1 + len(HISTORY_SLOTS)
        items = np.zeros((len(facts), slots, item_vectors.shape[1]), np.float32)
        present = np.zeros((len(facts), slots), dtype=bool)
        for r, f in enumerate(facts):
            codes = [f.item, *(e.item for e in f.attributed)]
            for slot, code in enumerate(codes[:slots]):
                items[r, slot] = item_vectors[code]
                present[r, slot] = True
        cond.items, cond.items_mask = torch.from_numpy(items), torch.from_numpy(present)
    return cond


def padded(rows: list[list[int]], width: int | None = None) -> torch.Tensor:
    """(len(rows), width) token ids, right-padded with 0 (``<pad>``), cut to ``width``."""
    width = min(max(len(r) for r in rows), width or max(len(r) for r in rows))
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for i, ids in enumerate(rows):
        ids = ids[:width]
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def targets(vocab: Vocab, texts: list[str], max_target: int) -> torch.Tensor:
    """Token ids of target sentences, framed by BOS/EOS, right-padded. A sentence longer
    than the ``max_target`` tokens the generator writes is cut (its EOS kept), as the
    generator could never write more (long product titles made Beauty's longer)."""
    body = max_target - 1  # EOS is the last of the tokens written
    return padded([vocab.encode([BOS, *tokenize(t)[:body], EOS]) for t in texts])
