"""Logging for the `shared-state` command: one stderr handler that never writes a secret.

With `-v`, httpcore logs every response's headers, LibreChat's rotating `refreshToken`
cookie among them (`set-cookie`), and httpx logs each request's URL, credentials in a
base URL (`http://user:pass@host`) included. The handler's filter redacts those, and
bearer tokens and JWTs wherever they appear, in the message, its arguments and any
traceback, before a record is written. A filter on the handler (not on a logger) sees
the records of every library that propagates to the root logger.

Every record carries `request_id`: the `X-Request-ID` of the request it was logged for
(`REQUEST_ID`, set by the edge; `-` outside a request), so a write's or a requested
sync's line can be found from the id a client saw. `SHARED_STATE_LOG_FORMAT=json`
writes each record as one JSON object per line, uvicorn's own lines included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

LOG_FORMAT: Final = "%(asctime)s %(levelname)-7s %(request_id)s %(name)s: %(message)s"
NO_REQUEST: Final = "-"

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str] = ContextVar("shared_state_request_id", default=NO_REQUEST)
"""The id of the request being answered (the edge sets it for routed requests)."""

UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access")
REDACTED: Final = "[redacted]"

_HEADER_NAMES: Final = r"(?:set-cookie|cookie|authorization|proxy-authorization|x-api-key)"
"""Headers whose values are credentials."""
_QUOTED: Final = r"""b?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""

_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # httpcore's header tuples: (b'set-cookie', b'refreshToken=...; HttpOnly')
    (
        re.compile(rf"""(\(\s*b?['"]{_HEADER_NAMES}['"]\s*,\s*){_QUOTED}""", re.IGNORECASE),
        rf"\1'{REDACTED}'",
    ),
    # `Authorization: Bearer …`, `{'cookie': '…'}`, `set-cookie=…`
    (
        re.compile(
            rf"""(\b{_HEADER_NAMES}['"]?\s*[:=]\s*)(?:{_QUOTED}|[^\r\n,}}]*)""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # userinfo in any URL: scheme://user:pass@host -> scheme://[redacted]@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/?#@'\"]+@", re.IGNORECASE), rf"\1{REDACTED}@"),
    # a bearer token anywhere
    (re.compile(r"(\bbearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{REDACTED}"),
    # a JWT anywhere (LibreChat's access and refresh tokens are JWTs)
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # a token or password in a query string or a cookie pair
    (
        re.compile(
            r"(\b(?:access_token|refresh_?token|token|api_?key|password|secret)=)[^&;\s'\"]+",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
)


def redact_text(text: str) -> str:
    """`text` with header values, URL credentials, bearer tokens and JWTs replaced."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class SecretRedactingFilter(logging.Filter):
    """Rewrites each record so that no secret reaches the handler's output.

    The message is rendered with its arguments first (httpcore passes pre-formatted
    strings, httpx passes the URL as an argument), then redacted; a traceback is
    rendered and redacted too. Never drops a record.
    """

    _formatter: Final = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (from `REQUEST_ID`) to every record. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: `time` (ISO 8601, UTC), `level`,
    `logger`, `message`, `request_id`, and `exception` when there is one. Newlines in a
    message or traceback are escaped by JSON, so a line is always a whole record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_REQUEST),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class _CommandHandler(logging.StreamHandler[TextIO]):
    """The command's handler, told apart so that configuring twice replaces it."""


def configure_logging(
    verbose: bool, stream: TextIO | None = None, *, log_format: LogFormat = "text"
) -> logging.Handler:
    """Send logs to `stream` (stderr) through the redacting filter; `verbose` is `-v`,
    `log_format` is `SHARED_STATE_LOG_FORMAT`.

    Returns the handler (tests remove it again). httpx's per-request INFO lines are shown
    only with `-v`: the sync's own summary line is enough otherwise. uvicorn's loggers
    keep no handlers of their own and propagate here, so they share the format.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CommandHandler)]:
        root.removeHandler(old)
    handler = _CommandHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))
    handler.addFilter(SecretRedactingFilter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler
