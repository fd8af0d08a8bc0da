"""On-disk index storage: generations of records, vectors, a FAISS index and a BM25 index."""

from indexes.manifest import FORMAT_VERSION, Manifest
from indexes.records import ChunkRecord, DocumentRecord
from indexes.store import IndexLocked, IndexStore, Snapshot, StoreError

__all__ = [
    "FORMAT_VERSION",
    "ChunkRecord",
    "DocumentRecord",
    "IndexLocked",
    "IndexStore",
    "Manifest",
    "Snapshot",
    "StoreError",
]
