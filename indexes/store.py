"""Generations on disk: writers publish a complete new generation atomically, readers never wait.

Layout of an index directory:

    CURRENT                   name of the published generation, replaced by an atomic rename
    LOCK                      held (flock) by the one writer; the kernel frees it if that dies
    generations/gen-000007/   manifest.json, records.sqlite, vectors.npy, dense.faiss, bm25/
    staging/                  embeddings a crashed writer already computed, reused by the next

A generation is never changed after it is published. A writer builds the next one in a
temporary directory, fsyncs it, renames it into place and only then swaps CURRENT, so a crash
at any moment leaves the previous generation as it was.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from indexes import bm25, dense, milvus
from indexes.errors import IndexLocked, StoreError
from indexes.manifest import Manifest
from indexes.records import DocumentRecord, RecordReader, write_records
from indexes.span import Chunk, contextual_text

KEEP_GENERATIONS = 2  # the previous one stays for readers that opened it just before a swap


class Snapshot:
    """One published generation, fully opened: later swaps or clean-ups do not affect it.

    Close it when done (`with store.open() as snap:`): it holds a SQLite connection.
    """

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self.manifest = Manifest.load(path / "manifest.json")
        self.records = RecordReader(path / "records.sqlite")
        try:
            self.vectors: np.ndarray = np.load(path / "vectors.npy", mmap_mode="r")
            self.n_chunks = len(self.vectors)
            self.dense = self.bm25 = None
            if self.n_chunks and self.manifest.store_backend == milvus.MILVUS:
                self.dense = self.bm25 = milvus.MilvusGeneration(
                    self.manifest.milvus_uri, _collection(self.manifest, self.name), self.n_chunks,
                    self.manifest.index_factory, self.manifest.bm25_tokenizer,
                )
            elif self.n_chunks:
                self.dense = dense.load(path / "dense.faiss")
                self.bm25 = bm25.load(path / "bm25")
        except BaseException:
            self.records.close()  # e.g. collected while opening: `IndexStore.open` tries again
            raise

    def documents(self) -> list[DocumentRecord]:
        return self.records.documents()

    def search_dense(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the k nearest chunks per query vector, row -1 when missing."""
        return dense.search(self.dense, vectors, k)

    def search_bm25(
        self, queries: list[str], k: int, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the k best BM25 chunks per query, only `allowed_rows` if given."""
        if isinstance(self.bm25, milvus.MilvusGeneration):
            return self.bm25.search_words(queries, k, allowed_rows)
        return bm25.search(self.bm25, queries, k, self.n_chunks, allowed_rows, self.manifest.bm25_tokenizer)

    def close(self) -> None:
        self.records.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IndexStore:
    """An index directory; `open()` for reading, `writer()` for the one writer at a time."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.generations = self.root / "generations"
        self.staging = self.root / "staging"

    def current_name(self) -> str | None:
        try:
            return (self.root / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def exists(self) -> bool:
        return self.current_name() is not None

    def documents(self) -> list[DocumentRecord]:
        """The published generation's documents, none without one; reads only the records
        (no FAISS or BM25 load). Retries when a writer swaps generations in between."""
        for _ in range(5):
            name = self.current_name()
            if name is None:
                return []
            path = self.generations / name / "records.sqlite"
            if path.is_file():
                reader = RecordReader(path)
                try:
                    return reader.documents()
                finally:
                    reader.close()
            time.sleep(0.05)
        raise StoreError(f"index at {self.root} keeps changing or is damaged: generation {name}")

    def open(self) -> Snapshot:
        """Open the published generation; retries when a writer swaps it in between."""
        for _ in range(5):
            name = self.current_name()
            if name is None:
                raise StoreError(f"no index at {self.root}: run `rag ingest PATH --index {self.root}`")
            try:
                return Snapshot(self.generations / name)
            except FileNotFoundError:
                time.sleep(0.05)
        raise StoreError(f"index at {self.root} keeps changing or is damaged: generation {name}")

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise IndexLocked(self.root, holder) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            writer = Writer(self)
            try:
                yield writer
            finally:
                writer.close()
        finally:
            os.close(fd)  # closing releases the flock


class Writer:
    """Holds the lock; `publish` writes the next generation and makes it current."""

    def __init__(self, store: IndexStore):
        self.store = store
        store.generations.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()
        self.current: Snapshot | None = store.open() if store.exists() else None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()

    def publish(
        self,
        manifest: Manifest,
        documents: Sequence[DocumentRecord],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
    ) -> Snapshot:
        """Write a generation holding exactly these records; row i of `vectors` is chunk i.

        Returns the new `current` snapshot, which the writer closes when it is done.
        """
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        number = self._last_number() + 1
        name = f"gen-{number:06d}"
        tmp = self.store.generations / f".tmp-{name}"
        tmp.mkdir()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, manifest.dimension)
        factory = manifest.index_type
        if factory == "auto":
            factory = dense.choose_factory(len(vectors), manifest.dimension)
        manifest.index_factory = factory
        manifest.generation = number
        manifest.bm25_tokenizer = bm25.MULTILINGUAL  # built from the texts below, afresh
        manifest.save(tmp / "manifest.json")
        write_records(tmp / "records.sqlite", documents, chunks)
        np.save(tmp / "vectors.npy", vectors)
        if len(vectors):
            headers = {d.name: d.header for d in documents}
            texts = [contextual_text(headers.get(c.doc, ""), c.text) for c in chunks]
            if manifest.store_backend == milvus.MILVUS:
                milvus.build(manifest.milvus_uri, _collection(manifest, name), vectors, texts,
                             factory, manifest.bm25_tokenizer)
            else:
                dense.save(dense.build(vectors, factory), tmp / "dense.faiss")
                bm25.save(bm25.build(texts, manifest.bm25_tokenizer), tmp / "bm25")
        _fsync_tree(tmp)
        final = self.store.generations / name
        os.rename(tmp, final)
        fsync_dir(self.store.generations)
        _atomic_write(self.store.root / "CURRENT", name + "\n")
        if manifest.store_backend == milvus.MILVUS and len(vectors):
            milvus.point_alias(manifest.milvus_uri, manifest.milvus_prefix, _collection(manifest, name))
        self._collect_garbage(keep=name)
        previous, self.current = self.current, Snapshot(final)
        if previous is not None:
            previous.close()  # only once the new one opened: `current` is never a closed one
        return self.current

    def _last_number(self) -> int:
        numbers = [int(p.name[4:]) for p in self.store.generations.glob("gen-*")]
        return max(numbers, default=0)

    def _remove_leftovers(self) -> None:
        """Remove what a crashed writer left: temporary files (CURRENT.tmp, half-written staged
        vectors) and temporary and never-published generations."""
        (self.store.root / "CURRENT.tmp").unlink(missing_ok=True)
        for partial in self.store.staging.glob(".*.part") if self.store.staging.is_dir() else []:
            partial.unlink(missing_ok=True)
        current = self.store.current_name()
        for path in self.store.generations.iterdir():
            unpublished = path.name.startswith("gen-") and current is not None and path.name > current
            if path.name.startswith(".tmp-") or unpublished or (current is None and path.is_dir()):
                _remove_generation(path)

    def _collect_garbage(self, keep: str) -> None:
        published = sorted(p for p in self.store.generations.glob("gen-*") if p.name <= keep)
        for path in published[:-KEEP_GENERATIONS]:
            _remove_generation(path)


def _collection(manifest: Manifest, generation: str) -> str:
    return milvus.generation_collection(manifest.milvus_prefix, generation)


def _remove_generation(path: Path) -> None:
    """Delete a generation directory and, for the Milvus backend, its collection (first: a
    collection whose directory is gone would be known to nobody)."""
    try:
        manifest = Manifest.load(path / "manifest.json")
    except (OSError, ValueError, TypeError):
        manifest = None  # a temporary generation that crashed before its manifest: no collection
    if manifest is not None and manifest.store_backend == milvus.MILVUS:
        try:
            milvus.drop(manifest.milvus_uri, _collection(manifest, path.name.removeprefix(".tmp-")))
        except Exception as err:  # the new generation is published: a server away costs a leftover
            logging.getLogger(__name__).warning("could not drop an old Milvus collection: %s", err)
    shutil.rmtree(path, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            fd = os.open(os.path.join(dirpath, filename), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    """A rename is durable only once its directory is synced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
