"""Item encoding in float32 vs bf16 autocast on CPU: seconds, speedup, agreement.

Encodes the 1,682 ML-100K item texts with the default backbone (all-MiniLM-L6-v2) in
both precisions, alternating, without the cache, and reports the best time of each
plus the cosine similarity between the two runs' pooled vectors (and token vectors).

    HF_HUB_OFFLINE=1 python benchmarks/item_encoding_bf16.py [--rounds 2]

Writes results/models/item_encoding_bf16.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from recllm.bench import provenance, write_json
from recllm.data.registry import load_dataset
from recllm.data.text import item_texts
from recllm.models.backbone import BackboneConfig, load_backbone
from recllm.models.item_encoder import encode_items

REPO_ROOT = Path(__file__).resolve().parents[1]


def _args() -> argparse.Namespace:
    env = os.environ.get("RECLLM_DATA_DIR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--rounds", type=int, default=2, help="runs per precision (best counts)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--n-tokens", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "results" / "models" / "item_encoding_bf16.json"
    )
    return parser.parse_args()


def main() -> dict[str, Any]:
    args = _args()
    texts = item_texts(load_dataset(args.dataset, args.data_dir))
    backbone = load_backbone(BackboneConfig())
    settings = {
        "n_tokens": args.n_tokens,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
    }
    encode_items(backbone, texts[:64], progress=False, **settings)  # warm-up
    encode_items(backbone, texts[:64], progress=False, bf16=True, **settings)
    seconds: dict[str, list[float]] = {"float32": [], "bf16": []}
    results = {}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for name, bf16 in (("float32", False), ("bf16", True)):
            start = time.perf_counter()
            results[name] = encode_items(backbone, texts, progress=False, bf16=bf16, **settings)
            seconds[name].append(time.perf_counter() - start)
    full, half = results["float32"], results["bf16"]
    pooled_cos = torch.nn.functional.cosine_similarity(full.pooled, half.pooled, dim=-1)
    mask = full.token_mask & half.token_mask
    token_cos = torch.nn.functional.cosine_similarity(full.tokens[mask], half.tokens[mask], dim=-1)
    best = {k: min(v) for k, v in seconds.items()}
    lengths = [
        len(ids)
        for ids in backbone.tokenizer(texts, truncation=True, max_length=args.max_length)[
            "input_ids"
        ]
    ]
    figures = {
        "benchmark": "item_encoding_bf16",
        **provenance(),
        "command": " ".join(["python", "benchmarks/item_encoding_bf16.py", *sys.argv[1:]]),
        "what": f"encode_items on all {args.dataset} item texts with the default backbone "
        f"(all-MiniLM-L6-v2), no cache, float32 vs torch.autocast('cpu', bfloat16), "
        f"alternating, best of {args.rounds}",
        "dataset": args.dataset,
        "n_items": len(texts),
        "mean_tokens_per_text": round(sum(lengths) / len(lengths), 1),
        "settings": settings,
        "threads": torch.get_num_threads(),
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "cpu_has_bf16_isa": _cpu_flags(),
        "seconds": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
        "best_seconds": {k: round(v, 2) for k, v in best.items()},
        "items_per_second": {k: round(len(texts) / v, 1) for k, v in best.items()},
        "speedup_bf16": round(best["float32"] / best["bf16"], 2),
        "pooled_cosine": {
            "mean": round(float(pooled_cos.mean()), 5),
            "min": round(float(pooled_cos.min()), 5),
        },
        "token_cosine": {
            "mean": round(float(token_cos.mean()), 5),
            "min": round(float(token_cos.min()), 5),
        },
    }
    write_json(args.out, figures)
    print(
        f"{len(texts)} items: float32 {best['float32']:.2f}s, bf16 {best['bf16']:.2f}s, "
        f"speedup {figures['speedup_bf16']}x; pooled cosine mean {figures['pooled_cosine']['mean']}, "
        f"min {figures['pooled_cosine']['min']}; wrote {args.out}"
    )
    return figures


def _cpu_flags() -> list[str]:
    """The CPU's bf16-relevant instruction sets (Linux), which decide whether bf16 pays."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    return sorted(
        f for f in flags if f in {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2"}
    )


if __name__ == "__main__":
    main()
