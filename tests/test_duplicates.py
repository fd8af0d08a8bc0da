"""Near-duplicates fold into one result: two editions of a manual are one source, not two."""

from __future__ import annotations

from pathlib import Path

from conftest import notes
from pdfs import lorem, make_pdf

from rag.duplicates import collapse_duplicates, jaccard, shingles
from rag.ingest import ingest
from rag.retrieval import Retriever, SearchResult
from rag.settings import Settings


def _result(doc: str, text: str, score: float) -> SearchResult:
    return SearchResult(chunk_id=f"{doc}-{score}", doc=doc, page_start=1, page_end=1, text=text, score=score)


def test_reflowed_copies_fold_into_the_best_and_distinct_texts_stay() -> None:
    page = lorem("manual", 12)
    results = [
        _result("full.pdf", page, 0.9),
        _result("other.pdf", notes("garden"), 0.8),
        _result("short.pdf", page.replace(". ", ".\n"), 0.7),  # the same words, other line breaks
    ]
    folded = collapse_duplicates(results)
    assert [r.doc for r in folded] == ["full.pdf", "other.pdf"]
    assert [s.doc for s in folded[0].also_in] == ["short.pdf"] and folded[1].also_in == ()
    assert jaccard(shingles(page), shingles(notes("garden"))) < 0.1


def test_two_editions_of_one_manual_take_one_slot(tmp_path: Path, embedder) -> None:
    folder = tmp_path / "manuals"
    folder.mkdir()
    # longer than a chunk: each edition's first chunk is the same text
    body = "The function lapply returns a list of the same length as its input. " + lorem("apply", 30)
    make_pdf(folder / "refman.pdf", [body])
    make_pdf(folder / "fullrefman.pdf", [body, notes("graphics")])
    settings = Settings(index=tmp_path / "index")
    ingest([folder], settings, progress=False, embedder=embedder)
    retriever = Retriever(settings.index, embedder)
    query = "What does lapply return?"
    both = retriever.search(query, k=2, mode="dense")
    assert {r.doc for r in both} == {"refman.pdf", "fullrefman.pdf"}
    assert both[0].text == both[1].text  # the same text, twice: half the answer's sources wasted
    best = retriever.search(query, k=2, mode="dense", collapse=True)
    assert best[0].also_in and {best[0].doc, best[0].also_in[0].doc} == {"refman.pdf", "fullrefman.pdf"}
    assert len(best) == 2 and best[1].text != best[0].text
    assert best[0].to_dict()["also_in"][0]["page_start"] == 1


def test_a_page_takes_one_slot_and_its_other_chunks_are_listed_on_it(tmp_path: Path, embedder) -> None:
    folder = tmp_path / "report"
    folder.mkdir()
    # page 1 is several chunks of one topic; page 2 another topic
    make_pdf(folder / "report.pdf", [lorem("dividend", 60), notes("dividend policy")])
    settings = Settings(index=tmp_path / "index")
    ingest([folder], settings, progress=False, embedder=embedder)
    retriever = Retriever(settings.index, embedder)
    query = "What does the dividend analysis show?"
    plain = retriever.search(query, k=3, mode="dense")
    assert len({r.page_start for r in plain}) < 3  # page 1 twice or more
    folded = retriever.search(query, k=3, mode="dense", collapse=True)
    pages = [(r.page_start, r.page_end) for r in folded]
    assert len(set(pages)) == len(pages) and 2 in {p for p, _ in pages}
    page_one = next(r for r in folded if r.page_start == 1)
    assert page_one.also_in and all(s.page_start <= 1 <= s.page_end for s in page_one.also_in)


def test_a_folded_result_is_scored_by_the_chunks_it_shows() -> None:
    from dataclasses import replace

    from eval.pdfqa import result_rankings
    from indexes import Span

    best = _result("a.pdf", "words", 0.9)
    best = replace(best, also_in=(Span(doc="a.pdf", page_start=1, page_end=2, chunk_id="evidence"),))
    results = [[best, _result("b.pdf", "other", 0.5)]]
    qrels = {"q": {"evidence": 1}}
    qs = [{"id": "q"}]
    assert result_rankings(qs, results, qrels) == {"q": ["evidence", "b.pdf-0.5"]}
    assert result_rankings(qs, results, qrels, own_chunk_only=True) == {"q": ["a.pdf-0.9", "b.pdf-0.5"]}
