"""Token-aware chunking with the embedding model's own tokenizer: windows of whole words that
fill `chunk_size` tokens, overlap by `overlap` tokens, keep their page span, and get stable ids."""

import pytest
from pdfs import lorem

from rag.chunking import Chunker
from rag.embedding import DEFAULT_MODEL, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(DEFAULT_MODEL)


def count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def words(n: int, prefix: str = "word") -> list[str]:
    """Words of one to four WordPiece tokens each ("word7", "word1234")."""
    return [f"{prefix}{i * 37 % 10007}" for i in range(n)]


def test_windows_are_whole_words_filling_the_chunk_size(tokenizer) -> None:
    text = words(400)
    chunks = Chunker(tokenizer, chunk_size=50, overlap=10).split("d.pdf", [" ".join(text)])
    assert len(chunks) > 5
    for c in chunks:
        run = c.text.split(" ")
        start = text.index(run[0])
        assert run == text[start : start + len(run)]  # a run of whole words, none cut
        n = count(tokenizer, c.text)
        assert n <= 50
        if c is not chunks[-1]:
            # cut at the last word boundary: the next word would not have fitted
            assert n + count(tokenizer, text[start + len(run)]) > 50
    assert chunks[0].text.split(" ")[0] == text[0] and chunks[-1].text.split(" ")[-1] == text[-1]


@pytest.mark.parametrize("overlap", [0, 10, 25])
def test_neighbours_share_at_least_overlap_tokens_of_whole_words(tokenizer, overlap: int) -> None:
    text = words(300)
    longest_word = max(count(tokenizer, w) for w in text)
    chunks = Chunker(tokenizer, chunk_size=50, overlap=overlap).split("d.pdf", [" ".join(text)])
    rebuilt = chunks[0].text.split(" ")
    for a, b in zip(chunks, chunks[1:], strict=False):
        a_words, b_words = a.text.split(" "), b.text.split(" ")
        shared = next(k for k in range(len(b_words), -1, -1) if a_words[len(a_words) - k :] == b_words[:k])
        shared_tokens = count(tokenizer, " ".join(b_words[:shared])) if shared else 0
        # the next window starts `overlap` tokens before the cut, moved back to a word start
        assert overlap <= shared_tokens < overlap + longest_word
        rebuilt += b_words[shared:]
    assert rebuilt == text  # nothing lost, nothing repeated beyond the overlap


def test_page_spans_are_the_pages_a_chunk_takes_text_from(tokenizer) -> None:
    pages = [" ".join(words(n, f"p{i}w")) for i, n in ((1, 30), (2, 8), (3, 30))]
    chunks = Chunker(tokenizer, chunk_size=40, overlap=8).split("d.pdf", pages)
    assert any(c.page_end > c.page_start for c in chunks)
    for c in chunks:
        parts = c.text.split("\n")  # text from two pages is joined by a line break
        assert len(parts) == c.page_end - c.page_start + 1
        for page, part in zip(range(c.page_start, c.page_end + 1), parts, strict=True):
            assert part in pages[page - 1] and all(w.startswith(f"p{page}w") for w in part.split())
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 3
    # every word of the short middle page is in a chunk whose span includes page 2
    assert all(any(c.page_start <= 2 <= c.page_end and w in c.text.split() for c in chunks)
               for w in pages[1].split())


def test_a_marker_sentence_is_cited_on_its_page(tokenizer) -> None:
    pages = [lorem("alpha", 40), "The unique marker sentence lives on page two.", lorem("gamma", 40)]
    chunks = Chunker(tokenizer, chunk_size=64, overlap=16).split("doc.pdf", pages)
    marker = [c for c in chunks if "unique marker" in c.text]
    assert marker and all(c.page_start <= 2 <= c.page_end and c.doc == "doc.pdf" for c in marker)


def test_ids_are_stable_and_depend_on_document_position_and_text(tokenizer) -> None:
    page = "one two three four five six seven eight"  # eight tokens: one window a page
    a = Chunker(tokenizer, chunk_size=8, overlap=0).split("d.pdf", [page, page, lorem("x", 20)])
    b = Chunker(tokenizer, chunk_size=8, overlap=0).split("d.pdf", [page, page, lorem("x", 20)])
    assert a == b  # ids, texts and spans alike on every run
    assert (a[0].text, a[1].text) == (page, page) and a[0].text_hash == a[1].text_hash
    assert len({c.chunk_id for c in a}) == len(a)  # equal texts at two places: two ids, one vector
    renamed = Chunker(tokenizer, chunk_size=8, overlap=0).split("e.pdf", [page, page, lorem("x", 20)])
    assert not {c.chunk_id for c in renamed} & {c.chunk_id for c in a}
    edited = Chunker(tokenizer, chunk_size=8, overlap=0).split("d.pdf", [page, page, lorem("y", 20)])
    assert [c.chunk_id for c in edited[:2]] == [c.chunk_id for c in a[:2]]
    assert edited[2].chunk_id != a[2].chunk_id


def test_blank_pages_make_no_chunks_and_bad_settings_are_refused(tokenizer) -> None:
    chunker = Chunker(tokenizer, chunk_size=40, overlap=8)
    assert chunker.split("d.pdf", []) == [] and chunker.split("d.pdf", ["", "  \n "]) == []
    only = chunker.split("d.pdf", ["", "lonely words on page two", ""])
    assert [(c.page_start, c.page_end, c.text) for c in only] == [(2, 2, "lonely words on page two")]
    with pytest.raises(ValueError, match="at least 8"):
        Chunker(tokenizer, chunk_size=4, overlap=0)
    with pytest.raises(ValueError, match="half the chunk size"):
        Chunker(tokenizer, chunk_size=40, overlap=30)
