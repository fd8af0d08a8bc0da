"""Errors as OpenAI sends them, `{"error": {"message", "type", "code"}}`, so that the openai
client raises its own exception classes (AuthenticationError, BadRequestError, ...) with our
message."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException  # FastAPI's is a subclass: both are handled
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from indexes import IndexLocked, MilvusUnavailable, StoreError
from serve.jobs import public_text


def error_response(status: int, message: str) -> JSONResponse:
    if status == 401:
        kind = "authentication_error"
    elif status < 500:
        kind = "invalid_request_error"
    else:
        kind = "server_error"
    # whatever raised it, a client never learns the server's paths or process ids
    body = {"error": {"message": public_text(message), "type": kind, "code": status}}
    return JSONResponse(body, status_code=status)


def too_large_message(scope: dict) -> str:
    """What a 413 says: the bound that was passed."""
    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    if limit is None:
        return "request body too large"
    size = f"{limit / 1024 / 1024:.0f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return f"request body larger than the {size} limit"


async def _invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
    details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
    return error_response(422, f"invalid request: {details}")


async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
    if err.status_code == 413 and err.detail == "Content Too Large":  # Starlette's body limiter
        return error_response(413, too_large_message(request.scope))
    return error_response(err.status_code, str(err.detail))


async def _locked(request: Request, err: IndexLocked) -> JSONResponse:
    return error_response(409, err.public)  # str(err) names the index's path and the holder's pid


async def _no_index(request: Request, err: StoreError) -> JSONResponse:
    return error_response(409, f"{err}; upload documents first (POST /v1/documents)")


async def _milvus_down(request: Request, err: MilvusUnavailable) -> JSONResponse:
    return error_response(503, "the index's Milvus server cannot be reached; try again later")


async def _bad_value(request: Request, err: ValueError) -> JSONResponse:
    return error_response(400, str(err))


def add_error_handlers(app: FastAPI) -> None:
    """Validation errors are 422, a locked index or a missing one 409, a bad value 400, an
    unreachable Milvus 503."""
    app.add_exception_handler(RequestValidationError, _invalid_body)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(IndexLocked, _locked)  # a subclass of StoreError: its own message
    app.add_exception_handler(MilvusUnavailable, _milvus_down)  # its URI is the operator's, not said
    app.add_exception_handler(StoreError, _no_index)
    app.add_exception_handler(ValueError, _bad_value)
