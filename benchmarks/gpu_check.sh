#!/usr/bin/env bash
# One-GPU check, a few minutes: the tiny end-to-end tests on CUDA (tests/recipes/test_cuda.py)
# and one epoch of the ML-100K student; figures -> results/gpu_check.json (or --out FILE).
# Without a CUDA GPU it prints why and exits 0, running nothing.
#   bash benchmarks/gpu_check.sh [--data-dir DIR] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: SKIPPED: torch sees no CUDA GPU on this machine (torch.cuda.is_available() is false, or torch is missing); nothing was run."
    exit 0
fi
export HF_HUB_OFFLINE=1
export RECLLM_DATA_DIR=${RECLLM_DATA_DIR:-../shared/data}
# the whole check, tests and epoch, is bounded: 5 minutes
exec timeout 300 "$PYTHON" benchmarks/gpu_check.py "$@"
