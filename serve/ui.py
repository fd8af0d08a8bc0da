"""The web page (`rag serve --no-ui` turns it off): static files shipped in the package, served at
/ and /ui/... with no key, since they hold no data; everything the page shows it asks the same
HTTP API for, with the key the person types in."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"

# the page runs only its own scripts; blob: is where fetched page images, plots and PDFs live
POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'self' blob:; frame-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def add_ui(app: FastAPI) -> None:
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        headers = {
            "Content-Security-Policy": POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }
        return FileResponse(STATIC / "index.html", headers=headers)
