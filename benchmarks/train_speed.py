"""Epoch time of a training config with this commit's code against an earlier commit's.

Both sides train the same config with the same seed in separate ``recllm train``
processes (the earlier code runs from a temporary git worktree), alternating, and each
side's best epoch time counts. The config is the earlier commit's version of it, which
both sides can read (a later config may use settings the earlier code lacks). Their
first-epoch loss and validation metrics are compared, so a speed-up that changes what is
learnt shows as a difference.

    HF_HUB_OFFLINE=1 python benchmarks/train_speed.py --before 615efa4 [--rounds 2]

With ``--evaluate RUN`` both sides instead run ``recllm evaluate RUN --stage valid`` on
a trained run, and the evaluation loop's time counts; the metrics must agree.

Writes results/models/train_speed.json (``--evaluate``: eval_speed.json). Run it on a
quiet machine: it times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from recllm.bench import provenance, write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("recall@10", "ndcg@10")


def _args() -> argparse.Namespace:
    env = os.environ.get("RECLLM_DATA_DIR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit whose code is the baseline")
    parser.add_argument("--config", default="configs/amazon-beauty.yaml")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (each timed)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (best counts)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--evaluate", type=Path, default=None, help="time validation of this trained run instead"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()  # the runs' working folders differ
    if args.out is None:
        name = "eval_speed.json" if args.evaluate else "train_speed.json"
        args.out = REPO_ROOT / "results" / "models" / name
    return args


def _train(src: Path, args: argparse.Namespace, out: Path, config: Path) -> dict[str, Any]:
    """One ``recllm train`` run of ``config`` with the package in ``src``: each epoch's
    seconds and loss, and the last validation's metrics."""
    command = [
        sys.executable,
        "-m",
        "recllm",
        "train",
        str(config),
        f"output_dir={out}",
        f"trainer.epochs={args.epochs}",
        f"trainer.eval_every={args.epochs}",
        f"trainer.num_threads={args.threads}",
        "trainer.progress=false",
        "trainer.tensorboard=false",
        "--overwrite",
        "--data-dir",
        str(args.data_dir),
    ]
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    subprocess.run(command, check=True, env=env, cwd=src.parent, stdout=subprocess.DEVNULL)
    history = json.loads((out / "results.json").read_text())["history"]
    return {
        "seconds": [e["seconds"] for e in history],
        "losses": [e["loss"] for e in history],
        "valid": history[-1]["valid"],
    }


def _evaluate(src: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``recllm evaluate`` of the trained run ``args.evaluate`` on validation with the
    package in ``src``; the evaluation loop's seconds and the metrics."""
    command = [sys.executable, "-m", "recllm", "evaluate", str(args.evaluate.resolve())]
    command += ["--stage", "valid", "--json", "--quiet", "--data-dir", str(args.data_dir)]
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": str(args.threads),
    }
    done = subprocess.run(
        command, check=True, env=env, cwd=src.parent, capture_output=True, text=True
    )
    result = json.loads(done.stdout[done.stdout.index("\n{") :])  # the JSON after the table
    return {"seconds": [result["seconds"]], "losses": [], "valid": result["metrics"]}


def _side(runs: list[dict[str, Any]], timed: str) -> dict[str, Any]:
    """Seconds of every run, the best, and the first run's learning figures."""
    seconds = [s for run in runs for s in run["seconds"]]
    return {
        f"{timed}_seconds": [round(s, 1) for s in seconds],
        f"best_{timed}_seconds": round(min(seconds), 1),
        "losses": [round(loss, 5) for loss in runs[0]["losses"]],
        "valid": {k: round(runs[0]["valid"][k], 5) for k in COMPARED},
    }


def main() -> dict[str, Any]:
    args = _args()
    timed = "evaluation" if args.evaluate else "epoch"
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(tree), args.before],
            check=True,
            cwd=REPO_ROOT,
        )
        try:
            # training reads the earlier commit's config, which both codes understand
            measure = _evaluate if args.evaluate else partial(_train, config=tree / args.config)
            sources = {"before": tree / "src", "after": REPO_ROOT / "src"}
            for round_ in range(args.rounds):
                for side, src in sources.items():
                    print(f"round {round_ + 1}/{args.rounds}: {side}", flush=True)
                    runs[side].append(measure(src, args, Path(tmp) / f"{side}-{round_}"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT)
    before, after = _side(runs["before"], timed), _side(runs["after"], timed)
    best = f"best_{timed}_seconds"
    if args.evaluate:
        what = f"recllm evaluate {args.evaluate} --stage valid"
        difference = {}
    else:
        what = (
            f"recllm train {args.config} as of commit {args.before} for {args.epochs} "
            "epoch(s), seed 0"
        )
        difference = {"final_loss": round(after["losses"][-1] - before["losses"][-1], 5)}
    figures = {
        "benchmark": "eval_speed" if args.evaluate else "train_speed",
        **provenance(),
        "command": " ".join(["python", "benchmarks/train_speed.py", *sys.argv[1:]]),
        "what": f"{what}, {args.threads} threads, with the code of commit {args.before} "
        f"(before) and of this commit (after), alternating {args.rounds} rounds; the best "
        f"{timed} time counts",
        "before_commit": args.before,
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "before": before,
        "after": after,
        "speedup": round(before[best] / after[best], 2),
        "difference": {
            **difference,
            **{f"valid_{k}": round(after["valid"][k] - before["valid"][k], 5) for k in COMPARED},
        },
    }
    write_json(args.out, figures)
    print(
        f"{timed} {before[best]} s -> {after[best]} s ({figures['speedup']}x); "
        f"difference {figures['difference']}; wrote {args.out}"
    )
    return figures


if __name__ == "__main__":
    main()
