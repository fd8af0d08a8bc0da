"""A span of a document: the one record every layer uses, from the index to the HTTP response.

`Span` names a place (document, first and last page, chunk); `Chunk` adds the text the index
holds. Search results and citations extend them (rag.retrieval, rag.answer), so a field is
spelled the same everywhere and every record serialises one way: `to_dict()`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


def format_pages(page_start: int, page_end: int) -> str:
    """"p.4" or "pp.4-5": the one way a page range is written (CLI, prompts, "Sources:" lists)."""
    return f"p.{page_start}" if page_start == page_end else f"pp.{page_start}-{page_end}"


def contextual_text(header: str, text: str) -> str:
    """What a chunk is embedded and BM25-indexed as: its document's header, then its text."""
    return f"{header}\n{text}" if header else text


def text_hash(text: str) -> str:
    """The key embeddings are cached and reused by: equal text, equal vector."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Span:
    doc: str  # the document's name in the index (its file name)
    page_start: int  # 1-based, as a PDF viewer shows it
    page_end: int
    chunk_id: str

    @property
    def pages(self) -> str:
        return format_pages(self.page_start, self.page_end)

    def label(self) -> str:
        """"report.pdf p.4": what a person reads next to a citation."""
        return f"{self.doc} {self.pages}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Chunk(Span):
    """A span with its text. `text_hash` keys the chunk's vector: the hash of what was embedded
    (the text, or the document header and the text), computed once, when the chunk is made."""

    text: str
    text_hash: str = field(default="")

    def __post_init__(self) -> None:
        if not self.text_hash:
            object.__setattr__(self, "text_hash", text_hash(self.text))
