"""Liveness and Prometheus metrics. /health needs no API key and loads nothing: it answers while
the models load and while requests are being worked on in the thread pool."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict:
    # async, on the event loop itself: an answer shows that the loop is free (reading CURRENT,
    # a few bytes, is the only I/O)
    service = request.app.state.rag
    return {"status": "ok", "generation": service.default().store.current_name()}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    text = request.app.state.rag.metrics.render()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
