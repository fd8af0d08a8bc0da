"""The HTTP service: OpenAI-compatible chat, embeddings and models, plus search, documents (and
their pages, for a viewer), re-indexing jobs, sessions and eval runs. Handlers translate HTTP into
calls of `rag` and back.

    serve/service.py           Service: the collections, keys, shared models and metrics
    serve/state.py             AppState: one collection's index, uploads, jobs and chat
    serve/auth.py              API keys and what each may do; checked before the body is read
    serve/limits.py            request bodies bounded while they are read
    serve/routes_openai.py     /v1/chat/completions, /v1/models, /v1/embeddings
    serve/routes_documents.py  /v1/search, /v1/documents, /v1/reindex, /v1/jobs
    serve/routes_sessions.py   /v1/sessions
    serve/routes_viewer.py     /v1/documents/{id}/file, .../pages/{n}.png, .../pages/{n}/highlights
    serve/pages.py             a document's PDF: one page rendered, a passage's rectangles (pdfium)
    serve/highlight.py         where a chunk's text lies in a page's text
    serve/routes_collections.py  /v1/collections: those the key may read, with document counts
    serve/routes_runs.py       /v1/runs: eval run directories, a report, its files, a comparison
    serve/runs.py              run directories read (never written) and their Markdown as HTML
    serve/routes_health.py     /health, /metrics
    serve/ui.py                the web page at / (static files in serve/static/)
    serve/responses.py         OpenAI response objects from rag's answers
    serve/errors.py            errors in OpenAI's shape

Citations: a chat completion's message text cites sources as [n] and ends with a "Sources:"
list naming document and page; the same data comes structured in the response's extra
`citations` field (and, when streaming, on the last chunk before [DONE]).

Collections: the document (viewer included), search, re-index, job and session routes answer for
the default collection under /v1/... and for collection NAME under /v1/collections/NAME/...; a
chat request picks its collection with `model`. Eval runs belong to no collection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rag.embedding import Embedder
from rag.generation import Generator
from rag.settings import Settings
from serve import (
    routes_collections,
    routes_documents,
    routes_health,
    routes_openai,
    routes_runs,
    routes_sessions,
    routes_viewer,
)
from serve.auth import AuthMiddleware
from serve.errors import add_error_handlers
from serve.limits import BodyLimitMiddleware
from serve.metrics import measure_requests
from serve.service import Service
from serve.ui import add_ui

COLLECTION = "/v1/collections/{collection}"


def create_app(
    settings: Settings, generator: Generator | None = None, embedder: Embedder | None = None
) -> FastAPI:
    """The app for the default index and its collections; the generator and embedder default to
    those the settings name.

    The models load on first use, so that /health answers at once and an empty index can take
    its first upload.
    """
    service = Service(settings, generator, embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.shutdown()

    docs = settings.api_docs
    app = FastAPI(
        title="ragstack", version="0.1.0", lifespan=lifespan,
        docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.rag = service
    for module in (routes_openai, routes_collections, routes_runs):
        app.include_router(module.router, prefix="/v1")
    for module in (routes_documents, routes_viewer, routes_sessions):
        app.include_router(module.router, prefix="/v1")
        app.include_router(module.router, prefix=COLLECTION)
    app.include_router(routes_health.router)
    if settings.ui:
        add_ui(app)
    add_error_handlers(app)
    app.middleware("http")(measure_requests)
    # added last, so outermost: the key is checked first, then the body is bounded while read
    app.add_middleware(
        BodyLimitMiddleware, body_bytes=settings.max_body_kb * 1024, upload_bytes=settings.max_upload_mb << 20
    )
    app.add_middleware(AuthMiddleware, keys=service.keys)
    return app
