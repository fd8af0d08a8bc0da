"""Ingest: bring an index up to date with a set of documents, publishing one new generation.

Unchanged files (same path, same sha256) are skipped without parsing. Chunks whose text is
already in the index, or was embedded by a run that crashed before publishing (kept in
`staging/`), are never embedded again. Parsing runs in a thread ahead of embedding.

`update_index` runs four stages with plain data between them:

    _plan (hash, diff) ─► Plan ─► _parsed (extract, chunk) ─► Parsed ─► _embed_all (in
    groups of EMBED_GROUP chunks, staging fresh vectors) ─► _write (publish, clear staging)
"""

from __future__ import annotations

import copy
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from indexes import (
    Chunk,
    DocumentRecord,
    IndexStore,
    Manifest,
    Snapshot,
    StoreError,
    contextual_text,
    milvus,
)
from indexes.store import Writer, fsync_dir
from rag.chunking import Chunker
from rag.documents import discover, file_sha256
from rag.embedders import document_backend, load_embedder
from rag.embedding import Embedder, load_tokenizer
from rag.parsing_sandbox import Limits, ParsingSandbox
from rag.settings import Settings
from rag.sources import Parsed, Source, parse_source


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


@dataclass
class Plan:
    """What a run does, decided from paths and hashes alone, before any file is parsed."""

    manifest: Manifest  # of the generation to publish
    old_docs: dict[str, DocumentRecord]  # the current generation's documents, by path
    manifest_changed: bool  # settings that need no re-embedding: index type, query prompt
    todo: list[Source] = field(default_factory=list)  # new or changed, names assigned
    removed: list[DocumentRecord] = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)  # unchanged and removed files

    def publishes(self, new_documents: int) -> bool:
        """Whether a generation with `new_documents` (re)parsed files differs from the current."""
        return bool(new_documents or self.removed or self.manifest_changed)


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
    prune: bool | Callable[[str], bool] = False,
    progress: bool = True,
    embedder: Embedder | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest files and folders of PDFs into `settings.index`; see `update_index`.

    `prune`: True removes indexed documents under `paths` (or whose file is gone) that are no
    longer found; a function of an indexed path decides for itself (the server: its uploads only).

    Each file is parsed in a sandboxed worker process (rag.parsing_sandbox), started at the first
    file to parse: a file that crashes it or goes over a limit fails alone."""
    sources, failures = file_sources(paths)
    roots = [p.resolve() for p in paths]

    def in_scope(indexed_path: str) -> bool:
        p = Path(indexed_path)
        return not p.exists() or any(p == r or r in p.parents for r in roots)

    with ParsingSandbox(Limits.from_settings(settings)) as sandbox:
        for source in sources:
            source.load, source.read_title = sandbox.loaders(Path(source.path), settings.extractor)
        report = update_index(
            sources, settings, prune=prune if callable(prune) else in_scope if prune else None,
            progress=progress,
            embedder=embedder, on_file=on_file,
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
    refresh: frozenset[str] = frozenset(),
) -> IngestReport:
    """Make the index at `settings.index` hold `sources`, publishing one new generation.

    Args:
        sources: documents to add or refresh; unchanged ones cost a hash comparison.
        settings: index location, model, chunking and index type.
        prune: when given, indexed documents not among `sources` for which it returns True
            are removed.
        embedder: an already loaded model (else loaded only if something needs embedding).
        on_file: called with (files parsed, files to parse) as work advances (job progress).
        refresh: paths to index again even though their files did not change (a new title).
    """
    report = IngestReport()
    timer = _Timer(report.seconds)
    with IndexStore(settings.index).writer() as writer:
        current = writer.current
        report.generation = current.name if current else None  # unless a new one is published
        plan = _plan(sources, current, settings, prune, refresh, embedder)
        report.files += plan.results
        if not plan.publishes(len(plan.todo)):
            return report
        headed = plan.manifest.header_scheme != "none"
        old_chunks = current.records.all_chunks() if current else []  # read once, used twice
        known = _known_vectors(current, old_chunks, writer.store.staging, plan.manifest.vectors_made_by)
        embed = _Embed(known, plan.manifest, settings, writer.store.staging, timer, embedder)
        with _progress(progress, len(plan.todo), on_file) as bars:
            if settings.ray_address and plan.todo:
                parsed = _on_ray(plan, settings, embed, headed, timer)
            else:
                chunker = _chunker(plan.manifest, embedder, timer) if plan.todo else None
                parsed = _parsed(plan.todo, chunker, timer, headed)
            docs = _embed_all(_groups(parsed, report, bars), embed, plan, report, bars)
        if not plan.publishes(len(docs)):
            return report  # every file to do failed: the published generation stays as it is
        with timer("write"):
            report.generation = _write(writer, plan, current, old_chunks, docs, known).name
    return report


def _on_ray(plan: Plan, settings: Settings, embed: _Embed, headed: bool, timer: _Timer) -> Iterator[Parsed]:
    """Parse and embed `plan.todo` on a Ray cluster (rag.ray_ingest); the vectors it made wait in
    `embed.precomputed` for the usual embed stage, which then only stages them."""
    from rag import ray_ingest

    if plan.manifest.dimension == 0 or None in (plan.manifest.query_prompt, plan.manifest.document_prompt):
        embed.model()  # a new index: its dimension and prompts from the model, loaded here once
    with timer("ray parse and embed"):
        parsed, embed.precomputed = ray_ingest.parse_and_embed(
            plan.todo, plan.manifest, settings, embed.known, headed
        )
    return iter(parsed)


def _plan(
    sources: list[Source],
    current: Snapshot | None,
    settings: Settings,
    prune: Callable[[str], bool] | None,
    refresh: frozenset[str] = frozenset(),
    embedder: Embedder | None = None,
) -> Plan:
    """Compare `sources` with the current generation by path and sha256; name the new ones."""
    manifest = _manifest(current.manifest if current else None, settings, embedder)
    old_docs = {d.path: d for d in current.documents()} if current else {}
    rebuilt = ("index_type", "query_prompt", "store_backend", "milvus_uri")  # no re-embedding
    changed = current is not None and any(
        getattr(manifest, key) != getattr(current.manifest, key) for key in rebuilt
    )
    plan = Plan(manifest, old_docs, changed)
    taken = {d.name for d in old_docs.values()}
    for source in sources:
        old = old_docs.get(source.path)
        if old is not None and old.sha256 == source.sha256 and source.path not in refresh:
            plan.results.append(FileResult(source.path, old.name, "unchanged", old.pages, old.chunks))
            continue
        if old is not None:
            source.name = old.name  # a changed file keeps its name: its citations stay valid
            source.user_title = source.user_title or old.user_title
        else:
            source.name = _unique_name(source, taken)
            taken.add(source.name)
        plan.todo.append(source)
    seen = {s.path for s in sources}
    plan.removed = [
        d for p, d in old_docs.items() if prune is not None and p not in seen and prune(p)
    ]
    plan.results += [FileResult(d.path, d.name, "removed", d.pages, d.chunks) for d in plan.removed]
    return plan


def _manifest(previous: Manifest | None, settings: Settings, embedder: Embedder | None = None) -> Manifest:
    """The next generation's manifest; refuses settings that would mix models or chunkings. A new
    index's kind of vectors: the settings', or with "auto" a caller's loaded model's, else the
    faster here (rag.embedders.document_backend)."""
    asked = settings.model_fields_set
    if settings.embed_backend == "auto":
        asked = asked - {"embed_backend"}  # auto never conflicts: an index keeps its kind
    if previous is None:
        backend = settings.embed_backend
        if backend == "auto" and embedder is not None and embedder.name == settings.model:
            backend = embedder.backend
        backend = document_backend(settings.model, backend, settings.embed_precision)
        dimension = 0  # filled in once the model is loaded
        return Manifest(
            model=settings.model,
            dimension=dimension,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            index_type=settings.index_type,
            embed_backend=backend,
            header_scheme=settings.doc_header,
            table_scheme=settings.table_context,
            query_prompt=settings.query_prompt,
            document_prompt=settings.document_prompt,
            **store_fields(settings),
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
    if "doc_header" in asked and settings.doc_header != previous.header_scheme:
        raise ModelMismatch(
            f"index {settings.index} was built with document headers {previous.header_scheme!r}; "
            f"refusing to mix in {settings.doc_header!r}: chunks are embedded with their header. {how}"
        )
    if "table_context" in asked and settings.table_context != previous.table_scheme:
        raise ModelMismatch(
            f"index {settings.index} was built with table headings {previous.table_scheme!r}; "
            f"refusing to mix in {settings.table_context!r}: they are part of the chunks. {how}"
        )
    for key in ("chunk_size", "chunk_overlap", "embed_backend"):
        if key in asked and getattr(settings, key) != getattr(previous, key):
            raise ModelMismatch(
                f"index {settings.index} was built with {key}={getattr(previous, key)}; "
                f"refusing to mix in {key}={getattr(settings, key)}. {how}"
            )
    if "document_prompt" in asked and settings.document_prompt != previous.document_prompt:
        raise ModelMismatch(
            f"index {settings.index} was built with document prompt {previous.document_prompt!r}; "
            f"refusing to mix in {settings.document_prompt!r}: chunks are embedded with it. {how}"
        )
    manifest = Manifest(**{**previous.__dict__})
    if "index_type" in asked:
        manifest.index_type = settings.index_type  # the vectors are kept: a rebuild is cheap
    if "query_prompt" in asked:
        manifest.query_prompt = settings.query_prompt  # only queries change: the vectors are kept
    if asked & {"index_backend", "milvus_uri"}:
        manifest.__dict__.update(store_fields(settings))  # the kept vectors go to the other store
    return manifest


def store_fields(settings: Settings) -> dict:
    """The manifest's store fields for `settings`: local files, or a Milvus URI and prefix."""
    if settings.index_backend == milvus.LOCAL:
        return {"store_backend": milvus.LOCAL, "milvus_uri": "", "milvus_prefix": ""}
    uri = settings.milvus_uri or milvus.default_uri(settings.index)
    if "://" not in uri:  # a milvus-lite file: readers may start in another directory
        uri = str(Path(uri).expanduser().resolve())
    return {
        "store_backend": milvus.MILVUS,
        "milvus_uri": uri,
        "milvus_prefix": milvus.collection_prefix(settings.index),
    }


def _check_window(manifest: Manifest, embedder: Embedder) -> None:
    """Fill in what only the loaded model knows; refuse chunks longer than it reads."""
    if manifest.dimension == 0:
        manifest.dimension = embedder.dimension
    if manifest.query_prompt is None:
        manifest.query_prompt = embedder.prompts["query"]
    if manifest.document_prompt is None:
        manifest.document_prompt = embedder.prompts["document"]
    prompt_tokens = len(embedder.tokenizer(manifest.document_prompt, add_special_tokens=False)["input_ids"])
    if manifest.chunk_size + prompt_tokens > embedder.max_tokens:
        raise ValueError(
            f"chunk size {manifest.chunk_size} (and {prompt_tokens} tokens of document prompt) "
            f"exceeds what {manifest.model} reads ({embedder.max_tokens} tokens): the rest of each "
            "chunk would never be embedded"
        )


def _unique_name(source: Source, taken: set[str]) -> str:
    name = source.name
    if name in taken:
        name = f"{Path(source.path).parent.name}/{source.name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}~{n}", n + 1
    return name


def _chunker(manifest: Manifest, embedder: Embedder | None, timer: _Timer) -> Chunker:
    """Chunking needs only the tokenizer: the model itself may never be needed. A given model's
    tokenizer is copied: chunking runs in a thread while the model embeds, and a fast tokenizer
    switches its padding per call (shared, an encode then meets unpadded rows)."""
    with timer("load model"):
        tokenizer = copy.deepcopy(embedder.tokenizer) if embedder else load_tokenizer(manifest.model)
    return Chunker(tokenizer, manifest.chunk_size, manifest.chunk_overlap, manifest.table_scheme)


def _parsed(todo: list[Source], chunker: Chunker | None, timer: _Timer, headed: bool) -> Iterator[Parsed]:
    """Parse, chunk and write each document's header in a thread, a few files ahead of the
    embedding loop."""
    ahead: queue.Queue[Parsed | None] = queue.Queue(maxsize=4)

    def work() -> None:
        for source in todo:
            ahead.put(parse_source(source, chunker, headed, timer))
        ahead.put(None)

    threading.Thread(target=work, daemon=True, name="ingest-parse").start()
    while (item := ahead.get()) is not None:
        yield item


def _groups(parsed: Iterable[Parsed], report: IngestReport, bars: _Bars) -> Iterator[list[Parsed]]:
    """Parsed documents gathered until they hold EMBED_GROUP chunks; failures reported as met."""
    group: list[Parsed] = []
    size = 0
    for doc in parsed:
        bars.parsed(doc)
        if doc.error is not None:
            # a changed file that no longer parses keeps its previous version indexed
            s = doc.source
            report.files.append(
                FileResult(s.path, s.name, "failed", error=str(doc.error), error_kind=doc.error.kind)
            )
            continue
        group.append(doc)
        size += len(doc.chunks)
        if size >= EMBED_GROUP:
            yield group
            group, size = [], 0
    if group:
        yield group


@dataclass
class _Embed:
    """The embed stage's state: vectors by text hash, and the model, loaded only once some
    chunk's text has no vector yet."""

    known: dict[str, np.ndarray]  # the current generation's vectors and staged ones
    manifest: Manifest
    settings: Settings
    staging: Path
    timer: _Timer
    embedder: Embedder | None = None
    precomputed: dict[str, np.ndarray] = field(default_factory=dict)  # made on Ray (rag.ray_ingest)

    def model(self) -> Embedder:
        """The model, loaded once; the manifest's dimension and prompts come from it."""
        if self.embedder is None:
            with self.timer("load model"):
                self.embedder = load_embedder(
                    self.manifest.model, self.manifest.embed_backend,
                    self.settings.embed_batch_size, self.settings.embed_precision,
                )
        _check_window(self.manifest, self.embedder)
        return self.embedder

    def __call__(self, docs: list[Parsed]) -> int:
        """Embed the unknown chunks of `docs` in one go and stage them; returns how many."""
        new = {
            c.text_hash: contextual_text(d.header, c.text)
            for d in docs
            for c in d.chunks
            if c.text_hash not in self.known
        }
        rest = {h: t for h, t in new.items() if h not in self.precomputed}
        if self.embedder is not None and self.embedder.backend != self.manifest.embed_backend:
            self.embedder = None  # a caller's query embedder (int8) must not write torch vectors
        if rest or self.embedder is not None:
            self.model()
        with self.timer("embed"):
            prompt = self.manifest.document_prompt or ""
            fresh = self.embedder.encode(list(rest.values()), prompt=prompt) if rest else []
        self.known.update(zip(rest, fresh, strict=True))
        self.known.update((h, self.precomputed[h]) for h in new if h not in rest)
        _stage(self.staging, docs[0].source.sha256, self.manifest.vectors_made_by, list(new),
               [self.known[h] for h in new])
        return len(new)


def _embed_all(
    groups: Iterable[list[Parsed]], embed: _Embed, plan: Plan, report: IngestReport, bars: _Bars
) -> list[Parsed]:
    """Embed group by group, reporting each document once its vectors exist; returns them all."""
    done: list[Parsed] = []
    for group in groups:
        embedded = embed(group)
        report.chunks_embedded += embedded
        report.chunks_reused += sum(len(d.chunks) for d in group) - embedded
        bars.embedded(embedded)
        for doc in group:
            s = doc.source
            status = "updated" if s.path in plan.old_docs else "added"
            report.files.append(FileResult(s.path, s.name, status, len(doc.pages), len(doc.chunks)))
            report.pages += len(doc.pages)
        done += group
    return done


def _write(
    writer: Writer,
    plan: Plan,
    current: Snapshot | None,
    old_chunks: list[Chunk],
    docs: list[Parsed],
    known: dict[str, np.ndarray],
) -> Snapshot:
    """Publish the current generation minus removed and replaced documents, plus `docs`; then
    the staged vectors are in the index and can go."""
    dropped = {d.name for d in plan.removed}
    dropped |= {plan.old_docs[d.source.path].name for d in docs if d.source.path in plan.old_docs}
    kept_rows = [row for row, c in enumerate(old_chunks) if c.doc not in dropped]
    new_chunks = [c for d in docs for c in d.chunks]
    chunks = [old_chunks[row] for row in kept_rows] + new_chunks
    parts = [np.asarray(current.vectors[kept_rows])] if current is not None else []
    parts.append(np.array([known[c.text_hash] for c in new_chunks], dtype=np.float32))
    vectors = np.concatenate([p.reshape(-1, plan.manifest.dimension) for p in parts])
    documents = [d for d in plan.old_docs.values() if d.name not in dropped]
    documents += [d.record() for d in docs]
    published = writer.publish(plan.manifest, sorted(documents, key=lambda d: d.name), chunks, vectors)
    _clear_staging(writer.store.staging)
    return published


def _known_vectors(
    current: Snapshot | None, chunks: list[Chunk], staging: Path, model: str
) -> dict[str, np.ndarray]:
    """Vectors by text hash: the current generation's (`chunks` are its rows) and staged ones.

    A staged file that does not load (cut short by a crash, whatever the error) is only lost
    work: it is deleted and its vectors computed again, never a reason to fail the run."""
    known: dict[str, np.ndarray] = {}
    for row, c in enumerate(chunks):
        known[c.text_hash] = current.vectors[row]
    for path in _staged_files(staging):
        try:
            known.update(_load_staged(path, model))
        except Exception:  # noqa: BLE001 - BadZipFile, EOFError, ValueError, OSError...
            path.unlink(missing_ok=True)
    return known


def _staged_files(staging: Path) -> list[Path]:
    """The complete staged files; partial ones a killed writer left (`.KEY.part`) are removed.

    Only a writer (holding the index lock) calls this, so no `.part` file is still being written."""
    if not staging.is_dir():
        return []
    for path in staging.glob(".*.part"):
        path.unlink(missing_ok=True)
    return sorted(p for p in staging.glob("*.npz") if not p.name.startswith("."))


def _load_staged(path: Path, model: str) -> dict[str, np.ndarray]:
    """One staged file's vectors by text hash; none when another model made them."""
    with np.load(path) as data:
        if str(data["model"]) != model:
            return {}
        hashes, vectors = data["hashes"], np.asarray(data["vectors"], dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(hashes):
        raise ValueError(f"{path.name}: {len(hashes)} hashes but vectors of shape {vectors.shape}")
    return {str(h): v for h, v in zip(hashes, vectors, strict=True)}


def _stage(staging: Path, key: str, model: str, hashes: list[str], vectors) -> None:
    """Keep fresh embeddings until publishing, so a crashed run does not compute them again.

    Written as `.KEY.part` (a name the loader never reads), fsynced, then renamed to `KEY.npz`:
    a crash at any moment leaves either no `KEY.npz` or a complete one."""
    if not hashes:
        return
    staging.mkdir(exist_ok=True)
    partial = staging / f".{key}.part"
    with open(partial, "wb") as f:
        np.savez(f, model=model, hashes=np.array(hashes), vectors=np.asarray(vectors))
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, staging / f"{key}.npz")
    fsync_dir(staging)


def _clear_staging(staging: Path) -> None:
    """Everything staged is in the published generation now (partial files included: `*`
    matches dot-files in pathlib)."""
    for path in staging.glob("*") if staging.is_dir() else []:
        path.unlink(missing_ok=True)


class _Bars:
    """Progress while parsing and embedding: rich bars (when shown) and the caller's `on_file`."""

    def __init__(self, progress: Progress | None, files: int, on_file: Callable[[int, int], None] | None):
        self.progress, self.files, self.on_file, self.done = progress, files, on_file, 0
        if progress is not None:
            self.files_bar = progress.add_task("files", total=files)
            self.pages_bar = progress.add_task("pages", total=None)
            self.chunks_bar = progress.add_task("chunks embedded", total=None)

    def parsed(self, doc: Parsed) -> None:
        self.done += 1
        if self.on_file is not None:
            self.on_file(self.done, self.files)
        if self.progress is not None:
            self.progress.advance(self.files_bar)
            self.progress.advance(self.pages_bar, len(doc.pages))

    def embedded(self, chunks: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.chunks_bar, chunks)


@contextmanager
def _progress(
    enabled: bool, files: int, on_file: Callable[[int, int], None] | None
) -> Iterator[_Bars]:
    if not enabled:
        yield _Bars(None, files, on_file)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        yield _Bars(progress, files, on_file)


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
    with IndexStore(settings.index).open() as snapshot:
        indexed = snapshot.documents()
    paths = set()
    for name in names:
        match = [d.path for d in indexed if name in (d.name, d.path)]
        if not match:
            known = ", ".join(d.name for d in indexed) or "none"
            raise KeyError(f"no document named {name!r} in the index (indexed: {known})")
        paths.update(match)
    return update_index([], settings, prune=lambda path: path in paths, progress=False)


def set_title(name: str, title: str, settings: Settings, embedder: Embedder | None = None) -> IngestReport:
    """Give a document a title of its own: its header is written again with it and its chunks
    embedded again under it, as one new generation. The title stays when the file changes."""
    title = " ".join(title.split())
    if not title:
        raise ValueError("the title is empty")
    with IndexStore(settings.index).open() as snapshot:
        scheme = snapshot.manifest.header_scheme
        match = [d for d in snapshot.documents() if name in (d.name, d.path)]
    if not match:
        raise KeyError(f"no document named {name!r} in the index (`rag docs list` shows them)")
    if scheme == "none":
        raise ValueError(
            f"index {settings.index} was built without document headers: a title has nowhere to go; "
            "ingest into a new index to get them"
        )
    path = Path(match[0].path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is gone: its title can be set only while the file is there")
    sources, failures = file_sources([path])
    if failures:
        raise FileNotFoundError(failures[0].error)
    source = sources[0]
    source.user_title = title
    again = frozenset({source.path})
    with ParsingSandbox(Limits.from_settings(settings)) as sandbox:
        source.load, source.read_title = sandbox.loaders(path, settings.extractor)
        return update_index([source], settings, progress=False, embedder=embedder, refresh=again)
