"""A small OpenAI-compatible chat server for tests of the plumbing between ragstack and its
generation servers (replicas, failover): it streams a fixed reply naming itself, slowly enough
that requests overlap. Two of these stand in for two vLLM replicas, which do not fit this
machine's 2 cores beside the test run; the vLLM engine itself is tested in test_serve_vllm."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse


def stub_app(name: str, token_delay_s: float = 0.05, words: int = 6) -> FastAPI:
    app = FastAPI()
    app.state.requests = 0

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": "stub", "object": "model", "owned_by": name}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        app.state.requests += 1
        reply = [f"{name}", *(f" word{i}" for i in range(words - 1))]

        async def events():
            for piece in reply:
                await asyncio.sleep(token_delay_s)
                chunk = {
                    "id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": body.get("model", "stub"),
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
