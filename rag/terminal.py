"""What the `rag` commands share: the consoles, the exit codes, common options, and turning
the errors a user can cause into a message and an exit code instead of a traceback.

The command modules (rag.cli, eval.cli, serve.cli, embed_finetune.cli, llm_finetune.cli) import
this module and never each other: rag.cli loads the others through the `ragstack.commands` entry
point, so their importing rag.cli back would be a cycle. It imports nothing of ours but the
storage layer's exceptions, so that any command module can import it at its top.

Exit codes: 0 done; 1 some files could not be ingested (the rest were); 2 bad input
(unknown index, bad flag or value, mismatched model); 3 the index is locked by another writer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from indexes import IndexLocked, StoreError

out = Console()
err = Console(stderr=True, soft_wrap=True)

EXIT_FAILED_FILES, EXIT_BAD_INPUT, EXIT_LOCKED = 1, 2, 3

IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="Index directory [env RAG_INDEX; default ~/.local/share/ragstack/index]"),
]

CollectionOpt = Annotated[
    str | None,
    typer.Option("--collection", help="A named collection beside the default index [env RAG_COLLECTION]"),
]

RerankOpt = Annotated[
    str | None,
    typer.Option("--rerank", help="Cross-encoder over the top 50: a `rag finetune-rerank` dir or hub id "
                 "[env RAG_RERANKER]"),
]

# options of both fine-tuning commands (finetune-embed, finetune-llm); each keeps its own defaults
EpochsOpt = Annotated[float, typer.Option(help="Passes over the training data")]
MaxStepsOpt = Annotated[int, typer.Option(help="Stop after this many steps (-1: all epochs)")]
LrOpt = Annotated[float, typer.Option("--lr", help="Learning rate")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue an interrupted run in --out")]

T = TypeVar("T")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print `message` as an error; the caller raises the returned exit."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def run_guarded(fn: Callable[[], T]) -> T:
    """Turn the errors a user can cause into a message and an exit code, not a traceback."""
    try:
        return fn()
    except IndexLocked as e:
        raise fail(str(e), EXIT_LOCKED) from None
    except (StoreError, ValueError, KeyError, FileNotFoundError) as e:
        raise fail(str(e.args[0]) if isinstance(e, KeyError) else str(e)) from None
