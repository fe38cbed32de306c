"""Maps the error tree to HTTP once: `{"detail": "<sentence>", "code": "<machine_code>"}`.

FastAPI's own 422 body for invalid input is kept as it is (contract §5).
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
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


def add_exception_handlers(app: FastAPI) -> None:
    """Register the handlers that turn the error tree (and HTTP errors) into JSON."""
    app.add_exception_handler(SharedStateError, _shared_state_error)
    app.add_exception_handler(HTTPException, _http_error)
