"""On-disk index storage: generations of records, vectors, a FAISS index and a BM25 index."""

from indexes.errors import IndexLocked, MilvusUnavailable, StoreError
from indexes.manifest import FORMAT_VERSION, Manifest
from indexes.records import DocumentRecord
from indexes.span import Chunk, Span, contextual_text, format_pages, text_hash
from indexes.store import IndexStore, Snapshot

__all__ = [
    "FORMAT_VERSION",
    "Chunk",
    "DocumentRecord",
    "IndexLocked",
    "IndexStore",
    "Manifest",
    "MilvusUnavailable",
    "Snapshot",
    "Span",
    "StoreError",
    "contextual_text",
    "format_pages",
    "text_hash",
]
