"""``recllm bench scale``: ML-20M-sized load and evaluation on SYNTHETIC data.

The design requires MovieLens-20M-sized data (138k users, 27k items, 20M interactions)
to fit this machine. Without the real files at hand, this benchmark measures the same
pipeline on SYNTHETIC data of that shape (:mod:`recllm.data.synth`), written in the
ML-20M CSV layout and parsed by the real ML-20M loader:

1. generate the dataset (timed, but not a target), or reuse
   ``DATA_DIR/synthetic-ml20m`` when its README records the same config;
2. in a fresh process: load from CSV (cache off) + preprocess (default
   :class:`PreprocessConfig`) + leave-one-out split. Targets: < 60 s, < 6 GB peak;
3. in another fresh process, which reads the split saved by step 2 (Parquet, so the
   raw parse is not in its memory): full-ranking evaluation of :class:`Popularity` for
   every user on the test stage with :class:`EvalConfig` defaults. Targets: < 120 s,
   < 4 GB peak;
4. training (:mod:`recllm.bench.scale_training`): samples/s of RecLLM-Adapter and of
   the distillation student with 1 and N processes (DDP over gloo, one thread each),
   peak memory per process and the scaling efficiency (no target: measured figures for
   the projection in docs/scale.md). ``--training-steps 0`` leaves it out.

Each step, generation included, runs in its own fresh process, so its peak resident
memory is that of the step alone, interpreter and imports included (reported apart as
``baseline_rss_mb``). The peak is read from ``VmHWM`` in ``/proc/self/status``:
``getrusage(RUSAGE_SELF).ru_maxrss`` is also reported, but on Linux a child inherits
its parent's peak across fork + exec, so it can overstate a small step (it reads at
least the parent's peak). Times depend on how busy the machine is: the load average at
the start is recorded next to them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recllm import paths
from recllm.bench import peak_rss_mb
from recllm.data.synth import SynthConfig, read_synthetic_config, write_synthetic

_STATUS = Path("/proc/self/status")

DATA_LABEL = "SYNTHETIC MovieLens-20M-shaped data (recllm.data.synth), not MovieLens"
TARGETS = {
    "load_preprocess_split_seconds": 60.0,
    "load_preprocess_split_peak_rss_mb": 6144.0,  # 6 GiB
    "evaluation_seconds": 120.0,
    "evaluation_peak_rss_mb": 4096.0,  # 4 GiB
}
FOLDER_NAME = "synthetic-ml20m"
_RESULT_PREFIX = "RECLLM_SCALE_RESULT "


@dataclass
class TrainingPlan:
    """What the training section runs: timed steps (after ``warmup`` untimed ones) at
    each process count, global batches of ``batch_size``; item encodings and the parsed
    data are cached in ``cache_dir`` across runs."""

    steps: int = 20
    warmup: int = 3
    processes: tuple[int, ...] = (1, 2)
    batch_size: int = 128
    cache_dir: Path | None = None
    overrides: list[str] = field(default_factory=list)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark entry point (see the module docstring); ``--datasets`` is ignored."""
    reuse = paths.data_dir(getattr(args, "data_dir", None)) / FOLDER_NAME
    steps = getattr(args, "training_steps", 0)
    plan = (
        TrainingPlan(
            steps=steps,
            processes=tuple(getattr(args, "processes", (1, 2))),
            cache_dir=paths.cache_dir(getattr(args, "cache_dir", None)),
            overrides=list(getattr(args, "set", [])),
        )
        if steps
        else None
    )
    with tempfile.TemporaryDirectory(prefix="recllm-scale-") as work:
        figures = run_scale(SynthConfig(), Path(work), reuse=reuse, training=plan)
    print_table(figures)
    return figures


def run_scale(
    config: SynthConfig,
    work: Path,
    reuse: Path | None = None,
    progress: bool = True,
    training: TrainingPlan | None = None,
) -> dict[str, Any]:
    """Generate (or reuse) the data, run the measured steps, compare with the targets.

    Args:
        work: scratch folder for the generated data and the saved split.
        reuse: a folder of synthetic data to use instead of generating, if its README
            records exactly ``config``.
    """
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    data, generation = prepare_data(config, work, reuse, progress)
    split_dir = work / "split"
    load = run_stage("load", data, split_dir, progress)
    evaluation = run_stage("eval", data, split_dir, progress)
    load["target_seconds"] = TARGETS["load_preprocess_split_seconds"]
    load["target_peak_rss_mb"] = TARGETS["load_preprocess_split_peak_rss_mb"]
    evaluation["target_seconds"] = TARGETS["evaluation_seconds"]
    evaluation["target_peak_rss_mb"] = TARGETS["evaluation_peak_rss_mb"]
    for step in (load, evaluation):
        step["pass_seconds"] = step["seconds"] < step["target_seconds"]
        step["pass_peak_rss"] = step["peak_rss_mb"] < step["target_peak_rss_mb"]
    figures = {
        "data": DATA_LABEL,
        "synthetic": True,
        "synth_config": asdict(config),
        "load_average_at_start": load_average,
        "generation": generation,
        "load_preprocess_split": load,
        "evaluation": evaluation,
        "targets": TARGETS,
        "passed": all(s[k] for s in (load, evaluation) for k in ("pass_seconds", "pass_peak_rss")),
    }
    if training is not None:
        from recllm.bench.scale_training import model_configs, run_training

        cache = training.cache_dir or work / "cache"
        configs = model_configs(
            data, cache, work / "training", training.batch_size, training.overrides
        )
        (work / "training").mkdir(parents=True, exist_ok=True)
        figures["training"] = run_training(
            configs, list(training.processes), training.steps, training.warmup, work / "training"
        )
    return figures


def prepare_data(
    config: SynthConfig, work: Path, reuse: Path | None = None, progress: bool = True
) -> tuple[Path, dict[str, Any]]:
    """The data folder to measure, and how it was obtained (generation time apart)."""
    if reuse is not None and read_synthetic_config(reuse) == config:
        return reuse, {"reused": str(reuse), "seconds": None}
    out = work / FOLDER_NAME
    figures = run_stage("gen", out, work / "split", progress, config)
    return out, {"reused": None, **figures}


def run_stage(
    stage: str,
    data: Path,
    split_dir: Path,
    progress: bool = True,
    config: SynthConfig | None = None,
) -> dict[str, Any]:
    """Run ``stage`` (``gen``, ``load`` or ``eval``) in a fresh Python process.

    The child's progress bars and logs go to this process's stderr; its figures come
    back as one JSON line on stdout. ``gen`` writes ``config``'s data into ``data``.
    """
    command = [sys.executable, "-m", "recllm.bench.scale", stage, str(data), str(split_dir)]
    if config is not None:
        command += ["--config", json.dumps(asdict(config))]
    if not progress:
        command.append("--quiet")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX) and done.returncode == 0:
            return dict(json.loads(line[len(_RESULT_PREFIX) :]))
    raise RuntimeError(
        f"scale benchmark step {stage!r} failed (exit status {done.returncode}); its error "
        f"is printed above. Command: {' '.join(command)}"
    )


def process_peak_rss_mb() -> float:
    """Peak resident memory of this process alone, in MB (``VmHWM``; else ``ru_maxrss``)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return peak_rss_mb()


def _memory(baseline: float, peak: float) -> dict[str, float]:
    return {
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "ru_maxrss_mb": round(peak_rss_mb(), 1),
    }


def measure_generation(config: SynthConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Write the synthetic data (not a target; reported so its cost is known)."""
    baseline = process_peak_rss_mb()
    start = time.perf_counter()
    write_synthetic(config, out, progress=progress)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), **_memory(baseline, process_peak_rss_mb())}


def measure_load(data: Path, split_dir: Path) -> dict[str, Any]:
    """Parse the CSVs (no cache), preprocess, split; save the split for :func:`measure_eval`."""
    from recllm.data.preprocess import preprocess
    from recllm.data.registry import load_dataset
    from recllm.data.splits import split

    baseline = process_peak_rss_mb()
    start = time.perf_counter()
    raw = load_dataset(data, use_cache=False)
    loaded = time.perf_counter()
    clean = preprocess(raw)
    del raw
    cleaned = time.perf_counter()
    parts = split(clean)
    done = time.perf_counter()
    peak = process_peak_rss_mb()  # before saving the split, which is not part of the step
    split_dir.mkdir(parents=True, exist_ok=True)
    for name in ("train", "valid", "test"):
        getattr(parts, name).to_parquet(split_dir / f"{name}.parquet", index=False)
    shape = {"name": clean.name, "n_users": parts.n_users, "n_items": parts.n_items}
    (split_dir / "meta.json").write_text(json.dumps(shape))
    return {
        "seconds": round(done - start, 2),
        "load_seconds": round(loaded - start, 2),
        "preprocess_seconds": round(cleaned - loaded, 2),
        "split_seconds": round(done - cleaned, 2),
        **_memory(baseline, peak),
        "users": parts.n_users,
        "items": parts.n_items,
        "interactions": len(clean.interactions),
        "split": parts.summary(),
    }


def measure_eval(split_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Full-ranking evaluation of Popularity on the test stage of the saved split."""
    import numpy as np
    import pandas as pd

    from recllm.data.schema import ITEM_ID, Dataset
    from recllm.data.splits import Split
    from recllm.eval.evaluator import EvalConfig, evaluate
    from recllm.models.popularity import Popularity

    baseline = process_peak_rss_mb()
    shape = json.loads((split_dir / "meta.json").read_text())
    frames = {n: pd.read_parquet(split_dir / f"{n}.parquet") for n in ("train", "valid", "test")}
    # Evaluation needs only the catalogue's size from the dataset, not its text.
    dataset = Dataset(
        name=shape["name"],
        interactions=frames["train"],
        user_ids=np.arange(shape["n_users"]).astype(str),
        items=pd.DataFrame({ITEM_ID: np.arange(shape["n_items"]).astype(str)}),
    )
    parts = Split(dataset, "leave_one_out", frames["train"], frames["valid"], frames["test"])
    loaded = process_peak_rss_mb()
    scorer = Popularity(parts.train["item"].to_numpy(), parts.n_items)
    config = EvalConfig()
    start = time.perf_counter()
    result = evaluate(scorer, parts, "test", config, progress=progress)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        **_memory(baseline, process_peak_rss_mb()),
        "peak_rss_after_reading_split_mb": round(loaded, 1),
        "scorer": "Popularity",
        "stage": "test",
        "eval_config": asdict(config),
        "users_evaluated": result.n_users,
        "items_ranked": parts.n_items,
        "metrics_on_synthetic_data": {k: round(v, 5) for k, v in result.metrics.items()},
    }


def print_table(figures: dict[str, Any]) -> None:
    """A short human-readable summary of :func:`run_scale`'s figures."""
    config = figures["synth_config"]
    gen, load, ev = figures["generation"], figures["load_preprocess_split"], figures["evaluation"]
    print(
        f"\n{DATA_LABEL}\n{config['n_users']:,} users, {config['n_items']:,} items, "
        f"{config['n_interactions']:,} ratings; load average at start: "
        f"{figures['load_average_at_start']}"
    )
    header = f"{'step':<34}{'seconds':>9}{'target':>9}{'peak MB':>10}{'target':>9}  pass"
    print(header)
    print("-" * len(header))
    if gen["reused"]:
        print(f"{'generate data (not a target)':<34}{'reused':>9}{'-':>9}{'-':>10}{'-':>9}  -")
    else:
        print(
            f"{'generate data (not a target)':<34}{gen['seconds']:>9.1f}{'-':>9}"
            f"{gen['peak_rss_mb']:>10.0f}{'-':>9}  -"
        )
    for label, step in (
        ("load + preprocess + split", load),
        (f"evaluate Popularity ({ev['items_ranked']:,} items)", ev),
    ):
        ok = "yes" if step["pass_seconds"] and step["pass_peak_rss"] else "NO"
        time_target, rss_target = (
            f"< {step['target_seconds']:g}",
            f"< {step['target_peak_rss_mb']:g}",
        )
        print(
            f"{label:<34}{step['seconds']:>9.1f}{time_target:>9}"
            f"{step['peak_rss_mb']:>10.0f}{rss_target:>9}  {ok}"
        )
    print(
        f"load: parse {load['load_seconds']:.1f} s, preprocess {load['preprocess_seconds']:.1f} "
        f"s, split {load['split_seconds']:.1f} s; baseline RSS: {load['baseline_rss_mb']:.0f} "
        f"MB (load), {ev['baseline_rss_mb']:.0f} MB (evaluate)\n"
    )
    training = figures.get("training")
    if training:
        print(f"training ({training['steps']} timed steps, one thread per process)")
        print(f"{'model':<18}{'processes':>10}{'samples/s':>11}{'efficiency':>12}  peak MB each")
        for model, rows in training["models"].items():
            for n, row in rows.items():
                efficiency = row.get("scaling_efficiency", "-")
                print(
                    f"{model:<18}{n:>10}{row['samples_per_second']:>11.1f}{efficiency!s:>12}  "
                    + ", ".join(f"{m:.0f}" for m in row["peak_rss_mb_per_process"])
                )


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m recllm.bench.scale")
    parser.add_argument("stage", choices=["gen", "load", "eval"])
    parser.add_argument("data", type=Path)
    parser.add_argument("split_dir", type=Path)
    parser.add_argument("--config", default=None, help="SynthConfig as JSON (gen)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="recllm: %(message)s", stream=sys.stderr)
    if args.stage == "gen":
        config = SynthConfig(**json.loads(args.config or "{}"))
        figures = measure_generation(config, args.data, progress=not args.quiet)
    elif args.stage == "load":
        figures = measure_load(args.data, args.split_dir)
    else:
        figures = measure_eval(args.split_dir, progress=not args.quiet)
    print(_RESULT_PREFIX + json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
