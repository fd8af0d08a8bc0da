"""What ingest reads, one document at a time: a Source (a file, or text handed over directly)
and what parsing it gives, its pages, chunks and header (Parsed). `parse_source` is the one
function that turns the first into the second, in ingest's parse thread (rag.ingest) and on Ray
workers (rag.ray_ingest) alike.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace

from indexes import Chunk, DocumentRecord, contextual_text, text_hash
from rag.chunking import Chunker
from rag.document_context import document_header
from rag.documents import DocumentError


@dataclass
class Source:
    """Something to index: a file, or text handed over directly (e.g. a BEIR corpus)."""

    path: str  # absolute file path, or any stable key for text documents
    name: str  # what citations show
    sha256: str
    size: int
    load: Callable[[], list[str]]  # page texts
    read_title: Callable[[], str | None] = lambda: None  # the file's own title (PDF metadata)
    user_title: str = ""  # a title the user gave it (`rag docs set-title`)


@dataclass
class Parsed:
    """One source extracted and chunked, or the error that stopped it."""

    source: Source
    pages: list[str] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)  # text_hash keys the contextual text
    header: str = ""
    error: DocumentError | None = None

    def record(self) -> DocumentRecord:
        s = self.source
        return DocumentRecord(
            s.name, s.path, s.sha256, s.size, len(self.pages), len(self.chunks),
            header=self.header, user_title=s.user_title,
        )


def parse_source(
    source: Source,
    chunker: Chunker,
    headed: bool,
    timer: Callable[[str], AbstractContextManager] | None = None,
) -> Parsed:
    """One source's pages, chunks and header, or the error that stopped it (never raised: one
    unreadable file must not stop the run)."""
    timer = timer or (lambda phase: nullcontext())  # ingest times its phases; a worker need not
    try:
        with timer("parse"):
            pages = source.load()
        with timer("chunk"):
            chunks = chunker.split(source.name, pages)
        # a one-chunk document is its own context; a header would only repeat it
        header = _header(source, pages) if headed and len(chunks) > 1 else ""
        return Parsed(source, pages, _keyed(chunks, header), header)
    except DocumentError as err:
        return Parsed(source, error=err)
    except Exception as err:
        return Parsed(source, error=DocumentError("corrupt", f"cannot read: {err}"))


def _header(source: Source, pages: list[str]) -> str:
    return document_header(source.name, pages, source.user_title or source.read_title())


def _keyed(chunks: list[Chunk], header: str) -> list[Chunk]:
    """Chunks whose text_hash keys what is embedded: the same text under another header is
    another vector."""
    if not header:
        return chunks
    return [replace(c, text_hash=text_hash(contextual_text(header, c.text))) for c in chunks]
