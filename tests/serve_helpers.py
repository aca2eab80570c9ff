"""A toy bundle for the serving tests: a small RecLLM-Adapter run on the toy MovieLens
data, with a tiny router and explainer, exported as ``recllm export`` does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from helpers import save_tiny_bert, write_toy_movielens
from recipes.test_train import run, toy_config

from recllm.explain.generator import GeneratorConfig
from recllm.recipes.explain import ExplainerTrainConfig, train_explainer
from recllm.recipes.export import export
from recllm.recipes.router import RouterTrainConfig, train_router
from recllm.routing.classifier import ClassifierConfig


def toy_bundle(
    tmp_path: Path, epochs: int = 3, extras: bool = True, **adapter: object
) -> tuple[Path, Path]:
    """(bundle, run_dir) of a toy run, with router and explainer when ``extras``."""
    config = toy_config(tmp_path, "rec", epochs=epochs, loss="ce")
    for key, value in adapter.items():
        setattr(config.adapter, key, value)
    run(config)
    run_dir = Path(config.output_dir)
    bundle = tmp_path / "bundle"
    if not extras:
        export(run_dir, bundle)
        return bundle, run_dir
    train_router(
        RouterTrainConfig(
            output_dir=str(tmp_path / "router"),
            catalogs=[str(write_toy_movielens(tmp_path / "ml-toy"))],
            per_intent=10,
            classifier=ClassifierConfig(backbone=str(save_tiny_bert(tmp_path / "router-bert"))),
            student_layers=[0],
            epochs=1,
            student_epochs=1,
            progress=False,
        )
    )
    train_explainer(
        ExplainerTrainConfig(
            run_dir=str(run_dir),
            output_dir=str(tmp_path / "explainer"),
            per_user=2,
            phrasings=2,
            epochs=2,
            generator=GeneratorConfig(d_model=32, n_heads=2, max_target=24),
            progress=False,
        )
    )
    export(run_dir, bundle, router=tmp_path / "router", explainer=tmp_path / "explainer")
    return bundle, run_dir


class Server:
    """``recllm serve`` in a child process on a free loopback port, stopped on exit."""

    def __init__(
        self,
        bundle: Path,
        store: Path,
        *args: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.bundle, self.store, self.args = bundle, store, args
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> Server:
        command = [sys.executable, "-m", "recllm", "serve", str(self.bundle)]
        command += ["--port", str(self.port), "--store", str(self.store), *self.args]
        self.log = self.store.with_suffix(f".{self.port}.log")
        with self.log.open("wb") as log:  # a file: a full pipe would block the server
            self.process = subprocess.Popen(
                command, env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.process.returncode}): {self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not become ready")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
