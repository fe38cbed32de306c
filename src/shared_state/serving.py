"""How `serve` and `demo` run the app under uvicorn: bounded connections and clients.

uvicorn (0.54, httptools) times out only an idle keep-alive connection after a response:
a connection that never sends a byte, headers that never end and a body that stops all
hold a file descriptor forever, and once descriptors run out uvloop closes the listening
socket without a word. `GuardedHttpProtocol` gives every request a deadline from the
moment its connection opens (or its first byte arrives, on a kept-alive connection) to
its last body byte, and answers 503 at once, without reading, past a connection cap
that sits below the process's descriptor limit.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import resource
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared_state.config import Settings

log = logging.getLogger(__name__)

FD_RESERVE = 64
"""Descriptors kept free for everything that is not a client connection: upstream
connections, the snapshot file, logs."""

KEEP_ALIVE_S = 5.0


def _answer(status: str, code: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail, "code": code}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    )
    if status.startswith("503"):
        head += "retry-after: 1\r\n"
    return head.encode() + b"\r\n" + body


_TOO_MANY = _answer(
    "503 Service Unavailable",
    "too_many_connections",
    "The service has too many open connections; try again shortly.",
)
_TOO_SLOW = _answer(
    "408 Request Timeout",
    "request_timeout",
    "The request did not arrive in full in time; the connection is closed.",
)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a whole-request deadline and a connection cap.

    `guarded_protocol()` makes a subclass with the two limits set; uvicorn instantiates it
    once per connection.
    """

    client_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 1000
    _warned_full: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._is_started = False  # a request's first bytes arrived
        self._in_app = False  # its headers are in: the app runs (and owns the answer)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._warn_full()
            transport.write(_TOO_MANY)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._is_started = True
        self._in_app = False
        if self._deadline is None:  # a kept-alive connection's next request
            self._arm()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._in_app = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._is_started = False
        self._disarm()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.client_timeout_s, self._on_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        """The request is not in yet: close, after a 408 when part of the headers came.
        A request whose headers are in has an app waiting on its body; closing makes
        that app's `receive()` say disconnected."""
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._is_started and not self._in_app:
            self.transport.write(_TOO_SLOW)
        self.transport.close()

    @classmethod
    def _warn_full(cls) -> None:
        if not cls._warned_full:
            cls._warned_full = True
            log.warning(
                "%d client connections are open, the most this process takes "
                "(SHARED_STATE_MAX_CONNECTIONS or its file descriptor limit); "
                "answering 503 to new ones until some close (logged once)",
                cls.max_connections,
            )


def guarded_protocol(client_timeout_s: float, max_connections: int) -> type[HttpToolsProtocol]:
    """A `GuardedHttpProtocol` subclass with these limits, for uvicorn's `http=`."""
    return type(
        "ServiceHttpProtocol",
        (GuardedHttpProtocol,),
        {"client_timeout_s": client_timeout_s, "max_connections": max_connections},
    )


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def connection_cap(max_connections: int, open_file_limit: int) -> int:
    """`max_connections`, lowered so that client connections leave `FD_RESERVE`
    descriptors (or half of a small limit) for everything else."""
    reserve = min(FD_RESERVE, open_file_limit // 2)
    return max(1, min(max_connections, open_file_limit - reserve))


def warn_on_accept_failure(loop: asyncio.AbstractEventLoop) -> None:
    """Log once, as a warning, when the asyncio loop cannot accept for lack of descriptors
    (it retries by itself); every other loop error goes to the default handler."""
    warned = False

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal warned
        if "out of system resource" in str(context.get("message", "")):
            if not warned:
                warned = True
                log.warning(
                    "cannot accept connections: out of file descriptors (%s); "
                    "retrying (logged once)",
                    context.get("exception"),
                )
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def freeze_start_up_objects() -> None:
    """Move everything built so far (modules, pydantic schemas, the app: some 75,000
    objects) out of the garbage collector's sight. A full collection otherwise walks them
    all, holding the event loop (and every GET) for 10-20 ms; what the service builds
    later is still collected."""
    gc.collect()
    gc.freeze()


def service_config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for the service: one worker, our protocol, no access log
    unless asked for, in-flight requests given half the shutdown budget."""
    open_file_limit = raise_open_file_limit()
    cap = connection_cap(settings.max_connections, open_file_limit)
    log.debug("taking at most %d connections (open-file limit %d)", cap, open_file_limit)
    return uvicorn.Config(
        app,
        http=guarded_protocol(settings.client_timeout_s, cap),
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=settings.access_log,
        proxy_headers=False,
        timeout_keep_alive=int(KEEP_ALIVE_S),
        timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout_s / 2)),
    )
