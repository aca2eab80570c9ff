"""Item encoding shared by 2 processes (gloo): every rank ends with the same encodings,
bit for bit, as one process makes, and rank 0 alone writes the cache."""

from __future__ import annotations

from pathlib import Path

import torch
from dist_helpers import spawn
from helpers import save_tiny_bert
from safetensors.torch import load_file, save_file

from recllm import distributed
from recllm.models.backbone import BackboneConfig, load_backbone
from recllm.models.item_encoder import CACHE_SUBDIR, ItemEncodings, encode_items

TEXTS = [f"title {'abcdefgh'[i % 8] * (1 + i % 5)} | genre {i % 3}" for i in range(23)] + [""]


def encode(model: Path, cache: Path | None, world: distributed.World) -> ItemEncodings:
    backbone = load_backbone(BackboneConfig(name_or_path=str(model)))
    return encode_items(
        backbone,
        TEXTS,
        n_tokens=3,
        max_length=16,
        batch_size=5,
        cache_dir=cache,
        progress=False,
        world=world,
    )


def tables(encodings: ItemEncodings) -> dict[str, torch.Tensor]:
    return {"pooled": encodings.pooled, "tokens": encodings.tokens, "mask": encodings.token_mask}


def worker(rank: int, model: str, root: str) -> None:
    encodings = encode(Path(model), Path(root) / "cache", distributed.init("cpu"))
    save_file(tables(encodings), f"{root}/rank-{rank}.safetensors")


def test_sharded_encoding_equals_one_process(tmp_path: Path) -> None:
    model = save_tiny_bert(tmp_path / "tiny-bert")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs: another thread count sums in another order
    try:
        alone = tables(encode(model, None, distributed.World()))
    finally:
        torch.set_num_threads(threads)
    spawn(worker, 2, str(model), str(tmp_path))
    for rank in range(2):
        mine = load_file(str(tmp_path / f"rank-{rank}.safetensors"))
        for name, table in alone.items():
            assert torch.equal(mine[name], table), (rank, name)
    cached = list((tmp_path / "cache" / CACHE_SUBDIR).glob("*.safetensors"))
    assert len(cached) == 1
    assert torch.equal(ItemEncodings.load(cached[0]).pooled, alone["pooled"])
