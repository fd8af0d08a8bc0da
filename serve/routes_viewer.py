"""An indexed document as the viewer shows it: the PDF itself, one page as a PNG, and where a
cited chunk lies on a page (serve.pages does the work; pdfium, under its lock).

The document is found by name among the collection's records and its file is the one they name,
under the same key and collection checks as every document route. Plain `def`s: reading and
rendering block, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from serve import pages
from serve.schemas import HighlightRequest
from serve.state import State

router = APIRouter(prefix="/documents/{doc_id}")


@router.get("/file", response_class=FileResponse)
def document_file(doc_id: str, state: State) -> FileResponse:
    """The indexed PDF, byte for byte; 410 when the file is gone or changed since indexing."""
    record = pages.find(state.documents(), doc_id)
    path = pages.indexed_file(record)
    return FileResponse(
        path, media_type="application/pdf", filename=record.name, content_disposition_type="inline"
    )


@router.get("/pages/{page}.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def page_image(
    doc_id: str, page: int, state: State, width: Annotated[int, Query(ge=100, le=2000)] = 900
) -> Response:
    """Page `page` (1-based) rendered `width` pixels wide; the page count in `X-Page-Count`."""
    png, count = pages.render_png(pages.find(state.documents(), doc_id), page, width)
    return Response(png, media_type="image/png", headers={"X-Page-Count": str(count)})


@router.post("/pages/{page}/highlights")
def page_highlights(doc_id: str, page: int, body: HighlightRequest, state: State) -> dict:
    """Rectangles (fractions of the page, origin top-left) covering `text` on the page, where
    it lies there: a chunk that begins on the page before or runs on is marked to the page's edge."""
    return pages.highlights(pages.find(state.documents(), doc_id), page, body.text)
