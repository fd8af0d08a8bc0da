"""Token-aware chunking: windows of the embedding model's own tokens, so nothing is truncated.

A window ends, where it can, at the end of a sentence (`.!?;` before a space, or CJK's `。！？；`
anywhere) within its last quarter; failing that at a word start, where every CJK character
counts as one, since Chinese and Japanese put no spaces between words.

A chunk keeps its document and the first and last page its text comes from. Its id is derived
from the document, its position and its text, so the same input always gives the same ids. With
table headings on (rag.tables), a chunk that starts below a table page's first lines begins with
the table's title and column headings.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from indexes.span import Chunk
from indexes.words import CJK
from rag.tables import table_headings

__all__ = ["Chunk", "Chunker"]

_CJK = re.compile(f"[{CJK}]")
_FULL_STOP = frozenset("。！？；")  # ends a sentence whatever follows
_HALF_STOP = frozenset(".!?;")  # ends one when a space follows: not in 4.2, e.g. or U.S.


class Chunker:
    """Split page texts into windows of `chunk_size` tokens overlapping by `overlap` tokens.

    Args:
        tokenizer: a Hugging Face fast tokenizer (offsets are needed to cut the original text).
        chunk_size: tokens per chunk, special tokens excluded.
        overlap: tokens repeated at the start of the next chunk.
        table_scheme: "headings-v1" puts a table page's heading before each of its chunks that
            starts below it (rag.tables); "none" leaves chunks as the page writes them.

    Example:
        >>> chunker = Chunker(embedder.tokenizer, chunk_size=200, overlap=32)
        >>> chunker.split("report.pdf", ["page one text", "page two text"])
    """

    def __init__(self, tokenizer, chunk_size: int, overlap: int, table_scheme: str = "none"):
        if chunk_size < 8:
            raise ValueError(f"chunk size must be at least 8 tokens, got {chunk_size}")
        if not 0 <= overlap < chunk_size // 2 + 1:
            raise ValueError(f"overlap must be between 0 and half the chunk size, got {overlap}")
        self.tokenizer = tokenizer
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.table_scheme = table_scheme

    def split(self, doc: str, pages: list[str]) -> list[Chunk]:
        if not pages:
            return []
        encoded = self.tokenizer(
            pages, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        page_of, starts, ends = [], [], []
        for page_number, offsets in enumerate(encoded["offset_mapping"], start=1):
            page_of += [page_number] * len(offsets)
            starts += [s for s, _ in offsets]
            ends += [e for _, e in offsets]
        n = len(page_of)
        page_of, starts, ends = np.array(page_of), np.array(starts), np.array(ends)
        # a token starts a word when text separates it from the token before (not a ##piece)
        word_start = np.ones(n, dtype=bool)
        word_start[1:] = (starts[1:] != ends[:-1]) | (page_of[1:] != page_of[:-1])
        sentence_start = _sentence_starts(pages, page_of, starts, ends, word_start)
        headings = table_headings(pages) if self.table_scheme != "none" else [""] * len(pages)
        page_first = np.searchsorted(page_of, np.arange(1, len(pages) + 2))  # each page's first token

        chunks: list[Chunk] = []
        begin = 0
        while begin < n:
            end = min(begin + self.chunk_size, n)
            if end < n:
                floor = begin + self.chunk_size * 3 // 4
                sentence_end = _back_to(sentence_start, end, floor=floor)
                end = sentence_end if sentence_start[sentence_end] else _back_to(word_start, end, floor=floor)
            text = self._text(pages, page_of, starts, ends, begin, end)
            if text.strip():
                first, last = int(page_of[begin]), int(page_of[end - 1])
                if headings[first - 1] and begin > page_first[first - 1]:
                    text = f"{headings[first - 1]}\n{text}"
                chunk_id = hashlib.blake2b(
                    f"{doc}\x00{len(chunks)}\x00{first}\x00{text}".encode(), digest_size=8
                ).hexdigest()
                chunks.append(Chunk(chunk_id=chunk_id, doc=doc, page_start=first, page_end=last, text=text))
            if end >= n:
                break
            next_begin = _back_to(word_start, end - self.overlap, floor=begin + 1)
            begin = max(next_begin, begin + 1)
        return chunks

    @staticmethod
    def _text(pages, page_of, starts, ends, begin: int, end: int) -> str:
        parts = []
        for page in range(int(page_of[begin]), int(page_of[end - 1]) + 1):
            on_page = np.flatnonzero(page_of[begin:end] == page) + begin
            if len(on_page):
                parts.append(pages[page - 1][starts[on_page[0]] : ends[on_page[-1]]])
        return "\n".join(parts)


def _sentence_starts(pages, page_of, starts, ends, word_start: np.ndarray) -> np.ndarray:
    """Whether a sentence ends just before each token; marks each CJK character a word start
    in `word_start` on the way."""
    text = [pages[p - 1] for p in page_of]
    first = [t[s] if e > s else "" for t, s, e in zip(text, starts, ends, strict=True)]
    last = [t[e - 1] if e > s else "" for t, s, e in zip(text, starts, ends, strict=True)]
    word_start |= np.fromiter((bool(_CJK.match(c)) for c in first), dtype=bool, count=len(first))
    sentence_start = np.zeros(len(first), dtype=bool)
    full = np.fromiter((c in _FULL_STOP for c in last), dtype=bool, count=len(last))
    half = np.fromiter((c in _HALF_STOP for c in last), dtype=bool, count=len(last))
    sentence_start[1:] = full[:-1] | (half[:-1] & word_start[1:])
    return sentence_start


def _back_to(word_start: np.ndarray, position: int, floor: int) -> int:
    """Move a cut back to the nearest word start, but not below `floor`."""
    cut = position
    while cut > floor and not word_start[cut]:
        cut -= 1
    return cut if cut > floor or word_start[cut] else position
