"""Ingest: bring an index up to date with a set of documents, publishing one new generation.

Unchanged files (same path, same sha256) are skipped without parsing. Chunks whose text is
already in the index, or was embedded by a run that crashed before publishing (kept in
`staging/`), are never embedded again. Parsing runs in a thread ahead of embedding.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from indexes import DocumentRecord, IndexStore, Manifest, StoreError
from indexes.records import ChunkRecord
from rag.chunking import Chunk, Chunker
from rag.documents import DocumentError, discover, extract_pages, file_sha256
from rag.embedding import Embedder, load_embedder, load_tokenizer
from rag.settings import Settings


@dataclass
class Source:
    """Something to index: a file, or text handed over directly (e.g. a BEIR corpus)."""

    path: str  # absolute file path, or any stable key for text documents
    name: str  # what citations show
    sha256: str
    size: int
    load: Callable[[], list[str]]  # page texts


@dataclass
class FileResult:
    path: str
    name: str
    status: str  # added | updated | unchanged | removed | failed
    pages: int = 0
    chunks: int = 0
    error: str = ""
    error_kind: str = ""


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    generation: str | None = None
    chunks_embedded: int = 0
    chunks_reused: int = 0
    pages: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)


EMBED_GROUP = 256  # chunks embedded together: many small documents still make full batches


class ModelMismatch(StoreError):
    """The index was built with other embedding or chunking settings."""


def file_sources(paths: list[Path]) -> tuple[list[Source], list[FileResult]]:
    """Sources for the files under `paths`; files that cannot even be hashed are results."""
    sources, failures = [], []
    for path in discover(paths):
        try:
            sha, size = file_sha256(path), path.stat().st_size
        except OSError as err:
            failures.append(FileResult(str(path), path.name, "failed", error=str(err)))
            continue
        sources.append(Source(str(path), path.name, sha, size, load=path))  # type: ignore[arg-type]
    return sources, failures


def ingest(
    paths: list[Path],
    settings: Settings,
    prune: bool = False,
    progress: bool = True,
    embedder: Embedder | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest files and folders of PDFs into `settings.index`; see `update_index`."""
    sources, failures = file_sources(paths)
    for source in sources:
        path = Path(source.path)
        source.load = lambda path=path: extract_pages(path, settings.extractor)
    roots = [p.resolve() for p in paths]

    def in_scope(indexed_path: str) -> bool:
        p = Path(indexed_path)
        return not p.exists() or any(p == r or r in p.parents for r in roots)

    report = update_index(
        sources, settings, prune=in_scope if prune else None, progress=progress, embedder=embedder,
        on_file=on_file,
    )
    report.files = failures + report.files
    return report


def update_index(
    sources: list[Source],
    settings: Settings,
    prune: Callable[[str], bool] | None = None,
    progress: bool = True,
    embedder: Embedder | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Make the index at `settings.index` hold `sources`, publishing one new generation.

    Args:
        sources: documents to add or refresh; unchanged ones cost a hash comparison.
        settings: index location, model, chunking and index type.
        prune: when given, indexed documents not among `sources` for which it returns True
            are removed.
        embedder: an already loaded model (else loaded only if something needs embedding).
        on_file: called with (files parsed, files to parse) as work advances (job progress).
    """
    report = IngestReport()
    timer = _Timer(report.seconds)
    store = IndexStore(settings.index)
    with store.writer() as writer:
        current = writer.current
        manifest = _manifest(current.manifest if current else None, settings)
        old_docs = {d.path: d for d in current.documents()} if current else {}
        taken = {d.name for d in old_docs.values()}

        todo: list[Source] = []
        seen_paths = set()
        for source in sources:
            seen_paths.add(source.path)
            old = old_docs.get(source.path)
            if old is not None and old.sha256 == source.sha256:
                report.files.append(
                    FileResult(source.path, old.name, "unchanged", old.pages, old.chunks)
                )
                continue
            if old is not None:
                source.name = old.name
            else:
                source.name = _unique_name(source, taken)
                taken.add(source.name)
            todo.append(source)
        removed = [
            d for p, d in old_docs.items() if prune is not None and p not in seen_paths and prune(p)
        ]
        report.files += [FileResult(d.path, d.name, "removed", d.pages, d.chunks) for d in removed]
        index_type_changed = current is not None and manifest.index_type != (
            current.manifest.index_type
        )
        if not todo and not removed and not index_type_changed:
            report.generation = current.name if current else None
            return report

        chunker = None
        if todo:
            with timer("load model"):
                tokenizer = embedder.tokenizer if embedder else load_tokenizer(manifest.model)
            chunker = Chunker(tokenizer, manifest.chunk_size, manifest.chunk_overlap)
        known = _known_vectors(current, store.staging, manifest.model)
        new_docs: dict[str, DocumentRecord] = {}
        new_chunks: list[Chunk] = []

        pending: list[tuple[Source, list[str], list[Chunk]]] = []

        def flush() -> None:
            """Embed the pending documents' new chunks in one go: small sources batch well."""
            nonlocal embedder
            chunks = [c for _, _, cs in pending for c in cs]
            todo_texts = {c.text_hash: c.text for c in chunks if c.text_hash not in known}
            if todo_texts and embedder is None:
                with timer("load model"):
                    embedder = load_embedder(
                        manifest.model, manifest.embed_backend, settings.embed_batch_size,
                        settings.embed_precision,
                    )
            if embedder is not None:
                _check_window(manifest, embedder)
            with timer("embed"):
                fresh = embedder.encode(list(todo_texts.values())) if todo_texts else []
            known.update(zip(todo_texts, fresh, strict=True))
            _stage(store.staging, pending[0][0].sha256, manifest.model, list(todo_texts), fresh)
            report.chunks_embedded += len(todo_texts)
            report.chunks_reused += len(chunks) - len(todo_texts)
            if bars:
                bars.advance(chunks_bar, len(todo_texts))
            for source, pages, doc_chunks in pending:
                new_docs[source.path] = DocumentRecord(
                    source.name, source.path, source.sha256, source.size, len(pages), len(doc_chunks)
                )
                new_chunks.extend(doc_chunks)
                status = "updated" if source.path in old_docs else "added"
                report.files.append(
                    FileResult(source.path, source.name, status, len(pages), len(doc_chunks))
                )
                report.pages += len(pages)
            pending.clear()

        with _progress(progress) as bars:
            files_bar = bars.add_task("files", total=len(todo)) if bars else None
            pages_bar = bars.add_task("pages", total=None) if bars else None
            chunks_bar = bars.add_task("chunks embedded", total=None) if bars else None
            for done, (source, pages, chunks, error) in enumerate(_parsed(todo, chunker, timer), 1):
                if on_file is not None:
                    on_file(done, len(todo))
                if bars:
                    bars.advance(files_bar)
                    bars.advance(pages_bar, len(pages))
                if error is not None:
                    # a changed file that no longer parses keeps its previous version indexed
                    report.files.append(
                        FileResult(source.path, source.name, "failed", error=str(error),
                                   error_kind=error.kind)
                    )
                    continue
                pending.append((source, pages, chunks))
                if sum(len(cs) for _, _, cs in pending) >= EMBED_GROUP:
                    flush()
            if pending:
                flush()

        if not new_docs and not removed and not index_type_changed:
            report.generation = current.name if current else None
            return report  # every file to do failed: the published generation stays as it is
        with timer("write"):
            dropped = {d.name for d in removed} | {
                old_docs[p].name for p in new_docs if p in old_docs
            }
            kept_docs = [d for d in old_docs.values() if d.name not in dropped]
            kept_rows, kept_chunks = [], []
            if current is not None:
                for row, c in enumerate(current.records.all_chunks()):
                    if c.doc not in dropped:
                        kept_rows.append(row)
                        kept_chunks.append(c)
            chunk_records = kept_chunks + [
                ChunkRecord(c.chunk_id, c.doc, c.page_start, c.page_end, c.text, c.text_hash)
                for c in new_chunks
            ]
            parts = [np.asarray(current.vectors[kept_rows])] if current is not None else []
            parts.append(np.array([known[c.text_hash] for c in new_chunks], dtype=np.float32))
            vectors = np.concatenate([p.reshape(-1, manifest.dimension) for p in parts])
            documents = sorted(kept_docs + list(new_docs.values()), key=lambda d: d.name)
            snapshot = writer.publish(manifest, documents, chunk_records, vectors)
            report.generation = snapshot.name
            _clear_staging(store.staging)
    return report


def _manifest(previous: Manifest | None, settings: Settings) -> Manifest:
    """The next generation's manifest; refuses settings that would mix models or chunkings."""
    asked = settings.model_fields_set
    if previous is None:
        dimension = 0  # filled in once the model is loaded
        return Manifest(
            model=settings.model,
            dimension=dimension,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            index_type=settings.index_type,
            embed_backend=settings.embed_backend,
        )
    how = (
        f"To re-index with other settings, ingest into a new index directory "
        f"(--index NEW_DIR) or delete {settings.index} and ingest again."
    )
    if "model" in asked and settings.model != previous.model:
        raise ModelMismatch(
            f"index {settings.index} was built with embedding model {previous.model!r}; "
            f"refusing to mix in {settings.model!r}. {how}"
        )
    for key in ("chunk_size", "chunk_overlap", "embed_backend"):
        if key in asked and getattr(settings, key) != getattr(previous, key):
            raise ModelMismatch(
                f"index {settings.index} was built with {key}={getattr(previous, key)}; "
                f"refusing to mix in {key}={getattr(settings, key)}. {how}"
            )
    manifest = Manifest(**{**previous.__dict__})
    if "index_type" in asked:
        manifest.index_type = settings.index_type  # the vectors are kept: a rebuild is cheap
    return manifest


def _check_window(manifest: Manifest, embedder: Embedder) -> None:
    if manifest.dimension == 0:
        manifest.dimension = embedder.dimension
    if manifest.chunk_size > embedder.max_tokens:
        raise ValueError(
            f"chunk size {manifest.chunk_size} exceeds what {manifest.model} reads "
            f"({embedder.max_tokens} tokens): the rest of each chunk would never be embedded"
        )


def _unique_name(source: Source, taken: set[str]) -> str:
    name = source.name
    if name in taken:
        name = f"{Path(source.path).parent.name}/{source.name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}~{n}", n + 1
    return name


def _parsed(
    todo: list[Source], chunker: Chunker | None, timer: _Timer
) -> Iterator[tuple[Source, list[str], list[Chunk], DocumentError | None]]:
    """Parse and chunk in a thread, a few files ahead of the embedding loop."""
    ahead: queue.Queue = queue.Queue(maxsize=4)

    def work() -> None:
        for source in todo:
            try:
                with timer("parse"):
                    pages = source.load()
                with timer("chunk"):
                    chunks = chunker.split(source.name, pages)
                ahead.put((source, pages, chunks, None))
            except DocumentError as err:
                ahead.put((source, [], [], err))
            except Exception as err:  # one unreadable file must not stop the run
                ahead.put((source, [], [], DocumentError("corrupt", f"cannot read: {err}")))
        ahead.put(None)

    threading.Thread(target=work, daemon=True, name="ingest-parse").start()
    while (item := ahead.get()) is not None:
        yield item


def _known_vectors(current, staging: Path, model: str) -> dict[str, np.ndarray]:
    known: dict[str, np.ndarray] = {}
    if current is not None and current.n_chunks:
        for row, c in enumerate(current.records.all_chunks()):
            known[c.text_hash] = current.vectors[row]
    for path in sorted(staging.glob("*.npz")) if staging.is_dir() else []:
        try:
            with np.load(path) as data:
                if str(data["model"]) != model:
                    continue
                for h, v in zip(data["hashes"], data["vectors"], strict=True):
                    known[str(h)] = v
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a file cut short by a crash
    return known


def _stage(staging: Path, key: str, model: str, hashes: list[str], vectors) -> None:
    """Keep fresh embeddings until publishing, so a crashed run does not compute them again."""
    if not hashes:
        return
    staging.mkdir(exist_ok=True)
    tmp = staging / f"{key}.tmp.npz"
    np.savez(tmp, model=model, hashes=np.array(hashes), vectors=np.asarray(vectors))
    tmp.rename(staging / f"{key}.npz")


def _clear_staging(staging: Path) -> None:
    for path in staging.glob("*") if staging.is_dir() else []:
        path.unlink(missing_ok=True)


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


class _Timer:
    """Adds up seconds per phase (parse and chunk run in their own thread)."""

    def __init__(self, totals: dict[str, float]):
        self.totals = totals

    def __call__(self, phase: str):
        timer = self

        class _Phase:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                elapsed = time.perf_counter() - self.start
                timer.totals[phase] = timer.totals.get(phase, 0.0) + elapsed

        return _Phase()


def remove_documents(names: list[str], settings: Settings) -> IngestReport:
    """Remove documents by name (or path) from the index, publishing a new generation."""
    store = IndexStore(settings.index)
    snapshot = store.open()
    try:
        indexed = snapshot.documents()
    finally:
        snapshot.close()
    paths = set()
    for name in names:
        match = [d.path for d in indexed if name in (d.name, d.path)]
        if not match:
            known = ", ".join(d.name for d in indexed) or "none"
            raise KeyError(f"no document named {name!r} in the index (indexed: {known})")
        paths.update(match)
    return update_index([], settings, prune=lambda path: path in paths, progress=False)
