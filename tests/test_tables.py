"""Table headings (rag.tables): a table page's title and column headings go before each of its
chunks that starts below them, so a chunk from the middle of a statement still names the
statement and the years of its columns. Real tokenizer, real PDFs, real index."""

from __future__ import annotations

from pathlib import Path

import pytest
from pdfs import lorem, make_pdf

from indexes import IndexStore
from rag.chunking import Chunker
from rag.embedding import DEFAULT_MODEL, load_tokenizer
from rag.ingest import ModelMismatch, ingest
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.tables import HEADING_CHARS, table_headings

LABELS = [
    "Depreciation and amortization", "Stock-based compensation expense", "Deferred income taxes",
    "Accounts receivable", "Inventories", "Accounts payable", "Accrued income taxes",
    "Purchases of laboratory equipment", "Proceeds from sale of equipment", "Acquisitions, net of cash",
    "Purchases of marketable securities", "Proceeds from maturities of securities", "Repayment of debt",
    "Proceeds from debt", "Purchases of treasury stock", "Dividends paid to shareholders",
]
HEADING = "Consolidated Statement of Cash Flows Years ended December 31 (Millions) 2024 2023 2022"


def statement(title_line: str = "Consolidated Statement of Cash Flows") -> str:
    rows = [f"{label} {37 * i + 5:,} ({1000 + 91 * i:,}) {2 * i + 1:,}" for i, label in enumerate(LABELS * 3)]
    return "\n".join([
        "Table of Contents", title_line, "Years ended December 31", "(Millions) 2024 2023 2022",
        "Cash Flows from Operating Activities", *rows, "61",
    ])


def prose(topic: str) -> str:
    return "Table of Contents\n" + lorem(topic, 12)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(DEFAULT_MODEL)


def test_a_table_pages_heading_is_its_title_and_columns_without_running_heads() -> None:
    pages = [prose("harbour"), statement(), prose("orchard"), prose("glacier")]
    assert table_headings(pages) == ["", HEADING, "", ""]  # "Table of Contents" runs on every page
    # pdfium's spaced-out title letters are joined; a long heading keeps its nearest lines
    split = table_headings([statement("Consolidated Balance Shee t"), *pages[2:], prose("delta")])[0]
    assert split.startswith("Consolidated Balance Sheet Years")
    long = table_headings([statement("Segment " * 30 + "Summary"), *pages[2:], prose("delta")])[0]
    assert len(long) <= HEADING_CHARS and long.endswith("(Millions) 2024 2023 2022")
    # a page of prose with dates and one number a line is no table
    dated = "\n".join(f"On March {d}, 2024 the board met in room {d}" for d in range(1, 20))
    assert table_headings([dated]) == [""]


def test_chunks_below_a_table_pages_heading_start_with_it(tokenizer) -> None:
    pages = [prose("harbour"), statement(), prose("orchard"), prose("glacier")]
    plain = Chunker(tokenizer, chunk_size=64, overlap=8).split("r.pdf", pages)
    headed = Chunker(tokenizer, chunk_size=64, overlap=8, table_scheme="headings-v1").split("r.pdf", pages)
    assert len(plain) == len(headed)
    below = [(a, b) for a, b in zip(plain, headed, strict=True) if a.page_start == 2]
    assert len(below) >= 4  # chunks that start on the table page, below its first line
    for before, after in below:
        assert after.text == f"{HEADING}\n{before.text}"
        assert after.chunk_id != before.chunk_id
    for before, after in zip(plain, headed, strict=True):
        if before.page_start != 2:  # the one holding the page's own heading lines among them
            assert (after.text, after.chunk_id) == (before.text, before.chunk_id)
    assert any("Consolidated Statement of Cash Flows\nYears" in c.text for c in headed if c.page_start == 1)


def test_an_index_with_table_headings_finds_a_row_by_its_statement_and_year(tmp_path: Path, embedder) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    make_pdf(folder / "filing.pdf", [prose("harbour"), statement(), prose("orchard"), prose("glacier")])
    settings = Settings(index=tmp_path / "index", table_context="headings-v1", doc_header="none")
    ingest([folder], settings, progress=False, embedder=embedder)
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.table_scheme == "headings-v1"
    top = Retriever(settings.index, embedder).search(
        "cash flows 2023 dividends paid to shareholders", k=1, mode="bm25", collapse=False
    )[0]
    assert top.page_start == 2 and top.text.startswith(HEADING) and "Dividends paid" in top.text
    with pytest.raises(ModelMismatch, match="table headings"):  # asked for explicitly: no mixing
        ingest([folder], Settings(index=settings.index, table_context="none", doc_header="none"),
               progress=False, embedder=embedder)
