"""Epoch time of a training config with this commit's code against an earlier commit's.

Both sides train the same config with the same seed in separate ``recllm train``
processes (the earlier code runs from a temporary git worktree), alternating, and each
side's best epoch time counts. Their first-epoch loss and validation metrics are
compared, so a speed-up that changes what is learnt shows as a difference.

    HF_HUB_OFFLINE=1 python benchmarks/train_speed.py --before 615efa4 [--rounds 2]

Writes results/models/train_speed.json. Run it on a quiet machine: it times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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
        "--data-dir", type=Path, default=Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "results" / "models" / "train_speed.json"
    )
    return parser.parse_args()


def _train(src: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``recllm train`` run of ``args.config`` with the package in ``src``; its history."""
    command = [
        sys.executable,
        "-m",
        "recllm",
        "train",
        str(REPO_ROOT / args.config),
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
    return json.loads((out / "results.json").read_text())["history"]


def _side(histories: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Epoch seconds of every run, the best, and the first run's learning figures."""
    seconds = [e["seconds"] for history in histories for e in history]
    last = histories[0][-1]
    return {
        "epoch_seconds": [round(s, 1) for s in seconds],
        "best_epoch_seconds": round(min(seconds), 1),
        "losses": [round(e["loss"], 5) for e in histories[0]],
        "valid": {k: round(last["valid"][k], 5) for k in COMPARED},
    }


def main() -> dict[str, Any]:
    args = _args()
    runs: dict[str, list[list[dict[str, Any]]]] = {"before": [], "after": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(tree), args.before],
            check=True,
            cwd=REPO_ROOT,
        )
        try:
            sources = {"before": tree / "src", "after": REPO_ROOT / "src"}
            for round_ in range(args.rounds):
                for side, src in sources.items():
                    print(f"round {round_ + 1}/{args.rounds}: {side}", flush=True)
                    runs[side].append(_train(src, args, Path(tmp) / f"{side}-{round_}"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT)
    before, after = _side(runs["before"]), _side(runs["after"])
    figures = {
        "benchmark": "train_speed",
        **provenance(),
        "command": " ".join(["python", "benchmarks/train_speed.py", *sys.argv[1:]]),
        "what": f"recllm train {args.config} for {args.epochs} epoch(s), seed 0, "
        f"{args.threads} threads, with the code of commit {args.before} (before) and of "
        f"this commit (after), alternating {args.rounds} rounds; best epoch time counts",
        "before_commit": args.before,
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "before": before,
        "after": after,
        "speedup": round(before["best_epoch_seconds"] / after["best_epoch_seconds"], 2),
        "difference": {
            "final_loss": round(after["losses"][-1] - before["losses"][-1], 5),
            **{f"valid_{k}": round(after["valid"][k] - before["valid"][k], 5) for k in COMPARED},
        },
    }
    write_json(args.out, figures)
    print(
        f"epoch {before['best_epoch_seconds']} s -> {after['best_epoch_seconds']} s "
        f"({figures['speedup']}x); difference {figures['difference']}; wrote {args.out}"
    )
    return figures


if __name__ == "__main__":
    main()
