"""The HTTP service: OpenAI-compatible chat, embeddings and models, plus search, documents,
re-indexing jobs and sessions. Handlers translate HTTP into calls of `rag` and back.

    serve/state.py             AppState: settings, models (loaded on first use), jobs, metrics
    serve/routes_openai.py     /v1/chat/completions, /v1/models, /v1/embeddings
    serve/routes_documents.py  /v1/search, /v1/documents, /v1/reindex, /v1/jobs
    serve/routes_sessions.py   /v1/sessions
    serve/routes_health.py     /health, /metrics
    serve/responses.py         OpenAI response objects from rag's answers
    serve/errors.py            errors in OpenAI's shape

Citations: a chat completion's message text cites sources as [n] and ends with a "Sources:"
list naming document and page; the same data comes structured in the response's extra
`citations` field (and, when streaming, on the last chunk before [DONE]).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rag.embedding import Embedder
from rag.generation import Generator
from rag.settings import Settings
from serve import routes_documents, routes_health, routes_openai, routes_sessions
from serve.errors import add_error_handlers
from serve.metrics import measure_requests
from serve.state import AppState


def create_app(
    settings: Settings, generator: Generator | None = None, embedder: Embedder | None = None
) -> FastAPI:
    """The app for one index; the generator and embedder default to those the settings name.

    The models load on first use, so that /health answers at once and an empty index can take
    its first upload.
    """
    state = AppState(settings, generator, embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.jobs.shutdown()  # queued jobs are dropped, a running one is waited for

    app = FastAPI(title="ragstack", version="0.1.0", lifespan=lifespan)
    app.state.rag = state
    for module in (routes_openai, routes_documents, routes_sessions, routes_health):
        app.include_router(module.router)
    add_error_handlers(app)
    app.middleware("http")(measure_requests)
    return app
