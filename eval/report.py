"""Writing a run's figures: a JSON file with everything, and a table on the terminal."""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rag.embedding import resolve_precision


def run_dir(out: Path | None, kind: str) -> Path:
    path = out or Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("ragstack", "sentence-transformers", "faiss-cpu", "bm25s", "torch", "ranx"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def write_results(directory: Path, results: dict) -> Path:
    path = directory / "results.json"
    path.write_text(json.dumps({**results, "versions": versions()}, indent=2) + "\n")
    return path


def print_table(title: str, rows: dict[str, dict[str, float]], console: Console | None = None) -> None:
    """rows: row name -> metric -> value; columns are the metrics of the first row."""
    console = console or Console()
    metrics = list(next(iter(rows.values())))
    table = Table("", *metrics, title=title)
    for name, values in rows.items():
        table.add_row(name, *(f"{values[m]:.4f}" for m in metrics))
    console.print(table)


def index_settings(settings, manifest) -> dict:
    """The settings a figure depends on, as the index recorded them."""
    torch_backend = manifest.embed_backend == "torch"
    return {
        "index": str(settings.index),
        "model": manifest.model,
        "embed_backend": manifest.embed_backend,
        "embed_precision": resolve_precision(settings.embed_precision) if torch_backend else None,
        "chunk_size": manifest.chunk_size,
        "chunk_overlap": manifest.chunk_overlap,
        "index_factory": manifest.index_factory,
    }
