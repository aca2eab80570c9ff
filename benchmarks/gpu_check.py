"""One-GPU check (run by ``benchmarks/gpu_check.sh``): the tiny end-to-end tests on CUDA,
then one epoch of the ML-100K student (``configs/distill/ml-100k.yaml``'s student trained
on L_rec alone: no teacher run is needed), its figures written to a results file.

Without a CUDA GPU it prints why and exits 0, having run nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = "tests/recipes/test_cuda.py"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="holds ml-100k/")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_check.json")
    parser.add_argument("--tests-timeout", type=int, default=150, help="seconds for the tests")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: SKIPPED: torch sees no CUDA GPU on this machine; nothing was run.")
        return 0
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name(0)}
    figures["tests"] = run_tests(args.tests_timeout)
    figures["student_epoch"] = student_epoch(args.data_dir)
    from recllm.provenance import provenance, write_json

    record = {"benchmark": "gpu_check", **provenance(), **figures}
    record["command"] = " ".join(["benchmarks/gpu_check.sh", *argv])
    write_json(args.out, record)
    print(json.dumps(figures, indent=2))
    print(f"wrote {args.out}")
    return 0 if figures["tests"]["passed"] else 1


def run_tests(timeout: int) -> dict[str, Any]:
    """The CUDA test file under pytest; its outcome counts and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider"]
        command += ["--junitxml", str(junit)]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, timeout=timeout, check=False)
            code: int | str = done.returncode
        except subprocess.TimeoutExpired:
            code = f"timed out after {timeout} s"
        seconds = time.perf_counter() - started
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if junit.is_file():
            suite = ET.parse(junit).getroot()
            suite = suite if suite.tag == "testsuite" else suite[0]
            counts = {k: int(suite.get(k, 0)) for k in counts}
    ran = counts["tests"] - counts["skipped"]
    return {
        "file": TESTS,
        "exit_status": code,
        "seconds": round(seconds, 1),
        **counts,
        "passed": code == 0 and ran > 0 and not counts["failures"] + counts["errors"],
    }


def student_epoch(data_dir: Path | None) -> dict[str, Any]:
    """One epoch of the ML-100K student on the GPU: setup (data, item encodings), the
    epoch, the test evaluation; samples/s and the peak GPU memory."""
    import torch

    from recllm.config import from_dict, load_yaml
    from recllm.distill.config import DistillConfig
    from recllm.distill.student import student_train_config
    from recllm.recipes.train import TrainConfig, TrainRecipe

    teacher = from_dict(TrainConfig, load_yaml(ROOT / "configs" / "ml-100k.yaml"))
    distill = from_dict(DistillConfig, load_yaml(ROOT / "configs" / "distill" / "ml-100k.yaml"))
    config = student_train_config(teacher, distill)
    with tempfile.TemporaryDirectory() as tmp:
        config.output_dir = str(Path(tmp) / "student")
        config.data.cache_dir = str(Path(tmp) / "cache")  # a cold start: encodings included
        if data_dir is not None:
            config.data.data_dir = str(data_dir)
        trainer = config.trainer
        trainer.device, trainer.epochs, trainer.progress, trainer.tensorboard = (
            "cuda",
            1,
            False,
            False,
        )
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        recipe = TrainRecipe(config, overwrite=True)
        recipe.setup()
        torch.cuda.synchronize()
        set_up = time.perf_counter()
        recipe.train()
        torch.cuda.synchronize()
        trained = time.perf_counter()
        test = recipe.test_best()
        done = time.perf_counter()
        sequences = len(recipe.train_data)
        recipe.cleanup()
    epoch = trained - set_up
    return {
        "config": "configs/distill/ml-100k.yaml (student, L_rec alone)",
        "setup_seconds": round(set_up - started, 2),
        "epoch_seconds": round(epoch, 2),
        "train_sequences": sequences,
        "samples_per_second": round(sequences / epoch, 1),
        "test_seconds": round(done - trained, 2),
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "test_metrics": {k: round(v, 5) for k, v in test.metrics.items()},
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
