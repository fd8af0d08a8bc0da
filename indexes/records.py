"""Document and chunk records, kept in one SQLite file per generation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from indexes.span import Chunk

SCHEMA = """
CREATE TABLE documents (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    status TEXT NOT NULL,
    header TEXT NOT NULL DEFAULT '',
    user_title TEXT NOT NULL DEFAULT ''
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,   -- position of the chunk's vector in vectors.npy and FAISS
    chunk_id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL REFERENCES documents(name),
    page_start INTEGER NOT NULL,
    page_end INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc);
"""


@dataclass(frozen=True)
class DocumentRecord:
    """One ingested file: `name` is what citations and `rag docs` show (the file name)."""

    name: str
    path: str
    sha256: str
    size: int
    pages: int
    chunks: int
    status: str = "indexed"
    header: str = ""  # rag.document_context: embedded and BM25-indexed with each of its chunks
    user_title: str = ""  # set by `rag docs set-title`; kept when the file changes

    @property
    def title(self) -> str:
        return self.user_title or self.header.split(" · ")[0]


def write_records(
    path: Path, documents: Iterable[DocumentRecord], chunks: Iterable[Chunk]
) -> None:
    """Write a fresh SQLite file; chunk rows are numbered in iteration order from 0."""
    con = sqlite3.connect(path)
    try:
        con.executescript(SCHEMA)
        con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
            (
                (d.name, d.path, d.sha256, d.size, d.pages, d.chunks, d.status, d.header, d.user_title)
                for d in documents
            ),
        )
        con.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?)",
            (
                (row, c.chunk_id, c.doc, c.page_start, c.page_end, c.text, c.text_hash)
                for row, c in enumerate(chunks)
            ),
        )
        con.commit()
    finally:
        con.close()


class RecordReader:
    """Read-only access to one generation's records (the file never changes once published)."""

    def __init__(self, path: Path):
        self._con = sqlite3.connect(
            f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )

    def close(self) -> None:
        self._con.close()

    def documents(self) -> list[DocumentRecord]:
        rows = self._con.execute("SELECT * FROM documents ORDER BY name").fetchall()
        return [DocumentRecord(*r) for r in rows]

    def count_chunks(self) -> int:
        return self._con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def chunks(self, rows: Iterable[int]) -> list[Chunk]:
        """Chunks at the given vector rows, in the order asked."""
        rows = [int(r) for r in rows]
        if not rows:
            return []
        found: dict[int, Chunk] = {}
        for start in range(0, len(rows), 900):  # SQLite's limit on bound parameters
            part = rows[start : start + 900]
            marks = ",".join("?" * len(part))
            for r in self._con.execute(
                "SELECT row, chunk_id, doc, page_start, page_end, text, text_hash "
                f"FROM chunks WHERE row IN ({marks})",
                part,
            ):
                found[r[0]] = _chunk(r[1:])
        return [found[r] for r in rows]

    def all_chunks(self) -> list[Chunk]:
        rows = self._con.execute(
            "SELECT chunk_id, doc, page_start, page_end, text, text_hash FROM chunks ORDER BY row"
        ).fetchall()
        return [_chunk(r) for r in rows]

    def chunks_covering(self, doc: str, page: int) -> list[str]:
        """Ids of the chunks of `doc` whose page span includes `page`."""
        query = "SELECT chunk_id FROM chunks WHERE doc = ? AND page_start <= ? AND page_end >= ?"
        return [r[0] for r in self._con.execute(query, (doc, page, page))]

    def rows_of_documents(self, names: Iterable[str]) -> list[int]:
        names = list(names)
        marks = ",".join("?" * len(names))
        query = f"SELECT row FROM chunks WHERE doc IN ({marks}) ORDER BY row"
        return [r[0] for r in self._con.execute(query, names)]


def _chunk(row: tuple) -> Chunk:
    chunk_id, doc, page_start, page_end, text, hashed = row
    return Chunk(
        chunk_id=chunk_id, doc=doc, page_start=page_start, page_end=page_end, text=text, text_hash=hashed
    )
