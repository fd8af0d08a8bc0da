"""An indexed document's PDF for the viewer: the file, one page rendered to PNG, and the rectangles
that cover a passage (a cited chunk) on a page.

The file is the one the index records (`DocumentRecord.path`): no path a client sends reaches the
filesystem. A file that is gone, or whose size is no longer the recorded one, answers 410: it
changed since it was indexed, so its pages and the chunks' places on them would not match.

pdfium is not thread-safe, and FastAPI runs plain handlers in its thread pool: every use of it in
the server process holds `PDFIUM`. A request opens the document, reads one page and closes both;
a rendering is bounded in pixels. The file was parsed once already, by the sandboxed worker of
rag.parsing_sandbox, when it was indexed; rendering is done here, in the server's process.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from fastapi import HTTPException

from indexes import DocumentRecord
from serve.highlight import locate

PDFIUM = threading.Lock()
MAX_PIXELS = 2000 * 4000  # a page far taller than wide is drawn narrower than asked, not larger
DEVICE = 10_000  # PDF points are mapped onto a DEVICE x DEVICE square: fractions to 1e-4


def find(documents: list[DocumentRecord], name: str) -> DocumentRecord:
    """The indexed document called `name`; 404 when there is none."""
    for record in documents:
        if record.name == name:
            return record
    raise HTTPException(404, f"no document {name[:200]!r}")


def indexed_file(record: DocumentRecord) -> Path:
    """The document's file, if it is still the one indexed (410 otherwise)."""
    path = Path(record.path)
    try:
        size = path.stat().st_size
    except OSError:
        raise _gone(record, "is no longer on the server") from None
    if size != record.size:
        raise _gone(record, "has changed since it was indexed")
    return path


def render_png(record: DocumentRecord, number: int, width: int) -> tuple[bytes, int]:
    """Page `number` (1-based) as a PNG `width` pixels wide, and the document's page count."""
    with _document(record) as pdf, _page(pdf, number) as page:
        page_width, page_height = _size(page)
        width = max(1, min(width, int(math.sqrt(MAX_PIXELS * page_width / page_height))))
        height = max(1, round(page_height * width / page_width))
        bitmap = pdfium.PdfBitmap.new_native(width, height, pdfium_c.FPDFBitmap_BGR)
        try:
            bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
            # drawn onto a bitmap of exactly this size: PdfPage.render rounds the scaled size up
            pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, pdfium_c.FPDF_ANNOT)
            image, pages = bitmap.to_pil(), len(pdf)
        finally:
            bitmap.close()  # a native bitmap's buffer is Python's: the image outlives it
    png = io.BytesIO()
    image.save(png, format="PNG")  # outside the lock: no pdfium here
    return png.getvalue(), pages


def highlights(record: DocumentRecord, number: int, text: str) -> dict:
    """Where `text` lies on page `number`: rectangles as fractions of the page's width and
    height from its top-left corner, the page's size in points, whether it was found, and the
    page's own text of the part found."""
    with _document(record) as pdf, _page(pdf, number) as page:
        width, height = _size(page)
        textpage = page.get_textpage()
        try:
            # one code point per pdfium character index, so that an index found maps back to it
            chars = "".join(
                chr(pdfium_c.FPDFText_GetUnicode(textpage, i)) for i in range(textpage.count_chars())
            )
            span = locate(chars, text)
            rects = _rects(page, textpage, *span) if span else []
            # what was found, so that a client can tell which page of a passage says what it needs
            found_text = chars[span[0] : span[1] + 1] if rects else ""
        finally:
            textpage.close()
        pages = len(pdf)
    return {
        "page": number,
        "pages": pages,
        "width": round(width, 2),
        "height": round(height, 2),
        "found": bool(rects),
        "rects": rects,
        "text": found_text,
    }


def _rects(page: pdfium.PdfPage, textpage: pdfium.PdfTextPage, first: int, last: int) -> list[dict]:
    """pdfium's text rectangles of characters first..last, mapped as the page is rendered (its
    crop box and rotation applied) to fractions of the page from the top-left corner."""
    rects = []
    for i in range(textpage.count_rects(first, last - first + 1)):
        left, bottom, right, top = textpage.get_rect(i)
        x0, y0 = _to_device(page, left, top)
        x1, y1 = _to_device(page, right, bottom)
        x, y, w, h = min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)
        if w > 0 and h > 0:
            rects.append({"x": round(x, 4), "y": round(y, 4), "w": round(w, 4), "h": round(h, 4)})
    return rects


def _to_device(page: pdfium.PdfPage, x: float, y: float) -> tuple[float, float]:
    dx, dy = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(page, 0, 0, DEVICE, DEVICE, 0, x, y, dx, dy)
    return min(max(dx.value / DEVICE, 0.0), 1.0), min(max(dy.value / DEVICE, 0.0), 1.0)


@contextmanager
def _document(record: DocumentRecord) -> Iterator[pdfium.PdfDocument]:
    """The document, open under the lock, read from a handle whose size was checked: the file
    cannot change between the check and the read."""
    with PDFIUM:
        try:
            file = open(record.path, "rb")  # closed below, after the document
        except OSError:
            raise _gone(record, "is no longer on the server") from None
        with file:
            if os.fstat(file.fileno()).st_size != record.size:
                raise _gone(record, "has changed since it was indexed")
            try:
                pdf = pdfium.PdfDocument(file)
            except pdfium.PdfiumError as err:
                raise HTTPException(422, f"{record.name} cannot be opened for viewing: {err}") from None
            try:
                yield pdf
            finally:
                pdf.close()


@contextmanager
def _page(pdf: pdfium.PdfDocument, number: int) -> Iterator[pdfium.PdfPage]:
    if not 1 <= number <= len(pdf):
        raise HTTPException(404, f"no page {number}: the document has pages 1 to {len(pdf)}")
    page = pdf[number - 1]
    try:
        yield page
    finally:
        page.close()


def _size(page: pdfium.PdfPage) -> tuple[float, float]:
    """The page's width and height in points, as it is shown (rotation applied)."""
    width, height = page.get_size()
    if not (width > 0 and height > 0):
        raise HTTPException(422, f"the page has no area ({width} x {height} points)")
    return width, height


def _gone(record: DocumentRecord, what: str) -> HTTPException:
    return HTTPException(410, f"the file of {record.name} {what}: re-index it to view it")
