"""Where a result came from: command, git commit, package versions, machine, memory.

Every results file carries this, so that any number quoted from it can be rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# What counts as code: a change anywhere else (results files, docs, runs) cannot change
# a number, so it does not make a run dirty.
CODE_PATHS = ("src", "configs", "benchmarks", "pyproject.toml")


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """The commit checked out at ``cwd`` and whether its code differs from it.

    ``git_commit`` ends in ``-dirty`` only when a file under :data:`CODE_PATHS` differs
    from the commit (tracked changes, staged or not, and untracked files there);
    ``code_diff_sha256`` then hashes that difference, so two dirty runs with the same
    hash ran the same code. Outside a git checkout the commit is ``"unknown"``.
    """
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], cwd).decode().strip())
        commit = _git(["rev-parse", "HEAD"], top).decode().strip()
        paths = [p for p in CODE_PATHS if (top / p).exists()]
        diff = _git(["diff", "HEAD", "--binary", "--", *paths], top) if paths else b""
        listed = _git(["ls-files", "--others", "--exclude-standard", "-z", "--", *paths], top)
        untracked = sorted(n for n in listed.decode().split("\0") if n) if paths else []
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": "unknown", "code_diff_sha256": None, "dirty_scope": list(CODE_PATHS)}
    digest = hashlib.sha256(diff)
    for name in untracked:
        digest.update(f"\0untracked {name}\0".encode())
        digest.update((top / name).read_bytes())
    dirty = bool(diff or untracked)
    return {
        "git_commit": commit + ("-dirty" if dirty else ""),
        "code_diff_sha256": digest.hexdigest() if dirty else None,
        # Records without this key were stamped when "-dirty" meant any tracked file.
        "dirty_scope": list(CODE_PATHS),
    }


def _git(args: list[str], cwd: Path | None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


def provenance() -> dict[str, Any]:
    """Command, commit (see :func:`git_state`), versions and machine, for every results file."""
    import numpy
    import pandas
    import torch

    return {
        "command": " ".join(["recllm", *sys.argv[1:]]),
        **git_state(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
            "transformers": _version("transformers"),
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    Linux: VmHWM, the process's own high-water mark. ``ru_maxrss`` survives exec, so a
    spawned child (a served model, a ``recllm train`` started by a benchmark) would
    report its parent's peak. Elsewhere ``ru_maxrss`` (KB on Linux-likes)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
