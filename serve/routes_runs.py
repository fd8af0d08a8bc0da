"""Eval runs for the web page: the run directories under `runs_dir` (RAG_RUNS_DIR, `rag serve
--runs`), one run's report as HTML and the files beside it, two runs compared (serve.runs does
the work). Not scoped to a collection: any request with a valid key may read them.

Plain `def`s: they read files and render Markdown, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from serve import runs

router = APIRouter(prefix="/runs")
RunName = Annotated[str, Query(min_length=1, max_length=255)]


def _root(request: Request) -> Path:
    return request.app.state.rag.settings.runs_dir


@router.get("")
def list_runs(request: Request) -> dict:
    """name, modified (seconds since the epoch), report and results (whether each file is there),
    the latest changed first."""
    return {"object": "list", "data": runs.list_runs(_root(request))}


# before /{name}: "compare" is this route, not a run
@router.get("/compare")
def compare_runs(a: RunName, b: RunName, request: Request) -> dict:
    """`rag eval compare A B` as HTML and rows, written to a temporary file, not into a run."""
    return runs.compare(_root(request), a, b)


@router.get("/{name}")
def run_report(name: str, request: Request) -> dict:
    """The run's report.md as HTML (its plots at /v1/runs/NAME/files/...) and its files."""
    return runs.run_page(_root(request), name)


@router.get("/{name}/files/{file}", response_class=FileResponse)
def run_file(name: str, file: str, request: Request) -> FileResponse:
    """A .png, .md, .json or .csv file directly inside the run's directory."""
    path, media_type = runs.run_file(_root(request), name, file)
    return FileResponse(path, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
