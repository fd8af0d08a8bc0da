"""Document headers: who a document is by, which period, what kind, found on its first pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import notes, rag_cli
from pdfs import make_pdf

from indexes import IndexStore
from rag.document_context import (
    HEADER_SCHEME,
    contextual_text,
    document_header,
    file_name_words,
    metadata_title,
    organisation,
    period,
    report_types,
)
from rag.ingest import ModelMismatch, ingest, set_title
from rag.retrieval import Retriever
from rag.settings import Settings

COVER = """UNITED STATES
SECURITIES AND EXCHANGE COMMISSION
FORM 10-K
ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934
For the fiscal year ended June 30, 2021
Commission File Number 1-1234
NORTHWIND TRADERS, INC.
(Exact name of registrant as specified in its charter)
Delaware
"""


def test_cover_page_names_organisation_period_and_form() -> None:
    pages = [COVER, "Item 1. Business. We sell tea."]
    assert organisation(pages) == "Northwind Traders, Inc."
    assert period(pages) == "fiscal year ended June 30, 2021 (FY2021)"
    assert report_types(pages) == ["Form 10-K annual report"]
    header = document_header("nw_fy21.pdf", pages, title="0000950170-21-000123")
    # an EDGAR accession number is not a title; the cover's boilerplate is not either
    assert header == (
        "Northwind Traders, Inc. · Form 10-K annual report · fiscal year ended June 30, 2021 (FY2021)"
        " · nw fy21"
    )


def test_quarterly_report_names_its_own_form_not_the_annual_one_it_mentions() -> None:
    cover = "FORM 10-Q\nFor the quarterly period ended March 31, 2022\nsee our Form 10-K\nACME CORP."
    assert report_types([cover]) == ["Form 10-Q quarterly report"]
    assert period([cover]) == "quarter ended March 31, 2022 (2022)"
    assert organisation([cover]) == "Acme Corp."


def test_a_document_with_no_cover_falls_back_to_its_heading_and_file_name() -> None:
    pages = ["Kestrel Field Guide for Birdwatchers\nChapter one. Kestrels hover over fields."]
    header = document_header("kestrel-guide_2nd-edition.pdf", pages, title=None)
    assert header == "Kestrel Field Guide for Birdwatchers · kestrel guide 2nd edition"


def test_titles_and_file_names() -> None:
    assert metadata_title("Microsoft Word - draft3.docx") == ""
    assert metadata_title("  Annual   Report 2020 ") == "Annual Report 2020"
    assert file_name_words("annualReport_FY22-final.pdf") == "annual Report FY22 final"


def test_user_title_wins_and_header_precedes_chunk_text() -> None:
    header = document_header("x.pdf", ["nothing here"], title="Board minutes, spring 2019")
    assert header.startswith("Board minutes, spring 2019")
    assert contextual_text(header, "Page text.") == f"{header}\nPage text."
    assert contextual_text("", "Page text.") == "Page text."


# --- the header in the index: real PDFs, the real MiniLM, the real FAISS and BM25 indexes ---

TABLE_PAGE = (  # the same words in every company's report: only the document says whose it is
    "Consolidated statement of operations. Net sales by segment: beverages, snacks, services. "
    "Cost of sales, gross margin, operating expenses, income taxes and net income are shown "
    "for each segment in millions of dollars. " * 6
)
COMPANIES = {"report_a.pdf": "NORTHWIND TRADERS, INC.", "report_b.pdf": "CONTOSO FOODS CORPORATION"}


def _annual_report(folder: Path, name: str, year: int = 2021) -> Path:
    cover = (
        f"FORM 10-K\nFor the fiscal year ended December 31, {year}\n{COMPANIES[name]}\n"
        "(Exact name of registrant as specified in its charter)\n" + notes("board", 10)
    )
    return make_pdf(folder / name, [cover, TABLE_PAGE])


def _reports(tmp_path: Path) -> Path:
    folder = tmp_path / "shelf"
    folder.mkdir()
    for name in COMPANIES:  # file names that say nothing: the cover page must
        _annual_report(folder, name)
    return folder


def test_each_chunk_carries_its_documents_header_into_both_indexes(tmp_path: Path, embedder) -> None:
    folder = _reports(tmp_path)
    settings = Settings(index=tmp_path / "index", doc_header=HEADER_SCHEME)
    ingest([folder], settings, progress=False, embedder=embedder)
    with IndexStore(settings.index).open() as snap:
        headers = {d.name: d.header for d in snap.documents()}
        assert snap.manifest.header_scheme == HEADER_SCHEME
    assert headers["report_b.pdf"].startswith("Contoso Foods Corporation · Form 10-K annual report")
    assert "(FY2021)" in headers["report_a.pdf"]
    query = "Contoso net sales by segment"
    retriever = Retriever(settings.index, embedder)
    for mode in ("dense", "bm25", "hybrid"):  # hybrid routes to the document the query names too
        top = retriever.search(query, k=1, mode=mode)[0]
        # a page of the table that names no company, found by the company the question names
        assert (top.doc, top.page_start, top.page_end) == ("report_b.pdf", 2, 2), (mode, top)

    # without headers the two companies' table pages are the same text: nothing tells them apart
    plain = Settings(index=tmp_path / "plain", doc_header="none")
    ingest([folder], plain, progress=False, embedder=embedder)
    hits = Retriever(plain.index, embedder).search(query, k=10, mode="dense", collapse=False)
    table = [h for h in hits if h.page_start == h.page_end == 2]
    twins = [(a, b) for a in table for b in table if a.doc < b.doc and a.text == b.text]
    assert twins and all(a.score == pytest.approx(b.score) for a, b in twins)


def test_a_title_set_by_the_user_is_embedded_and_kept(tmp_path: Path, embedder) -> None:
    folder = _reports(tmp_path)
    settings = Settings(index=tmp_path / "index", doc_header=HEADER_SCHEME)
    ingest([folder], settings, progress=False, embedder=embedder)
    report = set_title("report_a.pdf", "Kestrel Gazette almanac", settings, embedder=embedder)
    assert report.count("updated") == 1 and report.chunks_embedded > 0
    retriever = Retriever(settings.index, embedder)
    assert retriever.search("Kestrel Gazette almanac net sales", k=1, mode="bm25")[0].doc == "report_a.pdf"
    done = rag_cli("docs", "list", "--json", env={"RAG_INDEX": str(settings.index)})
    listed = {d["name"]: d for d in json.loads(done.stdout)}
    assert listed["report_a.pdf"]["title"] == "Kestrel Gazette almanac"
    assert listed["report_a.pdf"]["header"].startswith("Kestrel Gazette almanac")
    # the file changes: it is parsed again, and the user's title stays
    _annual_report(folder, "report_a.pdf", year=2019)
    ingest([folder], settings, progress=False, embedder=embedder)
    with IndexStore(settings.index).open() as snap:
        record = next(d for d in snap.documents() if d.name == "report_a.pdf")
    assert record.user_title == "Kestrel Gazette almanac" and "(FY2019)" in record.header


def test_header_scheme_cannot_be_mixed_and_bad_titles_are_refused(tmp_path: Path, embedder) -> None:
    folder = _reports(tmp_path)
    settings = Settings(index=tmp_path / "index", doc_header=HEADER_SCHEME)
    ingest([folder], settings, progress=False, embedder=embedder)
    with pytest.raises(ModelMismatch, match="document headers"):  # asked for explicitly
        mixed = Settings(index=settings.index, doc_header="none")
        ingest([folder], mixed, progress=False, embedder=embedder)
    env = {"RAG_INDEX": str(settings.index)}
    assert rag_cli("docs", "set-title", "nope.pdf", "A title", env=env).returncode == 2
    assert rag_cli("docs", "set-title", "report_a.pdf", "   ", env=env).returncode == 2
