"""The `rag` command: a thin shell that parses flags, calls one function, prints the result.

Exit codes and the error handling every command shares are in rag.terminal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from indexes import IndexStore
from rag.settings import load_settings
from rag.terminal import EXIT_FAILED_FILES, CollectionOpt, IndexOpt, RerankOpt, out, run_guarded

app = typer.Typer(help="Ask questions over PDF collections.", no_args_is_help=True)
docs_app = typer.Typer(help="List and remove indexed documents.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="PDF files and folders (searched recursively)")],
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    model: Annotated[str | None, typer.Option(help="Embedding model: local dir or hub id")] = None,
    chunk_size: Annotated[int | None, typer.Option(help="Tokens per chunk")] = None,
    overlap: Annotated[int | None, typer.Option(help="Tokens shared by neighbouring chunks")] = None,
    index_type: Annotated[str | None, typer.Option(help="FAISS factory string, or auto")] = None,
    backend: Annotated[
        str | None, typer.Option(help="Where the search structures live: local (default) or milvus")
    ] = None,
    milvus_uri: Annotated[
        str | None, typer.Option(help="Milvus server URI, or a milvus-lite file [INDEX/milvus.db]")
    ] = None,
    extractor: Annotated[str | None, typer.Option(help="pdfium (default), pypdf or pymupdf")] = None,
    ray: Annotated[
        str | None, typer.Option(help="Parse and embed on Ray: local (a new cluster here), auto or ray://HOST")
    ] = None,
    embed_backend: Annotated[
        str | None, typer.Option(help="auto (default: the faster here, measured once), torch or onnx-int8")
    ] = None,
    ocr: Annotated[
        str | None,
        typer.Option(help="auto: OCR pages without readable text ([ocr] extra); always; never (default)"),
    ] = None,
    query_prompt: Annotated[
        str | None, typer.Option(help='Put before each query, e.g. "query: " for E5 models')
    ] = None,
    document_prompt: Annotated[
        str | None, typer.Option(help='Put before each chunk, e.g. "passage: " for E5 models')
    ] = None,
    prune: Annotated[bool, typer.Option(help="Remove indexed files that are gone")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
) -> None:
    """Add new and changed PDFs to the index; unchanged files are skipped."""
    from rag.ingest import ingest as run_ingest

    settings = run_guarded(lambda: load_settings(
        index=index, collection=collection, model=model, chunk_size=chunk_size, chunk_overlap=overlap,
        index_type=index_type, index_backend=backend, milvus_uri=milvus_uri, extractor=extractor,
        ray_address=ray,
        embed_backend=embed_backend, ocr=ocr, query_prompt=query_prompt, document_prompt=document_prompt,
    ))
    report = run_guarded(lambda: run_ingest(paths, settings, prune=prune, progress=not quiet))
    table = Table("file", "status", "pages", "chunks", "problem", title="ingest")
    for f in report.files:
        colour = {"failed": "red", "unchanged": "dim"}.get(f.status, "green")
        table.add_row(f.name, f"[{colour}]{f.status}[/{colour}]", str(f.pages), str(f.chunks),
                      f.error)
    out.print(table)
    counts = ", ".join(
        f"{report.count(s)} {s}" for s in ("added", "updated", "unchanged", "removed", "failed")
    )
    out.print(f"{counts}; {report.chunks_embedded} chunks embedded, {report.chunks_reused} reused; "
              f"generation {report.generation} in {settings.index}")
    if report.failed:
        raise typer.Exit(EXIT_FAILED_FILES)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for")],
    k: Annotated[int | None, typer.Option("-k", help="Number of results")] = None,
    mode: Annotated[str | None, typer.Option(help="dense, bm25 or hybrid (default)")] = None,
    doc: Annotated[list[str] | None, typer.Option(help="Only these documents (repeatable)")] = None,
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    collapse: Annotated[
        bool | None, typer.Option("--collapse/--no-collapse", help="Fold near-duplicate results into one")
    ] = None,
    rerank: RerankOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Search the index and print the best chunks with their document and pages."""
    from rag.retrieval import Retriever

    settings = run_guarded(
        lambda: load_settings(
            index=index, collection=collection, top_k=k, mode=mode, collapse_duplicates=collapse,
            reranker=rerank,
        )
    )
    retriever = run_guarded(lambda: Retriever.from_settings(settings))
    results = run_guarded(
        lambda: retriever.search(
            query, settings.top_k, settings.mode, docs=doc or None, collapse=settings.collapse_duplicates
        )
    )
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
        return
    for rank, r in enumerate(results, 1):
        out.print(f"[bold]{rank}. {r.label()}[/bold]  score {r.score:.4f}{_also_in(r)}", highlight=False)
        out.print("   " + " ".join(r.text.split())[:300], highlight=False)
    if not results:
        out.print("no results")


@app.command()
def status(
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show the index: model, index type, chunking, counts."""
    settings = run_guarded(lambda: load_settings(index=index, collection=collection))
    with run_guarded(lambda: IndexStore(settings.index).open()) as snap:
        documents = snap.documents()  # name, n_chunks and manifest stay readable once closed
    info = {
        "index": str(settings.index),
        "generation": snap.name,
        "documents": len(documents),
        "pages": sum(d.pages for d in documents),
        "chunks": snap.n_chunks,
        **{k: v for k, v in snap.manifest.__dict__.items() if k != "extra"},
        **_backend_status(snap.manifest),
        **_precision_status(settings, snap.manifest),
    }
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    table = Table("setting", "value", title="index status", show_header=False)
    for key, value in info.items():
        table.add_row(key, str(value))
    out.print(table)


def _backend_status(manifest) -> dict:
    """Why the index's vectors are of their kind: the measurement a new index here is made by."""
    from rag.calibration import cpu_model, recorded

    found = recorded(manifest.model, "backend")
    if found is None:
        return {"embed_backend_why": "set when the index was made; nothing measured on this machine"}
    if "why" in found:
        why = found["why"]
    else:
        speeds = ", ".join(f"{b} {v} texts/s" for b, v in found["texts_per_s"].items())
        why = (f"measured on {cpu_model()} on {found['measured']}: {speeds}; "
               f"int8's mean cosine to torch fp32 {found['agreement']}")
    if found["choice"] != manifest.embed_backend:
        why += f" (a new index here gets {found['choice']}; an index keeps the kind it was made with)"
    return {"embed_backend_why": why}


def _precision_status(settings, manifest) -> dict:
    """The embedding precision the next ingest or search here uses, and why."""
    from rag.calibration import cpu_model, recorded
    from rag.embedding import resolve_precision

    if manifest.embed_backend != "torch":
        return _query_status(settings, manifest)
    precision = resolve_precision(settings.embed_precision, model=manifest.model)
    found = recorded(manifest.model) if settings.embed_precision == "auto" else None
    if settings.embed_precision != "auto":
        why = "set (RAG_EMBED_PRECISION)"
    elif found is None:
        why = "from the CPU's flags: not calibrated on this machine yet (the first embedding does it)"
    else:
        speeds = ", ".join(f"{p} {v} texts/s" for p, v in found["texts_per_s"].items())
        why = f"measured on {cpu_model()} on {found['measured']}: {speeds}"
    return {"embed_precision": precision, "embed_precision_why": why, **_query_status(settings, manifest)}


def _query_status(settings, manifest) -> dict:
    """The query embedder searches here use, and why."""
    from rag.calibration import cpu_model, recorded

    found = recorded(manifest.model, "queries")
    if settings.query_backend != "auto":
        backend, why = settings.query_backend, "set (RAG_QUERY_BACKEND)"
    elif manifest.embed_backend != "torch":
        backend, why = manifest.embed_backend, "the index's own: its vectors are int8 ONNX ones"
    elif found is None:
        backend, why = "auto", "not measured on this machine yet (the first search does it)"
    elif "why" in found:
        backend, why = found["choice"], found["why"]
    else:
        speeds = ", ".join(f"{b} {ms} ms" for b, ms in found["ms_per_query"].items())
        agree = ", ".join(f"{b} {a}" for b, a in found["agreement"].items())
        backend = found["choice"]
        why = (f"measured on {cpu_model()} on {found['measured']}: {speeds} a query; "
               f"mean cosine to the index's kind of vectors: {agree}")
    return {"query_backend": backend, "query_backend_why": why}


@docs_app.command("list")
def docs_list(
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List indexed documents."""
    settings = run_guarded(lambda: load_settings(index=index, collection=collection))
    with run_guarded(lambda: IndexStore(settings.index).open()) as snap:
        documents = snap.documents()
    if as_json:
        sys.stdout.write(json.dumps([{**vars(d), "title": d.title} for d in documents], indent=2) + "\n")
        return
    table = Table("name", "pages", "chunks", "header", "sha256", "path", title="documents")
    for d in documents:
        header = f"[bold]{d.user_title}[/bold] (set)" if d.user_title else d.header
        table.add_row(d.name, str(d.pages), str(d.chunks), header, d.sha256[:12], d.path)
    out.print(table)


@docs_app.command("set-title")
def docs_set_title(
    name: Annotated[str, typer.Argument(help="Document name (as `rag docs list` shows)")],
    title: Annotated[str, typer.Argument(help="The title its header and chunks should carry")],
    index: IndexOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Give a document a title of your own; its chunks are embedded again under the new header."""
    from rag.ingest import set_title

    settings = run_guarded(lambda: load_settings(index=index, collection=collection))
    report = run_guarded(lambda: set_title(name, title, settings))
    out.print(f"title of {name} set; {report.chunks_embedded} chunks embedded again; "
              f"generation {report.generation}", highlight=False)


@docs_app.command("remove")
def docs_remove(
    names: Annotated[list[str], typer.Argument(help="Document names (as `rag docs list` shows)")],
    index: IndexOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Remove documents from the index."""
    from rag.ingest import remove_documents

    settings = run_guarded(lambda: load_settings(index=index, collection=collection))
    report = run_guarded(lambda: remove_documents(names, settings))
    out.print(f"removed {report.count('removed')} document(s); generation {report.generation}")


@app.command()
def reindex(
    model: Annotated[str, typer.Option(help="New embedding model: a directory (finetune-embed) or hub id")],
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    into: Annotated[Path | None, typer.Option(help="Write to this new index directory instead")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
) -> None:
    """Re-embed the whole index with another model, published atomically as a new generation;
    searches keep working (on the old generation) while it runs."""
    from rag.reindex import reindex as run_reindex

    settings = run_guarded(lambda: load_settings(index=index, collection=collection))
    report = run_guarded(lambda: run_reindex(settings, model, into, progress=not quiet))
    out.print(f"re-embedded {report.chunks} chunks with {report.model} (was {report.previous_model}) "
              f"in {report.seconds:.1f} s; generation {report.generation} in {report.index}", highlight=False)


EngineOpt = Annotated[
    str | None, typer.Option(help="onnx (default, embedded), transformers (embedded), openai or vllm")
]


def _also_in(result) -> str:
    """The places a result's near-duplicate text also stands (another edition, say); its own
    page's other chunks, folded into it too, add no place."""
    places = list(dict.fromkeys(s.label() for s in result.also_in if s.label() != result.label()))
    return f"  (also in {', '.join(places)})" if places else ""


def _print_sources(answer) -> None:
    cited = {c.n: c for c in answer.citations}
    for n, source in enumerate(answer.sources, 1):
        mark = "cited" if n in cited and not cited[n].attributed else "matched" if n in cited else ""
        out.print(f"  [{n}] {source.label()} {mark}{_also_in(source)}", highlight=False)
    if answer.invalid_citations:
        out.print(f"  removed citations to missing sources: {answer.invalid_citations}", highlight=False)
    for claim in answer.claims:
        if not claim.supported:
            out.print(
                f"  [yellow]unsupported[/]: {escape(', '.join(claim.unsupported))} (in no source) "
                f"in: {escape(claim.sentence)}",
                highlight=False,
            )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question")],
    session: Annotated[str | None, typer.Option(help="Continue (or start) this conversation")] = None,
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    engine: EngineOpt = None,
    rerank: RerankOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Answer a question from the index, citing documents and pages; through a running `rag
    serve` of the index when one is up (its models are loaded), unless --session, --engine or
    --rerank asks for what only a local answer does."""
    from rag.conversation import open_chat

    settings = run_guarded(
        lambda: load_settings(index=index, collection=collection, engine=engine, reranker=rerank)
    )
    answer = _ask_server(settings, question) if session is None and engine is rerank is None else None
    if answer is None:
        chat = run_guarded(lambda: open_chat(settings))
        try:
            answer = run_guarded(lambda: chat.ask(question, session))
        finally:
            chat.close()
    if as_json:
        sys.stdout.write(json.dumps(answer.to_dict(), indent=2) + "\n")
        return
    out.print(answer.text, highlight=False)
    _print_sources(answer)


@app.command()
def chat(
    session: Annotated[str | None, typer.Option(help="Continue this conversation")] = None,
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    engine: EngineOpt = None,
    rerank: RerankOpt = None,
) -> None:
    """Interactive chat over the index; answers stream as they are written. Ctrl-D ends it.
    Through a running `rag serve` of the index when one is up, as `rag ask`."""
    from rag.conversation import open_chat
    from rag.remote import open_remote

    settings = run_guarded(
        lambda: load_settings(index=index, collection=collection, engine=engine, reranker=rerank)
    )
    remote = open_remote(settings) if session is None and engine is rerank is None else None
    if remote is not None:
        _chat_through(remote)
        return
    conversation = run_guarded(lambda: open_chat(settings))
    try:
        session_id = run_guarded(lambda: conversation.sessions.create(session))
        out.print(f"session {session_id}; Ctrl-D to quit", style="dim")
        while question := _read_question():
            turn = conversation.turn(question, session_id)
            for piece in turn:
                out.print(piece, end="", highlight=False)
            out.print()
            _print_sources(turn.answer)
    finally:
        conversation.close()


def _ask_server(settings, question: str):
    """The answer of a running `rag serve` of the index, or None (none up, or it failed: then the
    question is answered here, as if there were none)."""
    import httpx

    from rag.remote import RemoteError, open_remote

    remote = open_remote(settings)
    if remote is None:
        return None
    try:
        return remote.ask(question)
    except (RemoteError, httpx.HTTPError) as err:
        out.print(f"rag serve at {remote.url} did not answer ({err}); answering here", style="dim")
        return None
    finally:
        remote.close()


def _chat_through(remote) -> None:
    """`rag chat` against a running server: the server keeps the session."""
    import httpx

    from rag.remote import RemoteError

    session_id = None
    out.print(f"answering through rag serve at {remote.url}; Ctrl-D to quit", style="dim")
    try:
        while question := _read_question():
            try:
                turn = remote.turn(question, session_id)
                for piece in turn:
                    out.print(piece, end="", highlight=False)
            except (RemoteError, httpx.HTTPError) as err:
                out.print(f"rag serve at {remote.url} did not answer: {err}", style="red")
                continue
            out.print()
            session_id = turn.session_id or session_id
            _print_sources(turn.answer)
    finally:
        remote.close()


def _read_question() -> str | None:
    """The next non-empty line typed; None at Ctrl-D or Ctrl-C."""
    while True:
        try:
            question = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.print()
            return None
        if question:
            return question


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where to write the PDFs and the index")] = Path(
        "demo"
    ),
    question: Annotated[
        str | None, typer.Option(help="What to search for and answer [default: how re-indexing is safe]")
    ] = None,
) -> None:
    """Render ragstack's own docs to PDF, ingest them, search them and answer a question."""
    from rag.demo import run_demo

    report, results, answer = run_guarded(lambda: run_demo(workdir, question))
    out.print(f"ingested {report.count('added') + report.count('updated')} new PDF(s), "
              f"{report.pages} pages, into {workdir / 'index'}")
    out.print(f"\nsearch: {answer.question}", highlight=False)
    for rank, r in enumerate(results, 1):
        out.print(f"[bold]{rank}. {r.label()}[/bold]  score {r.score:.4f}", highlight=False)
        out.print("   " + " ".join(r.text.split())[:300], highlight=False)
    out.print(f"\nask: {answer.question}", highlight=False)
    out.print(answer.text, highlight=False)
    _print_sources(answer)


def _add_commands() -> None:
    """Commands of the packages built on rag (eval, serve, the fine-tuning ones) register
    through entry points, so that rag itself imports none of them; they import rag.terminal,
    never this module."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="ragstack.commands"):
        entry.load()(app)


_add_commands()

if __name__ == "__main__":
    app()
