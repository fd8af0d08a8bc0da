"""Errors as OpenAI sends them, `{"error": {"message", "type", "code"}}`, so that the openai
client raises its own exception classes (AuthenticationError, BadRequestError, ...) with our
message."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from indexes import IndexLocked, StoreError


def error_response(status: int, message: str) -> JSONResponse:
    if status == 401:
        kind = "authentication_error"
    elif status < 500:
        kind = "invalid_request_error"
    else:
        kind = "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


async def _invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
    details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
    return error_response(422, f"invalid request: {details}")


async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
    return error_response(err.status_code, str(err.detail))


async def _locked(request: Request, err: IndexLocked) -> JSONResponse:
    return error_response(409, err.public)  # str(err) names the index's path and the holder's pid


async def _no_index(request: Request, err: StoreError) -> JSONResponse:
    return error_response(409, f"{err}; upload documents first (POST /v1/documents)")


async def _bad_value(request: Request, err: ValueError) -> JSONResponse:
    return error_response(400, str(err))


def add_error_handlers(app: FastAPI) -> None:
    """Validation errors are 422, a locked index or a missing one 409, a bad value 400."""
    app.add_exception_handler(RequestValidationError, _invalid_body)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(IndexLocked, _locked)  # a subclass of StoreError: its own message
    app.add_exception_handler(StoreError, _no_index)
    app.add_exception_handler(ValueError, _bad_value)
