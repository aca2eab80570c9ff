"""Run the service with uvicorn: one process, or several workers sharing the store.

The bundle is checked in this process first, so a damaged bundle or a busy port is one
line on stderr, not a worker's traceback. SIGHUP reloads the bundle in place (each worker
its own); SIGTERM stops accepting connections and lets in-flight requests finish.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

from recllm.bundle.format import read_manifest
from recllm.serve.app import MULTIPROCESS_ENV, ServiceSettings, ServiceState, create_app

log = logging.getLogger(__name__)
GRACEFUL_SECONDS = 30


def reload_on_sighup(state: ServiceState) -> None:
    """Reload the bundle when the process gets SIGHUP (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        def run() -> None:
            try:
                state.reload()
            except Exception as exc:  # the old bundle keeps serving
                log.error("reload on SIGHUP failed, still serving the previous bundle: %s", exc)

        threading.Thread(target=run, name="recllm-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, handler)


def serve(
    settings: ServiceSettings, host: str, port: int, workers: int = 1, access_log: bool = False
) -> None:
    """Serve until stopped. ``access_log``: uvicorn's line per request, off by default
    (``/metrics`` counts every request by route and status; the line costs a cheap
    request several per cent of its CPU)."""
    import uvicorn

    read_manifest(Path(settings.bundle))  # one-line error if unusable
    if workers > 1:
        os.environ["RECLLM_SERVE_SETTINGS"] = json.dumps(asdict(settings))
        # The workers' metrics meet in one folder, so /metrics sums them (see _Metrics).
        with tempfile.TemporaryDirectory(prefix="recllm-metrics-") as metrics_dir:
            os.environ[MULTIPROCESS_ENV] = metrics_dir
            uvicorn.run(
                "recllm.serve.server:worker_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
                log_level="info",
                access_log=access_log,
            )
        return
    app = create_app(settings)
    reload_on_sighup(app.state.service)
    uvicorn.run(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        log_level="info",
        access_log=access_log,
    )


def worker_app() -> object:
    """The app of one worker process (settings come from the parent's environment)."""
    from recllm.serve.app import settings_from_env

    app = create_app(settings_from_env())
    reload_on_sighup(app.state.service)
    return app
