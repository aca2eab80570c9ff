"""Tables of docs/scale.md: the measured training scaling (``recllm bench scale``), the
epoch time projected from it, and the paper setting's memory plan (``recllm bench
memory-plan``). A table whose results file is not there yet says which command makes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recllm.bench.scale_training import project_epoch_seconds
from recllm.docgen.markdown import Column, Record, read_record, source_line, table, text

PROJECTED_WORKERS = [1, 2, 4, 8, 16, 32]
PLAN_PARTS = (
    ("weights", "weights"),
    ("gradients", "gradients"),
    ("Adam states", "optimizer_states"),
    ("activations", "activations"),
    ("gathered layers", "gathered_layers"),
    ("item encodings", "item_encodings"),
    ("total", "total"),
)


def scale_tables(results: Path) -> dict[str, str]:
    """``scale-training``, ``scale-projection`` and ``scale-memory-plan``."""
    return {**_training(results), **_memory_plan(results)}


def _training(results: Path) -> dict[str, str]:
    path = results / "data" / "scale.json"
    training = read_record(path).get("training") if path.is_file() else None
    if not training:
        missing = (
            "Not measured yet: `recllm bench scale` writes this table's figures to "
            "`results/data/scale.json` (its training section).\n"
        )
        return {"scale-training": missing, "scale-projection": missing}
    rows: list[tuple[str, Record]] = [
        (f"{model}, {n} process{'es' if n != '1' else ''}", row)
        for model, by_n in training["models"].items()
        for n, row in by_n.items()
    ]
    measured = table(
        rows,
        [
            Column("global batch", "global_batch_size", fmt="d"),
            Column("samples/s", "samples_per_second", fmt=",.1f"),
            Column("speedup", "speedup", fmt=".2f", suffix="x"),
            Column("scaling efficiency", "scaling_efficiency", fmt=".0%"),
            text(
                "peak MB per process",
                lambda r: ", ".join(f"{mb:,.0f}" for mb in r["peak_rss_mb_per_process"]),
            ),
            Column("trainable parameters", "trainable_parameters", fmt=",d"),
        ],
        "model, processes",
    )
    projected = [
        (model, project_epoch_seconds(by_n, PROJECTED_WORKERS))
        for model, by_n in training["models"].items()
        if "1" in by_n and len(by_n) > 1  # Amdahl's fit needs one process and more
    ]
    source = source_line([path], results.parent)
    if not projected:
        no_fit = "No projection: it needs runs on 1 and on more processes (`--processes 1 2`).\n"
        return {"scale-training": measured + source, "scale-projection": no_fit}
    projection = table(
        projected,
        [
            Column("train sequences", "train_sequences", fmt=",d"),
            Column("parallel fraction", "parallel_fraction", fmt=".3f"),
            *(
                Column(f"{w} worker{'s' if w > 1 else ''}", _minutes(w), fmt=",.1f", suffix=" min")
                for w in PROJECTED_WORKERS
            ),
        ],
        "model (epoch time)",
    )
    return {"scale-training": measured + source, "scale-projection": projection + source}


def _minutes(workers: int) -> Callable[[Record], float]:
    return lambda r: r["epoch_seconds"][str(workers)] / 60


def _memory_plan(results: Path) -> dict[str, str]:
    path = results / "scale" / "memory_plan.json"
    if not path.is_file():
        return {
            "scale-memory-plan": "Not computed yet: `recllm bench memory-plan` writes "
            "`results/scale/memory_plan.json`.\n"
        }
    plan = read_record(path)
    columns = [
        Column("parameters", "parameters/total", fmt=",d"),
        Column("trainable", "parameters/trainable", fmt=",d"),
        Column("sequences per GPU", "sequences_per_gpu", fmt="d"),
        *(Column(f"{label} GiB", f"per_gpu_gib/{key}", fmt=".2f") for label, key in PLAN_PARTS),
        text(f"fits {plan['gpu_memory_gib']} GiB", lambda r: "yes" if r["fits"] else "no"),
    ]
    return {
        "scale-memory-plan": table(list(plan["rows"].items()), columns, "model, placement")
        + source_line([path], results.parent)
    }
