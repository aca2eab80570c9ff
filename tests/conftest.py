"""Fixtures shared by all tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR_ENV = "RECLLM_DATA_DIR"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared datasets: ``$RECLLM_DATA_DIR``, else ``../shared/data``.

    Tests that need it are skipped, with the path that was looked at, when it is absent.
    """
    env = os.environ.get(DATA_DIR_ENV)
    path = Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        source = f"${DATA_DIR_ENV}" if env else "the default ../shared/data"
        pytest.skip(f"shared datasets not found at {path} ({source}); set {DATA_DIR_ENV}")
    return path


@pytest.fixture(scope="session")
def bundle_and_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A toy RecLLM-Adapter run with router and explainer, and its bundle (serving tests)."""
    from serve_helpers import toy_bundle

    return toy_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def bundle(bundle_and_run: tuple[Path, Path]) -> Path:
    return bundle_and_run[0]
