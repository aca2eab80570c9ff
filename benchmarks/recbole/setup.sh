#!/usr/bin/env bash
# Create the isolated RecBole 1.2.1 environment used by benchmarks/recbole/run.py.
#
#   bash benchmarks/recbole/setup.sh            # from the repository root (or anywhere)
#
# The venv lives at <repo>/.venv-recbole (git-ignored) and never sees recllm: RecBole is an
# external reference, so it must not share packages with the project's environment.
# Idempotent: re-running reuses the venv and pip skips what is already satisfied.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${RECBOLE_VENV:-$REPO/.venv-recbole}"
PYTHON="${PYTHON:-python3.11}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

# 1. torch first, pinned: an unpinned `torch` (RecBole asks for torch>=1.10) would pull a
#    multi-GB CUDA build; 2.13.0 resolves to the CPU wheel on this machine's disk.
"${PIP[@]}" "torch==2.13.0"

# 2. RecBole and the pins its 1.2.1 release needs. numpy<2: RecBole's Config re-creates
#    np.float, np.int, ... from np.float_, np.unicode_ (removed in numpy 2), and its metrics
#    use np.float. pandas<2.3 and scipy<1.12: conservative pins to releases of its time
#    (RecBole itself asks only pandas>=1.3, scipy>=1.6). torch stays at 2.13.0.
#    The other packages are imported unconditionally by recbole.utils / recbole.trainer
#    (colorlog, colorama, tensorboard, thop, tabulate, texttable, psutil, plotly); RecBole
#    pins colorlog==4.7.2 and colorama==0.4.4 itself. recbole 1.2.1 also requires
#    ray<=2.6.3 (recbole.quick_start imports ray.tune at import time); that ray imports
#    pkg_resources, which setuptools removed in 81, hence setuptools<81. run.py does not
#    go through recbole.quick_start, so it works without ray, but the pin keeps the whole
#    package importable. hyperopt (hyper-parameter search only) is not installed.
"${PIP[@]}" \
    "torch==2.13.0" \
    "recbole==1.2.1" \
    "numpy<2" \
    "pandas<2.3" \
    "scipy<1.12" \
    "setuptools<81" \
    "colorlog==4.7.2" \
    "colorama==0.4.4" \
    tensorboard thop tabulate texttable psutil plotly pyyaml tqdm scikit-learn

# 3. smoke check: import RecBole and print the versions that results files record.
"$VENV/bin/python" -W ignore::UserWarning - <<'PY'
import numpy, pandas, scipy, torch, recbole
from recbole.quick_start import run_recbole  # noqa: F401  (pulls in most of the package)
print(f"recbole {recbole.__version__}  torch {torch.__version__}  numpy {numpy.__version__}  "
      f"pandas {pandas.__version__}  scipy {scipy.__version__}")
PY
echo "RecBole environment ready: $VENV/bin/python benchmarks/recbole/run.py --help"
