"""A toy bundle for the serving tests: a small RecLLM-Adapter run on the toy MovieLens
data, with a tiny router and explainer, exported as ``recllm export`` does."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from helpers import save_tiny_bert, write_toy_movielens
from recipes.test_train import run, toy_config

from recllm.explain.generator import GeneratorConfig
from recllm.recipes.explain import ExplainerTrainConfig, train_explainer
from recllm.recipes.export import export
from recllm.recipes.router import RouterTrainConfig, train_router
from recllm.routing.classifier import ClassifierConfig
from recllm.serve.process import ServerProcess, free_port


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


Server = ServerProcess  # recllm serve in a child process on a free loopback port


class RedisServer:
    """A real ``redis-server`` on a free loopback port, its files in ``folder``: append-only
    file on and fsynced before every reply (the durability the Redis store asks for)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> RedisServer:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always"]
        command += ["--save", "", "--logfile", str(self.folder / "redis.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.folder / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited ({self.process.returncode}): {log}")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer in {timeout:.0f} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None
