"""``recllm export --onnx``: the recommender as an ONNX graph that ranks exactly as PyTorch,
for the catalogue it was exported with and for items added afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recllm.bundle.load import load_bundle
from recllm.recipes.export import export
from recllm.serve.api import Recommender


def test_onnx_graph_ranks_as_pytorch_including_added_items(
    bundle_and_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run_dir = bundle_and_run
    bundle = tmp_path / "onnx-bundle"
    manifest = export(run_dir, bundle, onnx=True)
    check = manifest["models"]["recommender"]["onnx"]
    assert check["test_users_compared"] > 0
    assert check["top10_identical"] == check["test_users_compared"]
    assert check["max_abs_score_difference"] < 1e-3
    assert (bundle / check["file"]).is_file() and check["file"] in manifest["files"]
    assert manifest["models"]["recommender"]["backend"] in {"onnx", "torch"}

    parts = load_bundle(bundle)
    parts.onnx = bundle / check["file"]  # serve through ONNX Runtime whatever was faster
    graph = Recommender(parts)
    eager = Recommender.load(bundle)
    eager._scorer = eager.model
    assert graph.backend == "onnx" and eager.backend == "torch"
    new = [{"item_id": "n1", "title": "Item 3: The Sequel", "genres": "Comedy", "year": 1999}]
    for rec in (graph, eager):
        rec.add_items(new)
    for who in ({"user_id": "1"}, {"user_id": "12"}, {"history": ["3", "4"]}):
        a = graph.recommend(k=10, **who).items  # type: ignore[arg-type]
        b = eager.recommend(k=10, **who).items  # type: ignore[arg-type]
        assert [i.item_id for i in a] == [i.item_id for i in b]
        assert np.allclose([i.score for i in a], [i.score for i in b], atol=1e-3)
