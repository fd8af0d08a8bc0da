"""Dense, BM25 and hybrid search over a real index."""

import numpy as np
import pytest

from rag.ingest import ingest
from rag.retrieval import Retriever, reciprocal_rank_fusion


@pytest.fixture
def settings(store_settings):
    """Every test here runs against both index backends (local files and Milvus)."""
    return store_settings


@pytest.fixture
def retriever(corpus, settings, embedder) -> Retriever:
    ingest([corpus], settings, progress=False, embedder=embedder)
    return Retriever(settings.index, embedder)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_finds_the_page(retriever, mode) -> None:
    hit = retriever.search("Where do zebras migrate in July?", k=3, mode=mode)[0]
    assert hit.doc == "zoo.pdf" and hit.page_start <= 2 <= hit.page_end
    assert "Zebras migrate" in hit.text and hit.score > 0


def test_filter_by_document(retriever) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        results = retriever.search("zebras in the garden", k=5, mode=mode, docs=["plants.pdf"])
        assert results and {r.doc for r in results} == {"plants.pdf"}
    assert retriever.search("zebras", docs=["unknown.pdf"]) == []


def test_k_and_mode_are_checked(retriever) -> None:
    assert len(retriever.search("garden", k=2)) == 2
    with pytest.raises(ValueError, match="unknown mode"):
        retriever.search("x", mode="sparse")
    with pytest.raises(ValueError, match="k must be"):
        retriever.search("x", k=0)


def test_retriever_follows_new_generations(retriever, corpus, settings, embedder) -> None:
    from pdfs import make_pdf

    assert not any(r.doc == "new.pdf" for r in retriever.search("kangaroo pouch", k=5))
    make_pdf(corpus / "new.pdf", ["Kangaroos carry their young in a pouch."])
    ingest([corpus], settings, progress=False, embedder=embedder)
    assert retriever.search("kangaroo pouch", k=1)[0].doc == "new.pdf"


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    dense = np.array([[3, 1, 2]])
    sparse = np.array([[1, 4, -1]])
    scores, rows = reciprocal_rank_fusion([dense, sparse], k=3)
    assert rows[0, 0] == 1  # ranked 2nd and 1st beats 1st and absent
    assert scores[0, 0] == pytest.approx(1 / 62 + 1 / 61)
    assert set(rows[0]) == {1, 3, 4}
