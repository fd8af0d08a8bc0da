"""Liveness and Prometheus metrics. /health needs no API key and loads nothing: it answers while
the models load and while requests are being worked on in the thread pool."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from serve.state import State, require_api_key

router = APIRouter()


@router.get("/health")
async def health(state: State) -> dict:
    # async, on the event loop itself: an answer shows that the loop is free (reading CURRENT,
    # a few bytes, is the only I/O)
    return {"status": "ok", "generation": state.store.current_name()}


@router.get("/metrics", dependencies=[Depends(require_api_key)], response_class=PlainTextResponse)
def metrics(state: State) -> PlainTextResponse:
    return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")
