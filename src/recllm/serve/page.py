"""The page at ``/``: a static HTML/CSS/JavaScript front end to try the service.

Everything it needs ships in ``static/`` and is served by the app itself (no CDN, no build
step), so it works offline. The page only calls the public JSON routes (``/readyz``,
``/v1/...``), so it shows exactly what any client of the API gets.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


def install_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/static`` (left out of the schema)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")
