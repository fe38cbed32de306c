"""`SharedStateClientError`: every way a call of the Python client can fail, as one error.

An error answer of the service keeps its own `status`, `code`, `detail` and `results`;
what is not an answer the service gives (no connection, a timeout, an HTML page from a
proxy, JSON of the wrong shape, an answer too large) gets a `code` of its own:

- `network_error`: no connection, or it broke or timed out (`status` is None);
- `bad_response`: an answer that is not the service's JSON (`status` is the HTTP status);
- `answer_too_large`: an answer or an event larger than the client accepts;
- `invalid_request`: FastAPI's 422 for an invalid body, its list kept as `errors`.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import httpx


class SharedStateClientError(Exception):
    """A call that did not give the answer asked for. `str()` is the detail sentence.

    Never carries the token: the detail comes from the service or names the URL without
    its credentials.
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        detail: str,
        results: dict[str, str] | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.results = results
        self.errors = errors

    def __repr__(self) -> str:
        return (
            f"SharedStateClientError(status={self.status!r}, code={self.code!r}, "
            f"detail={self.detail!r}, results={self.results!r})"
        )


def shown_url(url: httpx.URL | str) -> str:
    """`url` as it may appear in an error or a log line: without user info."""
    try:
        url = httpx.URL(url)
    except httpx.InvalidURL:
        return "(an invalid URL)"
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    return str(url)


def error_from_answer(
    status: int, content_type: str, body: bytes, what: str
) -> SharedStateClientError:
    """The error for an answer with an error status (or an unexpected one) to `what`
    (`GET /api/shared-state/settings`)."""
    document = _json_or_none(content_type, body)
    if isinstance(document, dict):
        detail = document.get("detail")
        code = document.get("code")
        if isinstance(detail, str) and detail:
            results = document.get("results")
            return SharedStateClientError(
                status,
                code if isinstance(code, str) and code else _phrase_code(status),
                detail,
                _results(results),
            )
        if isinstance(detail, list):
            errors = [error for error in detail if isinstance(error, dict)]
            return SharedStateClientError(
                status, "invalid_request", _validation_sentence(errors), errors=errors
            )
    return SharedStateClientError(
        status,
        "bad_response",
        f"The service answered {what} with {status} {_phrase(status)} and "
        f"{_described(content_type, document)}, not a JSON error.",
    )


def network_error(exc: httpx.TransportError, what: str, url: str) -> SharedStateClientError:
    """The error for a request that got no answer: which URL, and what went wrong."""
    if isinstance(exc, httpx.TimeoutException):
        reason = "no answer in time"
    elif isinstance(exc, httpx.ConnectError):
        reason = "connection refused or unreachable"
    else:
        reason = "the connection broke"
    return SharedStateClientError(
        None, "network_error", f"Could not reach the service at {url} for {what}: {reason}."
    )


def bad_response(status: int, what: str, why: str) -> SharedStateClientError:
    return SharedStateClientError(status, "bad_response", f"The service's answer to {what} {why}.")


def too_large(status: int | None, what: str, limit_bytes: int) -> SharedStateClientError:
    return SharedStateClientError(
        status,
        "answer_too_large",
        f"The service's answer to {what} is larger than {limit_bytes:,} bytes (max_answer_bytes).",
    )


def _json_or_none(content_type: str, body: bytes) -> Any:
    if "json" not in content_type:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _described(content_type: str, document: Any) -> str:
    if document is not None:
        return "JSON of another shape"
    kind = content_type.partition(";")[0].strip() or "no content type"
    return "an HTML page" if kind == "text/html" else f"a body of {kind}"


def _results(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(name): str(result) for name, result in value.items()}


def _validation_sentence(errors: list[dict[str, Any]]) -> str:
    """FastAPI's 422 list as one sentence: `Invalid request: body.temperature: …`."""
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        parts.append(f"{location}: {message}" if location else message)
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"Invalid request: {'; '.join(parts) or 'refused'}{more}."


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(unknown status)"


def _phrase_code(status: int) -> str:
    return _phrase(status).lower().replace(" ", "_").replace("-", "_")
