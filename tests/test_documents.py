"""PDF loading: page numbering, the default extractor and its fallback, bad-file kinds."""

import hashlib
from pathlib import Path

import pytest
from pdfs import make_image_only_pdf, make_pdf

from rag.documents import DocumentError, discover, extract_pages, file_sha256


def test_pages_are_numbered_as_a_viewer_shows_them(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", ["first page apples", "second page bananas", "third cherries"])
    pages = extract_pages(path)
    assert len(pages) == 3
    assert "apples" in pages[0] and "bananas" in pages[1] and "cherries" in pages[2]
    assert extract_pages(path, "pypdf")[1].strip() == pages[1].strip()


def test_file_sha256_reads_the_whole_file_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    data = b"%PDF-1.7\n" + bytes(range(256)) * 5000  # 1.2 MiB: more than one 1 MiB block
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + b"!")  # the last byte, in the second block, counts too
    assert file_sha256(path) != hashlib.sha256(data).hexdigest()


def test_extractors_agree_and_clean_line_ends(tmp_path: Path) -> None:
    text = "Line one of the page ends here and the page goes on for a while. " * 6
    path = make_pdf(tmp_path / "a.pdf", [text, "second"])
    pdfium, pypdf = extract_pages(path, "pdfium"), extract_pages(path, "pypdf")
    assert len(pdfium) == len(pypdf) == 2
    assert " ".join(pdfium[0].split()) == " ".join(pypdf[0].split()) == " ".join(text.split())
    assert "\r" not in pdfium[0] and "\ufffe" not in pdfium[0] and "\n" in pdfium[0]
    with pytest.raises(ValueError, match="unknown extractor"):
        extract_pages(path, "tesseract")


def test_encrypted_with_empty_password_is_read(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "e.pdf", ["volcanoes erupt lava"], password="")
    assert "volcanoes" in extract_pages(path)[0]
    assert "volcanoes" in extract_pages(path, "pypdf")[0]


@pytest.mark.parametrize(
    "kind, make",
    [
        ("empty", lambda p: p.write_bytes(b"")),
        ("not-a-pdf", lambda p: p.write_text("just some text, named .pdf")),
        ("corrupt", lambda p: p.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")),
        ("encrypted", lambda p: make_pdf(p, ["secret"], password="hunter2")),
        ("no-text", lambda p: make_image_only_pdf(p)),
    ],
)
def test_bad_files_are_reported_by_kind(tmp_path: Path, kind: str, make) -> None:
    path = tmp_path / "bad.pdf"
    make(path)
    with pytest.raises(DocumentError) as caught:
        extract_pages(path)
    assert caught.value.kind == kind


def test_magic_bytes_decide_not_the_extension(tmp_path: Path) -> None:
    real = make_pdf(tmp_path / "report.txt", ["a pdf with the wrong extension"])
    assert "wrong extension" in extract_pages(real)[0]
    assert discover([real]) == [real.resolve()]  # a file named directly is always taken


def test_discover_walks_folders_for_pdfs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    make_pdf(tmp_path / "sub" / "b.PDF", ["x"])
    make_pdf(tmp_path / "a.pdf", ["y"])
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in discover([tmp_path])] == ["a.pdf", "b.PDF"]
    with pytest.raises(FileNotFoundError):
        discover([tmp_path / "missing"])
