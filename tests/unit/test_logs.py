"""The command's log handler redacts secrets from every record it writes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from shared_state.logs import (
    REDACTED,
    REQUEST_ID,
    SecretRedactingFilter,
    configure_logging,
    redact_text,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IjY2NWYifQ.c2lnbmF0dXJl"

LEAKY_LINES = {
    "httpcore-set-cookie": (
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
        "[(b'content-type', b'application/json'), "
        "(b'set-cookie', b'refreshToken=rt-s3cret; Path=/api/auth/refresh; HttpOnly')])",
        "rt-s3cret",
    ),
    "httpcore-double-quoted": (
        "[(b'Set-Cookie', b\"refreshToken=rt-s3cret; it's\")]",
        "rt-s3cret",
    ),
    "str-tuple": ("[('authorization', 'Bearer tok-s3cret')]", "tok-s3cret"),
    "header-line": ("Authorization: Basic YWRtaW46czNjcmV0", "YWRtaW46czNjcmV0"),
    "dict": ("headers={'cookie': 'refreshToken=rt-s3cret', 'accept': '*/*'}", "rt-s3cret"),
    "url-userinfo": (
        'HTTP Request: GET http://admin:pw-s3cret@127.0.0.1:3001/api/v1/system "200 OK"',
        "pw-s3cret",
    ),
    "redis-url": ("connecting to redis://:pw-s3cret@cache:6379/0", "pw-s3cret"),
    "bearer": ("sent bearer tok-s3cret-123 to upstream", "tok-s3cret-123"),
    "jwt": (f"token {JWT} expired", JWT),
    "query": ("GET /api/shared-state/events?access_token=tok-s3cret&x=1", "tok-s3cret"),
    "cookie-pair": ("sending refreshToken=rt-s3cret;", "rt-s3cret"),
}


@pytest.mark.parametrize(("line", "secret"), LEAKY_LINES.values(), ids=LEAKY_LINES.keys())
def test_redact_text_removes_the_secret(line: str, secret: str) -> None:
    """Header values, URL credentials, bearer tokens, JWTs and token parameters go."""
    redacted = redact_text(line)

    assert secret not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "line",
    [
        "sync finished in 12 ms: 2 upstreams, changed ['conversations']",
        "GET http://127.0.0.1:3001/api/v1/workspaces",
        "[(b'content-type', b'application/json'), (b'content-length', b'42')]",
        "maxTokens=4096 temperature=0.7",
    ],
)
def test_redact_text_keeps_ordinary_lines(line: str) -> None:
    """Lines without secrets are written unchanged."""
    assert redact_text(line) == line


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, msg, args, exc_info)


def test_filter_redacts_arguments_as_well_as_the_message() -> None:
    """httpx passes the URL as an argument: it is rendered, then redacted."""
    entry = record("HTTP Request: %s %s", "GET", "http://ada:pw-s3cret@llm:3080/api/user")

    assert SecretRedactingFilter().filter(entry) is True
    assert entry.getMessage() == f"HTTP Request: GET http://{REDACTED}@llm:3080/api/user"


def test_filter_redacts_a_traceback() -> None:
    """An exception's message, rendered as a traceback, is redacted too."""
    try:
        raise ConnectionError("cannot reach http://ada:pw-s3cret@llm:3080")
    except ConnectionError as exc:
        entry = record("sync failed", exc=exc)
    handler_output = io.StringIO()
    handler = logging.StreamHandler(handler_output)
    handler.addFilter(SecretRedactingFilter())

    handler.handle(entry)

    assert "ConnectionError" in handler_output.getvalue()
    assert "pw-s3cret" not in handler_output.getvalue()


def test_filter_survives_arguments_that_do_not_fit() -> None:
    """A record whose arguments do not match its format is still written, redacted."""
    entry = record("two %s %s", "Bearer tok-s3cret-123")

    assert SecretRedactingFilter().filter(entry) is True
    assert "tok-s3cret-123" not in entry.getMessage()


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Leave the root logger and the libraries' levels as the test found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "apscheduler")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging_writes_redacted_lines_from_any_logger() -> None:
    """Every logger that propagates to the root goes through the filter, at DEBUG with -v."""
    stream = io.StringIO()
    configure_logging(verbose=True, stream=stream)

    logging.getLogger("httpcore.http11").debug(
        "receive_response_headers.complete return_value=[(b'set-cookie', b'refreshToken=rt-1')]"
    )
    logging.getLogger("shared_state.test").info("done")

    output = stream.getvalue()
    assert "rt-1" not in output
    assert "httpcore.http11" in output
    assert "shared_state.test: done" in output


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging_twice_keeps_one_handler() -> None:
    """Configuring again replaces the command's handler instead of doubling every line."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(verbose=False, stream=first)
    configure_logging(verbose=False, stream=second)

    logging.getLogger("shared_state.test").warning("once")
    logging.getLogger("httpx").info("hidden without -v")

    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert "hidden" not in second.getvalue()


@pytest.mark.usefixtures("restored_logging")
def test_json_format_writes_one_object_per_line_redacted_with_the_request_id() -> None:
    """Each record is one JSON line, also with newlines in its message and a traceback;
    secrets are redacted in every field; `request_id` is the request's, `-` outside one."""
    stream = io.StringIO()
    configure_logging(verbose=False, stream=stream, log_format="json")
    log = logging.getLogger("shared_state.test")

    context = REQUEST_ID.set("req-7")
    try:
        log.warning("two\nlines with Bearer tok-s3cret")
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            log.exception("failed")
    finally:
        REQUEST_ID.reset(context)
    logging.getLogger("uvicorn.error").warning("Started server process [%d]", 42)

    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert [(line["logger"], line["level"], line["request_id"]) for line in lines] == [
        ("shared_state.test", "WARNING", "req-7"),
        ("shared_state.test", "ERROR", "req-7"),
        ("uvicorn.error", "WARNING", "-"),
    ]
    assert lines[0]["message"] == f"two\nlines with Bearer {REDACTED}"
    assert "ValueError" in lines[1]["exception"]
    assert lines[2]["message"] == "Started server process [42]"
    assert "tok-s3cret" not in output
    assert JWT not in output
    assert datetime.fromisoformat(lines[0]["time"]).tzinfo is not None


@pytest.mark.usefixtures("restored_logging")
def test_text_format_shows_the_request_id() -> None:
    """The text line names the request (`-` outside one) before the logger's name."""
    stream = io.StringIO()
    configure_logging(verbose=False, stream=stream)
    log = logging.getLogger("shared_state.test")

    context = REQUEST_ID.set("req-8")
    try:
        log.info("inside")
    finally:
        REQUEST_ID.reset(context)
    log.info("outside")

    inside, outside = stream.getvalue().splitlines()
    assert inside.endswith(" req-8 shared_state.test: inside")
    assert outside.endswith(" - shared_state.test: outside")
