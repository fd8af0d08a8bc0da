"""Token-aware chunking with the embedding model's own tokenizer."""

from pdfs import lorem

from rag.chunking import Chunker


def test_chunks_fit_the_window_and_keep_page_spans(embedder) -> None:
    pages = [lorem("alpha", 40), "The unique marker sentence lives on page two.", lorem("gamma", 40)]
    chunks = Chunker(embedder.tokenizer, chunk_size=64, overlap=16).split("doc.pdf", pages)
    assert len(chunks) > 5
    for c in chunks:
        n_tokens = len(embedder.tokenizer(c.text, add_special_tokens=False)["input_ids"])
        assert n_tokens <= 64
        assert 1 <= c.page_start <= c.page_end <= 3 and c.doc == "doc.pdf"
    marker = [c for c in chunks if "unique marker" in c.text]
    assert marker and all(c.page_start <= 2 <= c.page_end for c in marker)
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 3


def test_consecutive_chunks_overlap_and_cover_the_text(embedder) -> None:
    words = " ".join(f"word{i}" for i in range(400))
    chunks = Chunker(embedder.tokenizer, chunk_size=50, overlap=10).split("d", [words])
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.text.split()[-1] in b.text  # the overlap repeats the end of the previous chunk
    assert "word0" in chunks[0].text and "word399" in chunks[-1].text


def test_ids_are_stable_and_depend_on_content(embedder) -> None:
    chunker = Chunker(embedder.tokenizer, chunk_size=40, overlap=8)
    a = chunker.split("d.pdf", [lorem("x", 20)])
    b = chunker.split("d.pdf", [lorem("x", 20)])
    c = chunker.split("d.pdf", [lorem("y", 20)])
    assert [x.chunk_id for x in a] == [x.chunk_id for x in b]
    assert len({x.chunk_id for x in a}) == len(a)
    assert a[0].chunk_id != c[0].chunk_id


def test_chunking_does_not_exceed_what_minilm_reads(embedder) -> None:
    assert embedder.max_tokens == 254  # MiniLM's 256-token window less [CLS] and [SEP]
