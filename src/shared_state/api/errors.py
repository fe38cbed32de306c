"""Maps the error tree to HTTP once: `{"detail": "<sentence>", "code": "<machine_code>"}`.

FastAPI's own 422 body for invalid input is kept (contract §5), without echoing large
input back.
"""

from __future__ import annotations

import math
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from shared_state.errors import (
    HolderUnavailable,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    NotFound,
    SharedStateError,
    StoreUnavailable,
    Unauthorized,
    UnknownSection,
    UpstreamWriteFailed,
    VersionMismatch,
)

_NOT_UTF8 = {
    "type": "json_invalid",
    "loc": ["body"],
    "msg": "JSON decode error",
    "ctx": {"error": "the body is not valid UTF-8"},
}

_STATUS: dict[type[SharedStateError], int] = {
    NotFound: 404,
    Unauthorized: 401,
    UnknownSection: 422,
    UpstreamWriteFailed: 502,
    VersionMismatch: 412,
    InvalidIdempotencyKey: 422,
    IdempotencyKeyReused: 422,
    StoreUnavailable: 503,
    HolderUnavailable: 503,
}


async def _shared_state_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SharedStateError)
    return error_response(exc)


def error_response(exc: SharedStateError) -> JSONResponse:
    """The answer for `exc`: its status and `{"detail", "code"}` body (with `results`
    for a failed write)."""
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
    body: dict[str, object] = {"detail": str(exc), "code": exc.code}
    if isinstance(exc, UpstreamWriteFailed):
        body["results"] = exc.results
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers 400 for a JSON body that is not UTF-8; it is just a body that
        # is not JSON (contract §6), so it gets the same 422 as any other.
        return JSONResponse({"detail": [_NOT_UTF8]}, status_code=422)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    sentence = (
        detail or f"{HTTPStatus(exc.status_code).phrase}: {request.method} {request.url.path}."
    )
    return JSONResponse(
        {"detail": sentence, "code": code}, status_code=exc.status_code, headers=exc.headers
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 body (a list under `detail`), made safe to send back.

    The stock handler echoes each error's `input` in full (a 10 MB body came back
    whole), fails on a non-finite number (`1e400` reads as infinity) and on a lone
    surrogate (`"\\ud800"` cannot be encoded as UTF-8: a plain-text 500). Here a long
    string is cut, an object or array is left out, at most `MAX_ERRORS_SHOWN` errors are
    listed, and every string is made encodable.
    """
    assert isinstance(exc, RequestValidationError)
    errors = [_shown_error(error) for error in exc.errors()[:MAX_ERRORS_SHOWN]]
    return JSONResponse({"detail": _sendable(jsonable_encoder(errors))}, status_code=422)


MAX_ECHO_CHARS = 100
"""Longest string of the client's input that a 422 repeats; longer ones are cut."""
MAX_ERRORS_SHOWN = 20
"""A body with thousands of unknown fields gets the first errors, not thousands."""


def _shown_error(error: Any) -> Any:
    if not isinstance(error, dict):
        return error
    shown = {key: value for key, value in error.items() if key not in {"input", "loc", "url"}}
    shown["loc"] = [_cut(part) for part in error.get("loc", ())]
    if "input" in error:
        value = error["input"]
        if isinstance(value, str):
            shown["input"] = _cut(value)
        elif value is None or isinstance(value, bool | int | float):
            shown["input"] = value
        # objects, arrays, bytes: left out, however small (their size is the client's)
    return {key: shown[key] for key in ("type", "loc", "msg", "input", "ctx") if key in shown}


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_ECHO_CHARS:
        return value[:MAX_ECHO_CHARS] + "…"
    return value


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _sendable(value: Any) -> Any:
    """`value` with non-finite numbers as strings and lone surrogates as U+FFFD."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_sendable(key): _sendable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_sendable(item) for item in value]
    return value


def add_exception_handlers(app: FastAPI) -> None:
    """Register the handlers that turn the error tree (and HTTP errors) into JSON."""
    app.add_exception_handler(SharedStateError, _shared_state_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
