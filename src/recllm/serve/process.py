"""``recllm serve`` as a child process on a free loopback port (benchmarks and tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from recllm.errors import RecLLMError


class ServerProcess:
    """Start with :meth:`start` (returns once ``/readyz`` answers), stop with :meth:`stop`.
    The server's log goes to a file (a full pipe would block it): beside a SQLite store,
    in ``log_dir`` for a store URL."""

    def __init__(
        self,
        bundle: Path,
        store: Path | str,
        *args: str,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.bundle, self.store, self.args = Path(bundle), str(store), args
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if log_dir is None and "://" in self.store:
            raise RecLLMError(f"give log_dir for the server's log: the store {store} is a URL")
        beside = Path(self.store).with_suffix(f".{self.port}.log")
        self.log = beside if log_dir is None else Path(log_dir) / f"serve.{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def start(self, timeout: float = 120.0) -> ServerProcess:
        import httpx

        command = [sys.executable, "-m", "recllm", "serve", str(self.bundle)]
        command += ["--port", str(self.port), "--store", self.store, *self.args]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RecLLMError(
                    f"the server exited ({self.process.returncode}): {self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RecLLMError(f"the server did not become ready in {timeout:.0f} s")

    def peak_rss_mb(self) -> float:
        """The resident-memory high-water mark (Linux VmHWM) of the server, summed over its
        worker processes when it has several (an upper bound of their joint peak)."""
        total = 0.0
        for pid in [self.pid, *_descendants(self.pid)]:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024.0
        if not total:
            raise RecLLMError("VmHWM is not reported on this system")
        return total

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server and wait for it; its exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, recursively (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").is_file() else []
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found
