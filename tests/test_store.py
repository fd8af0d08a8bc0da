"""Snapshots and writers close the SQLite connection they open (no model needed: fast)."""

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from indexes import Chunk, DocumentRecord, IndexStore, Manifest


def publish(store: IndexStore, docs: list[str]):
    """Publish a generation holding one one-chunk document per name; returns the writer's snapshot."""
    chunks = [
        Chunk(chunk_id=f"c{i}", doc=name, page_start=1, page_end=1, text=f"text of {name}")
        for i, name in enumerate(docs)
    ]
    records = [DocumentRecord(name, f"/{name}", "sha", 1, 1, 1) for name in docs]
    vectors = np.eye(len(docs), 4, dtype=np.float32)
    with store.writer() as writer:
        before = writer.current
        published = writer.publish(Manifest("m", 4, 64, 8, index_type="Flat"), records, chunks, vectors)
        if before is not None:  # replaced by the new generation: closed at once
            with pytest.raises(sqlite3.ProgrammingError):
                before.documents()
        assert [d.name for d in published.documents()] == sorted(docs)
    return published


def test_snapshot_is_closed_when_its_with_block_ends(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    publish(store, ["a.pdf"])
    with store.open() as snap:
        assert [d.name for d in snap.documents()] == ["a.pdf"]
    with pytest.raises(sqlite3.ProgrammingError):
        snap.documents()
    assert snap.name == "gen-000001" and snap.n_chunks == 1  # what was read stays readable


def test_snapshot_is_closed_when_its_with_block_raises(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    publish(store, ["a.pdf"])
    with pytest.raises(KeyError), store.open() as snap:
        raise KeyError("boom")
    with pytest.raises(sqlite3.ProgrammingError):
        snap.records.all_chunks()


def test_writer_closes_every_snapshot_it_opens(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    publish(store, ["a.pdf"])
    last = publish(store, ["a.pdf", "b.pdf"])  # also checks the replaced `current` was closed
    with pytest.raises(sqlite3.ProgrammingError):
        last.documents()  # the writer's `current`, closed with the writer
