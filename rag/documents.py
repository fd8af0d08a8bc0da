"""Reading PDFs page by page (pages numbered from 1, as a viewer shows them).

pypdfium2 is the default extractor: about 140 pages/s on the FinanceBench 10-Ks against
pypdf's 5. pypdf stays as the fallback for files pdfium cannot open and for decryption;
pymupdf (AGPL) is used only when the user installs the `pymupdf` extra and asks for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

Extractor = Literal["pdfium", "pypdf", "pymupdf"]
EXTRACTORS: tuple[Extractor, ...] = get_args(Extractor)
logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files are reported, not logged
log = logging.getLogger(__name__)


class DocumentError(Exception):
    """A file that cannot be ingested; `kind` is one of the KINDS below."""

    KINDS = (
        "empty", "not-a-pdf", "corrupt", "encrypted", "no-text", "unreadable", "unreadable-text",
        # limits of the parsing sandbox (rag.parsing_sandbox): the file is skipped, not the run
        "too-many-pages", "too-much-text", "timeout", "out-of-memory", "crashed",
    )

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_pdf_header(path: Path) -> None:
    """Decide PDF or not by the magic bytes: `%PDF-` within the first KiB, as readers allow."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError as err:
        raise DocumentError("unreadable", f"cannot read file: {err.strerror}") from err
    if size == 0:
        raise DocumentError("empty", "empty file (0 bytes)")
    if b"%PDF-" not in head:
        raise DocumentError("not-a-pdf", "not a PDF (no %PDF- header)")


def pdf_title(path: Path) -> str | None:
    """The Title entry of a PDF's metadata, if it has one (cheap: the pages are not read)."""
    try:
        import pypdfium2 as pdfium

        document = pdfium.PdfDocument(str(path))
        try:
            return document.get_metadata_dict().get("Title") or None
        finally:
            document.close()
    except Exception:  # noqa: BLE001 - a title is a nicety; extraction reports real problems
        return None


def extract_pages(
    path: Path,
    extractor: str = "pdfium",
    max_pages: int | None = None,
    max_chars: int | None = None,
    ocr: str = "never",
) -> list[str]:
    """Text of every page of a PDF; raises DocumentError for the kinds it cannot read.

    `max_pages` is checked against the page count before any page is read, and `max_chars`
    after each page, so that a huge or decompression-bomb file stops early (None: no cap).
    `ocr` (rag.ocr, pdfium only): "auto" reads pages with no text or unreadable text with OCR
    when its extra is installed, "always" every page, "never" none.
    """
    check_pdf_header(path)
    caps = _Caps(max_pages, max_chars)
    if ocr != "never":
        from rag import ocr as ocr_module

        if not ocr_module.available():
            if ocr == "always":
                raise ValueError("--ocr always needs the OCR extra: pip install 'ragstack[ocr]'")
            ocr = "never"
    if extractor == "pymupdf":
        pages = _pages_pymupdf(path, caps)
    elif extractor == "pypdf":
        pages = _pages_pypdf(path, caps)
    elif extractor == "pdfium":
        try:
            pages = _pages_pdfium(path, caps, ocr)
        except _PdfiumFailed:
            caps.chars = 0
            pages = _pages_pypdf(path, caps)  # pypdf opens some damaged files and decrypts more
    else:
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    pages = [_clean(p) for p in pages]
    garbled = [i for i, p in enumerate(pages, 1) if _garbled(p)]
    if garbled:
        pages = ["" if i in garbled else p for i, p in enumerate(pages, 1)]
        if not any(p.strip() for p in pages):
            raise DocumentError(
                "unreadable-text",
                f"unreadable text on {len(garbled)} page(s): its fonts map glyphs to no characters "
                "(CID fonts without a ToUnicode map); it needs OCR",
            )
        log.warning("%s: pages %s hold unreadable text and are left out", path.name, garbled)
    if not any(p.strip() for p in pages):
        raise DocumentError(
            "no-text",
            f"no extractable text in {len(pages)} page(s): image-only or scanned PDF "
            + ("where OCR read nothing either" if ocr != "never" and extractor == "pdfium"
               else "(OCR reads it: pip install 'ragstack[ocr]', --ocr auto)"),
        )
    return pages


def _clean(text: str) -> str:
    # pdfium ends lines with \r\n and marks soft hyphens with U+FFFE / U+0002
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "").replace("\x02", "")
    # a line break between two CJK characters is no word boundary: the line is joined as written
    return _CJK_LINE_BREAK.sub("", text) if "\n" in text else text


# indexes.words.CJK plus CJK punctuation and full-width forms, written out rather than imported:
# the parsing worker imports this module under a memory limit (RLIMIT_AS), and `indexes` brings
# faiss, numpy, scipy and numba (1.7 s, hundreds of MB of address space) with it
_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\u3040-\u30ff\u31f0-\u31ff"  # Kana
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"  # Hangul
    "\u3000-\u303f\uff00-\uffef"  # CJK punctuation, full-width forms
)
_CJK_LINE_BREAK = re.compile(f"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")
# what a font without a Unicode map gives: glyph ids as control characters, U+FFFD, private use
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd\ue000-\uf8ff]")
_UNMAPPED = "\ufffd"  # a page pdfium found unmapped (_unmapped) stands as this: garbled
_SPACE = re.compile(r"\s")


def _garbled(page: str) -> bool:
    """Whether most of a page's characters are not text (see _NOT_TEXT)."""
    if _NOT_TEXT.search(page) is None:  # the common case, at the cost of one scan
        return False
    visible = len(page) - len(_SPACE.findall(page))
    return len(_NOT_TEXT.findall(page)) * 2 > visible


class _PdfiumFailed(Exception):
    pass


@dataclass
class _Caps:
    """The page and character caps of one extraction, and the characters read so far."""

    max_pages: int | None
    max_chars: int | None
    chars: int = 0

    def check_pages(self, count: int) -> None:
        if self.max_pages is not None and count > self.max_pages:
            raise DocumentError(
                "too-many-pages", f"{count} pages: more than {self.max_pages} pages (RAG_MAX_PAGES)"
            )

    def add_chars(self, count: int) -> None:
        self.chars += count
        if self.max_chars is not None and self.chars > self.max_chars:
            raise DocumentError(
                "too-much-text", f"more than {self.max_chars} characters of text (RAG_MAX_CHARS)"
            )


def _pages_pdfium(path: Path, caps: _Caps, ocr: str = "never") -> list[str]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as err:
        raise _PdfiumFailed(str(err)) from err
    try:
        caps.check_pages(len(pdf))
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            try:
                count = textpage.count_chars()
                caps.add_chars(count)  # before the text becomes a Python string
                text = textpage.get_text_bounded()
                unreadable = _unmapped(textpage, count) or _garbled(text)
                if ocr == "always" or (ocr == "auto" and (unreadable or not text.strip())):
                    from rag.ocr import read_page

                    text = read_page(page)
                    caps.add_chars(len(text))
                elif unreadable:
                    text = _UNMAPPED
                pages.append(text)
            finally:
                textpage.close()
                page.close()
        return pages
    finally:
        pdf.close()


def _unmapped(textpage, count: int) -> bool:
    """Whether most characters of a page (a sample of 200) come from fonts without a Unicode map:
    pdfium then gives glyph ids, which read as control characters or random letters."""
    import pypdfium2.raw as pdfium_c

    sample = range(0, count, max(1, count // 200))
    errors = sum(bool(pdfium_c.FPDFText_HasUnicodeMapError(textpage, i)) for i in sample)
    return errors * 2 > len(sample)


def _pages_pypdf(path: Path, caps: _Caps) -> list[str]:
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as err:  # pypdf raises several types for unsupported ciphers
                raise DocumentError("encrypted", f"encrypted PDF, cannot decrypt: {err}") from err
            if not opened:
                raise DocumentError(
                    "encrypted", "encrypted PDF: needs a password (the empty one did not open it)"
                )
        caps.check_pages(len(reader.pages))
        pages = []
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            caps.add_chars(len(pages[-1]))
        return pages
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as err:
        raise DocumentError("corrupt", f"corrupt PDF: {err}") from err


def _pages_pymupdf(path: Path, caps: _Caps) -> list[str]:
    try:
        import pymupdf
    except ImportError as err:
        raise ValueError(
            "extractor 'pymupdf' needs the optional extra: pip install 'ragstack[pymupdf]'"
        ) from err
    try:
        doc = pymupdf.open(str(path))
    except Exception as err:
        raise DocumentError("corrupt", f"corrupt PDF: {err}") from err
    with doc:
        if doc.needs_pass and not doc.authenticate(""):
            raise DocumentError("encrypted", "encrypted PDF: needs a password")
        caps.check_pages(len(doc))
        pages = []
        for page in doc:
            pages.append(page.get_text())
            caps.add_chars(len(pages[-1]))
        return pages


def discover(paths: list[Path]) -> list[Path]:
    """Files to ingest: every `*.pdf` under given folders, and every file named directly.

    A named file is taken whatever its extension, so that the header check reports it.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found += [
                    Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(".pdf")
                ]
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    unique = {p.resolve(): None for p in found}
    return list(unique)
