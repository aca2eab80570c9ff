"""A RecLLM-Adapter's request path as an ONNX graph, run by ONNX Runtime.

Serving a small student in eager PyTorch costs a fixed ~2 ms of per-operator overhead per
request; ONNX Runtime runs the same graph with less. The graph takes the catalogue tables
as inputs rather than baking them in, so items added online (which change the tables)
are served by the same graph. Inputs: ``items``/``weights``/``mask`` (B, L), right-padded;
``item_table`` (N + 1, d), ``meta_table`` (N + 1, M, d), ``meta_mask`` (N + 1, M). Output:
``scores`` (B, N), the catalogue scores after each sequence's last real item.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recllm.errors import RecLLMError
from recllm.models.adapter.model import CatalogueTables
from recllm.models.recllm import RecLLMModel

log = logging.getLogger(__name__)
ONNX_NAME = "model.onnx"
INPUTS = ("items", "weights", "mask", "item_table", "meta_table", "meta_mask")


class ScoringGraph(nn.Module):
    """``RecLLMModel.score_last`` with the catalogue tables as arguments (for export)."""

    def __init__(self, model: RecLLMModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        items: torch.Tensor,
        weights: torch.Tensor,
        mask: torch.Tensor,
        item_table: torch.Tensor,
        meta_table: torch.Tensor,
        meta_mask: torch.Tensor,
    ) -> torch.Tensor:
        model = self.model
        tables = CatalogueTables(item_table, meta_table)
        encoded = model.adapter.encode(
            items, weights, mask, None, meta_table, meta_mask, tables
        )  # tokens (B, L, H)
        hidden, _ = model._run_backbone(encoded.tokens, mask)
        queries = model.adapter.query(hidden, encoded.user)  # (B, L, d)
        last = mask.long().sum(1) - 1
        final = queries[torch.arange(items.shape[0]), last]  # (B, d)
        return final @ item_table[: item_table.shape[0] - 1].T  # (B, N)


def catalogue_inputs(model: RecLLMModel) -> dict[str, np.ndarray]:
    """The graph's catalogue inputs from the model's precomputed tables."""
    if model._tables is None:
        model.cache_catalogue()
    assert model._tables is not None
    meta = model._tables.meta_tokens
    if meta is None:  # no cross-attention: the graph ignores the metadata tokens
        meta = torch.zeros(model.n_items + 1, 1, model.adapter.config.d_model)
    return {
        "item_table": model._tables.items.numpy(),
        "meta_table": meta.numpy(),
        "meta_mask": model.meta_mask.numpy(),
    }


def export_onnx(model: RecLLMModel, path: Path) -> None:
    """Trace the request path of ``model`` (eval mode) into ``path``."""
    model.eval().cache_catalogue()
    tables = {k: torch.from_numpy(v) for k, v in catalogue_inputs(model).items()}
    length = min(4, model.max_len)
    example = (
        torch.zeros(2, length, dtype=torch.long),
        torch.ones(2, length),
        torch.ones(2, length, dtype=torch.bool),
        tables["item_table"],
        tables["meta_table"],
        tables["meta_mask"],
    )
    batch, steps = torch.export.Dim("B", min=1), torch.export.Dim("L", min=1, max=model.max_len)
    rows = torch.export.Dim("N", min=2)
    dynamic = {
        "items": {0: batch, 1: steps},
        "weights": {0: batch, 1: steps},
        "mask": {0: batch, 1: steps},
        "item_table": {0: rows},
        "meta_table": {0: rows},
        "meta_mask": {0: rows},
    }
    with torch.no_grad():
        torch.onnx.export(
            ScoringGraph(model).eval(),
            example,
            str(path),
            input_names=list(INPUTS),
            output_names=["scores"],
            dynamic_shapes=dynamic,
            dynamo=True,
            verbose=False,
        )


class OnnxScorer:
    """Scores histories with ONNX Runtime; the catalogue inputs come from ``model``."""

    def __init__(self, path: Path, model: RecLLMModel, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RecLLMError(
                "this bundle serves through ONNX Runtime: pip install onnxruntime"
            ) from exc
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = {i.name for i in self.session.get_inputs()}
        self.model = model
        self._catalogue: tuple[object, dict[str, np.ndarray]] | None = None

    def _catalogue_feed(self) -> dict[str, np.ndarray]:
        """The graph's catalogue inputs, rebuilt only when the model's tables change
        (``cache_catalogue`` makes new ones when items are added), not per request."""
        tables = self.model._tables
        if tables is None or self._catalogue is None or self._catalogue[0] is not tables:
            inputs = catalogue_inputs(self.model)
            feed = {k: v for k, v in inputs.items() if k in self.names}
            self._catalogue = (self.model._tables, feed)
        return self._catalogue[1]

    def score_last(
        self, items: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, N) scores, as ``RecLLMModel.score_last`` gives them."""
        feed = {
            "items": items.long().numpy(),
            "weights": weights.float().numpy(),
            "mask": mask.bool().numpy(),
        }
        feed = {k: v for k, v in feed.items() if k in self.names}
        (scores,) = self.session.run(None, {**feed, **self._catalogue_feed()})
        return torch.from_numpy(scores)

    @property
    def max_len(self) -> int:
        return self.model.max_len

    @property
    def pad_id(self) -> int:
        return self.model.pad_id

    @property
    def n_items(self) -> int:
        return self.model.n_items

    def eval(self) -> OnnxScorer:
        return self


def compare_with_eager(
    model: RecLLMModel, runtime: OnnxScorer, users: np.ndarray, history: object, k: int = 10
) -> dict[str, Any]:
    """How the graph ranks ``users`` (their ``history``, a ``UserSequences``) against
    eager PyTorch: users compared, users whose top ``k`` is identical, largest score gap."""
    from recllm.models.sequential import SequenceScorer

    with torch.no_grad():
        eager = SequenceScorer(model, batch_size=64)(users, history)  # type: ignore[arg-type]
        graph = SequenceScorer(runtime, batch_size=64)(users, history)  # type: ignore[arg-type]
    same = (eager.topk(k).indices == graph.topk(k).indices).all(1)
    return {
        "test_users_compared": len(users),
        "top10_identical": int(same.sum()),
        "max_abs_score_difference": float((eager - graph).abs().max()),
    }
