"""``recllm bench distill``: teacher, distilled student, student trained alone, and the
distilled student quantised to int8 and run by ONNX Runtime, side by side in one run.

Accuracy: full-catalogue Recall/NDCG@10/20 on the test split, all evaluated here by the
same evaluator. Efficiency, each model in a fresh process of its own (so its memory is
its own): parameters, model bytes (the weights a checkpoint holds; the item metadata
embeddings are a shared cache both read, reported apart), latency of one request
(batch 1, a history of 50 items, the whole catalogue scored, top-10 returned; p50/p99
over ``--repeats`` x 100 requests on one thread after a warm-up), throughput at batch 64,
and peak resident memory above the process's start. Both models serve with their
catalogue tables precomputed (:meth:`RecLLMModel.cache_catalogue`). Histories are 50
distinct random items (seeded): the cost of a request does not depend on which.

The ONNX row is the distilled student's request path exported as a graph
(:mod:`recllm.models.onnx_graph`) and run by ONNX Runtime on the same thread count; its
accuracy is evaluated through ONNX Runtime too, and ``onnx.top10_identical`` counts the
test users whose top 10 equals eager PyTorch's. Its model bytes are the graph file alone:
the item ID embeddings and metadata projections reach it as the precomputed catalogue
tables it takes as inputs.

The ratios the issue asks for are written next to the raw figures: ``speedup`` (teacher
p50 / student p50), ``memory_reduction`` (1 - student bytes / teacher bytes) and
``recall_retention`` (student Recall@10 / teacher Recall@10).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from recllm.errors import RecLLMError
from recllm.provenance import peak_rss_mb

RESULTS_FILE = "distill/{dataset}.json"
HISTORY = 50
TOP = 10
THROUGHPUT_BATCH = 64
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of the weights a checkpoint of ``model`` holds (int8 packed weights count one
    byte per value), not the non-persistent catalogue buffers."""
    total = 0

    def add(value: Any) -> None:
        nonlocal total
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()  # qint8: 1 byte
        elif isinstance(value, tuple | list):
            for part in value:
                add(part)

    for value in model.state_dict().values():
        add(value)
    return total


def quantised(model: torch.nn.Module) -> torch.nn.Module:
    """int8 dynamic quantisation of every Linear layer (weights int8, activations float)."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, dtype=torch.qint8)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _serve(
    run_dir: str, variant: str, requests_path: str, threads: int, repeats: int, out: Any
) -> None:
    """Child process: load one model as a server would, then time and measure it."""
    from safetensors.torch import load_file

    from recllm.config import from_dict
    from recllm.models.backbone import load_backbone
    from recllm.models.item_encoder import ItemEncodings
    from recllm.models.recllm import RecLLMModel
    from recllm.recipes.train import TrainConfig

    torch.set_num_threads(threads)
    start_rss = _rss_mb()
    requests = load_file(requests_path)
    config = from_dict(TrainConfig, json.loads((Path(run_dir) / "config.json").read_text()))
    backbone = load_backbone(config.backbone)
    if backbone.attn_implementation != "sdpa" and not backbone.is_decoder:
        backbone.base_model.set_attn_implementation("sdpa")  # trained eager for its maps
    encodings = ItemEncodings(requests["pooled"], requests["tokens"], requests["token_mask"])
    model: torch.nn.Module = RecLLMModel.from_pretrained(
        Path(run_dir) / "best", backbone, encodings, catalogue=config.adapter.catalogue or None
    )
    parameters = sum(p.numel() for p in model.parameters())
    if variant == "int8":
        model = quantised(model)
    assert isinstance(model, RecLLMModel)
    model.cache_catalogue()
    scorer: Any = model
    size = model_bytes(model)
    if variant == "onnx":
        from recllm.models.onnx_graph import OnnxScorer, export_onnx

        graph = Path(requests_path).with_name("student.onnx")
        export_onnx(model, graph)
        scorer = OnnxScorer(graph, model, threads=threads)
        size = graph.stat().st_size  # the graph only: the catalogue tables are its inputs
    items, history_mask = requests["items"], requests["history_mask"]
    weights, mask = torch.ones(items.shape), torch.ones(items.shape, dtype=torch.bool)

    def request(rows: slice) -> torch.Tensor:
        scores = scorer.score_last(items[rows], weights[rows], mask[rows])
        scores = scores.masked_fill(history_mask[rows], float("-inf"))
        return scores.topk(TOP, dim=1).indices

    from recllm.bench.timing import latency_ms

    with torch.no_grad():
        calls = [lambda i=i: request(slice(i, i + 1)) for i in range(100)]
        latency = latency_ms(calls, repeats=repeats, warmup=10)
        batches = [slice(s, s + THROUGHPUT_BATCH) for s in range(0, len(items), THROUGHPUT_BATCH)]
        request(batches[0])
        began = time.perf_counter()
        for rows in batches:
            request(rows)
        seconds = time.perf_counter() - began
    peak = peak_rss_mb()
    out.put(
        {
            "parameters": parameters,
            "model_bytes": size,
            "latency_p50_ms": latency["p50_ms"],
            "latency_p99_ms": latency["p99_ms"],
            "latency_requests_timed": latency["timed"],
            "throughput_per_s": round(len(items) / seconds, 1),
            "peak_rss_mb": round(peak, 1),
            "peak_rss_above_start_mb": round(peak - start_rss, 1),
        }
    )


def efficiency(
    run_dir: Path, variant: str, requests_path: Path, threads: int, repeats: int
) -> dict[str, Any]:
    """Run :func:`_serve` for one model in a fresh process; its figures."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=_serve, args=(str(run_dir), variant, str(requests_path), threads, repeats, queue)
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RecLLMError(f"measuring {run_dir} failed (exit {process.exitcode})")
    figures: dict[str, Any] = queue.get(timeout=5)
    return figures


def history_length(model: Any) -> int:
    return int(min(HISTORY, model.max_len, model.n_items - TOP))


def _requests(model: Any, n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` histories of 50 distinct random items (fewer if the model's max_len or the
    catalogue is smaller), and the catalogue metadata."""
    g = torch.Generator().manual_seed(seed)
    length = history_length(model)
    items = torch.stack([torch.randperm(model.n_items, generator=g)[:length] for _ in range(n)])
    history_mask = torch.zeros(n, model.n_items, dtype=torch.bool)
    history_mask.scatter_(1, items, True)
    return {
        "items": items,
        "history_mask": history_mask,
        "pooled": model.pooled[:-1].contiguous(),
        "tokens": model.meta_tokens[:-1].contiguous(),
        "token_mask": model.meta_mask[:-1].contiguous(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from safetensors.torch import save_file

    from recllm.eval.evaluator import evaluate
    from recllm.models.recllm import RecLLMModel
    from recllm.recipes.inference import load_run
    from recllm.recipes.models import make_scorer

    if args.checkpoint is None or not args.students:
        raise RecLLMError(
            "bench distill needs --checkpoint TEACHER_RUN and --students distilled=RUN "
            "[alone=RUN ...] (the output_dirs of `recllm train` and `recllm distill`)"
        )
    students = dict(_named(s) for s in args.students)
    if "distilled" not in students:
        raise RecLLMError("--students must name one run 'distilled' (the ratios compare it)")
    teacher = load_run(args.checkpoint, args.data_dir, progress=False)
    if not isinstance(teacher.model, RecLLMModel):
        raise RecLLMError(f"the teacher {args.checkpoint} is not a RecLLM-Adapter run")
    catalogue = teacher.model
    rows: dict[str, dict[str, Any]] = {}
    runs: dict[str, tuple[Path, str]] = {"teacher": (Path(args.checkpoint), "torch")}
    models: dict[str, torch.nn.Module] = {"teacher": teacher.model}
    for name, folder in students.items():
        loaded = load_run(folder, args.data_dir, progress=False)
        if loaded.split.summary() != teacher.split.summary():
            raise RecLLMError(f"{name} ({folder}) was trained on another split than the teacher")
        models[name] = loaded.model
        runs[name] = (folder, "torch")
    models["distilled-int8"] = quantised(models["distilled"])
    runs["distilled-int8"] = (students["distilled"], "int8")
    runs["distilled-onnx"] = (students["distilled"], "onnx")

    with tempfile.TemporaryDirectory() as tmp:
        requests_path = Path(tmp) / "requests.safetensors"
        save_file(_requests(catalogue, n=4 * THROUGHPUT_BATCH, seed=0), str(requests_path))
        onnx_check: dict[str, Any] = {}
        for name, (folder, variant) in runs.items():
            print(f"{name}: accuracy and serving")
            if variant == "onnx":
                scorer, onnx_check = _onnx_scorer(models["distilled"], teacher.split, Path(tmp))
            else:
                scorer = make_scorer(models[name])  # type: ignore[arg-type]  # int8: a RecLLMModel
            test = evaluate(scorer, teacher.split, "test", progress=False)
            rows[name] = {
                "run": str(folder),
                "int8": variant == "int8",
                "backend": "onnxruntime" if variant == "onnx" else "torch",
                **{k: test.metrics[k] for k in METRICS},
                **efficiency(folder, variant, requests_path, args.threads, args.repeats),
            }
    t, s = rows["teacher"], rows["distilled"]
    ratios = {
        "speedup": round(t["latency_p50_ms"] / s["latency_p50_ms"], 2),
        "memory_reduction": round(1 - s["model_bytes"] / t["model_bytes"], 4),
        "recall_retention": round(s["recall@10"] / t["recall@10"], 4),
    }
    if "alone" in rows:
        ratios["recall_vs_alone"] = round(s["recall@10"] / rows["alone"]["recall@10"], 4)
    q = rows["distilled-int8"]
    ratios["int8"] = {
        "speedup": round(t["latency_p50_ms"] / q["latency_p50_ms"], 2),
        "memory_reduction": round(1 - q["model_bytes"] / t["model_bytes"], 4),
        "recall_retention": round(q["recall@10"] / t["recall@10"], 4),
    }
    o = rows["distilled-onnx"]
    ratios["onnx"] = {
        "speedup": round(t["latency_p50_ms"] / o["latency_p50_ms"], 2),
        "speedup_over_eager_student": round(s["latency_p50_ms"] / o["latency_p50_ms"], 2),
        "recall_retention": round(o["recall@10"] / t["recall@10"], 4),
        **onnx_check,
    }
    _print_table(rows)
    return {
        "dataset": teacher.split.dataset.name,
        "protocol": {
            "split": teacher.split.summary(),
            "evaluation": "full catalogue, history items excluded, test split",
            "request": f"batch 1, {history_length(catalogue)}-item history, whole catalogue scored, top-{TOP}; "
            f"throughput at batch {THROUGHPUT_BATCH}; {args.threads} thread(s); each model in "
            "its own process; catalogue tables precomputed for every model",
            "catalogue_metadata_bytes": int(
                sum(b.numel() * b.element_size() for b in (catalogue.pooled, catalogue.meta_tokens))
            ),
        },
        **ratios,
        "rows": rows,
    }


def _onnx_scorer(model: Any, split: Any, tmp: Path) -> tuple[Any, dict[str, Any]]:
    """The student through ONNX Runtime as the evaluator's scorer, and how its test users'
    top 10 compare with eager PyTorch's."""
    from recllm.models.onnx_graph import OnnxScorer, compare_with_eager, export_onnx
    from recllm.models.sequential import SequenceScorer

    path = tmp / "evaluated.onnx"
    export_onnx(model, path)
    runtime = OnnxScorer(path, model)
    users = split.targets("test")["user"].to_numpy()
    check = compare_with_eager(model, runtime, users, split.sequences("test"), TOP)
    return SequenceScorer(runtime), check


def _named(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise RecLLMError(f"--students takes NAME=RUN_DIR, got {value!r}")
    return name, Path(folder)


def _print_table(rows: dict[str, dict[str, Any]]) -> None:
    header = f"{'model':<16}{'params':>10}{'MB':>8}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}{'R@10':>7}{'N@10':>7}"
    print(header)
    for name, r in rows.items():
        print(
            f"{name:<16}{r['parameters']:>10,}{r['model_bytes'] / 2**20:>8.2f}{r['latency_p50_ms']:>8.2f}"
            f"{r['latency_p99_ms']:>8.2f}{r['throughput_per_s']:>8.0f}{r['recall@10']:>7.3f}{r['ndcg@10']:>7.3f}"
        )
