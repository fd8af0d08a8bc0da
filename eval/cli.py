"""`rag eval ...`: parse flags, run one evaluation, write results.json, print the table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from eval.report import print_table, run_dir, write_results
from rag.retrieval import MODES
from rag.settings import Settings, load_settings

eval_app = typer.Typer(help="Evaluate retrieval (and, later, answers).", no_args_is_help=True)
console = Console()


def cache_index(kind: str, name: str, settings: Settings) -> Path:
    """A reusable index per dataset and settings, so a second eval costs no embedding."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragstack" / "eval"
    slug = settings.model.replace("/", "_")
    return cache / (
        f"{kind}-{name}-{slug}-{settings.embed_backend}-c{settings.chunk_size}-o{settings.chunk_overlap}"
    )


def _modes(mode: str | None) -> list[str]:
    if mode is None or mode == "all":
        return list(MODES)
    if mode not in MODES:
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)} or all")
    return [mode]


@eval_app.command("retrieval")
def retrieval(
    beir: Annotated[Path, typer.Option(help="BEIR dataset directory")],
    split: Annotated[str, typer.Option(help="qrels split: test, dev or train")] = "test",
    mode: Annotated[str | None, typer.Option(help="dense, bm25, hybrid or all (default)")] = None,
    index: Annotated[Path | None, typer.Option(help="Index directory (default: a cache)")] = None,
    model: Annotated[str | None, typer.Option(help="Embedding model")] = None,
    chunk_size: Annotated[int | None, typer.Option()] = None,
    embed_backend: Annotated[str | None, typer.Option(help="torch or onnx-int8")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/...)")] = None,
) -> None:
    """nDCG@10, Recall@{1,5,10,100} and MRR@10 on a BEIR dataset."""
    from eval.beir import evaluate_beir
    from rag.cli import run_guarded

    modes = _modes(mode)
    settings = run_guarded(lambda: load_settings(model=model, chunk_size=chunk_size, embed_backend=embed_backend))
    settings.index = index or cache_index("beir", beir.resolve().name, settings)
    results = run_guarded(lambda: evaluate_beir(beir, split, modes, settings))
    directory = run_dir(out, "retrieval")
    path = write_results(directory, results)
    print_table(f"{beir.name} {split} ({results['queries']} queries)", results["figures"], console)
    console.print(f"results: {path}")


@eval_app.command("pdfqa")
def pdfqa(
    qa_file: Annotated[Path, typer.Argument(help="Questions with evidence pages (JSONL)")],
    pdfs: Annotated[Path, typer.Option(help="Folder of the PDFs the questions are about")],
    mode: Annotated[str | None, typer.Option(help="dense, bm25, hybrid or all (default)")] = None,
    index: Annotated[Path | None, typer.Option(help="Index directory (default: a cache)")] = None,
    model: Annotated[str | None, typer.Option(help="Embedding model")] = None,
    chunk_size: Annotated[int | None, typer.Option()] = None,
    embed_backend: Annotated[str | None, typer.Option(help="torch or onnx-int8")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/...)")] = None,
) -> None:
    """Page hit@{1,5,10} and page-level MRR@10 on PDF questions."""
    from eval.pdfqa import evaluate_pdfqa
    from rag.cli import run_guarded

    modes = _modes(mode)
    settings = run_guarded(lambda: load_settings(model=model, chunk_size=chunk_size, embed_backend=embed_backend))
    settings.index = index or cache_index("pdfqa", pdfs.resolve().name, settings)
    results = run_guarded(lambda: evaluate_pdfqa(qa_file, pdfs, modes, settings))
    directory = run_dir(out, "pdfqa")
    path = write_results(directory, results)
    print_table(f"{qa_file.name} ({results['questions']} questions)", results["figures"], console)
    console.print(f"results: {path}")
