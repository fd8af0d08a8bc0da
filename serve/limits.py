"""Request bodies bounded while they are read, before anything stores or parses them.

Starlette's body limiter does the counting (FastAPI turns its error into a 413 wherever the body
is read); this chooses the bound per request: uploads get `max_upload_mb` (plus room for the
multipart framing), every other request `max_body_kb`. A declared Content-Length over the bound
is refused at the first read, before one byte of the body arrives; a chunked body is cut off
at the bound.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitResponder
from starlette.types import ASGIApp, Receive, Scope, Send

from serve.errors import error_response, too_large_message

MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around an upload's bytes


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, body_bytes: int, upload_bytes: int):
        self.app, self.body_bytes, self.upload_bytes = app, body_bytes, upload_bytes + MULTIPART_SLACK

    def limit(self, scope: Scope) -> int:
        uploading = scope["method"] == "POST" and scope["path"].endswith("/documents")
        return self.upload_bytes if uploading else self.body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            # answered here, in the API's error shape, before the app or the limiter reads a byte
            scope[MAX_BODY_SIZE_SCOPE_KEY] = limit
            await error_response(413, too_large_message(scope))(scope, receive, send)
            return
        await RequestBodyLimitResponder(self.app, limit)(scope, receive, send)
