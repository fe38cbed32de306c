"""Maps the error tree to HTTP once: `{"detail": "<sentence>", "code": "<machine_code>"}`.

FastAPI's own 422 body for invalid input is kept (contract §5).
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from shared_state.errors import NotFound, SharedStateError, Unauthorized, UpstreamWriteFailed

_STATUS: dict[type[SharedStateError], int] = {
    NotFound: 404,
    Unauthorized: 401,
    UpstreamWriteFailed: 502,
}


async def _shared_state_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SharedStateError)
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
    body: dict[str, object] = {"detail": str(exc), "code": exc.code}
    if isinstance(exc, UpstreamWriteFailed):
        body["results"] = exc.results
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    sentence = (
        detail or f"{HTTPStatus(exc.status_code).phrase}: {request.method} {request.url.path}."
    )
    return JSONResponse(
        {"detail": sentence, "code": code}, status_code=exc.status_code, headers=exc.headers
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 body, except that it survives a non-finite number in the input:
    `json.loads` reads `1e400` as infinity, which the stock handler cannot send back."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def add_exception_handlers(app: FastAPI) -> None:
    """Register the handlers that turn the error tree (and HTTP errors) into JSON."""
    app.add_exception_handler(SharedStateError, _shared_state_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
