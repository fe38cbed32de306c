"""The pure-ASGI edge in front of FastAPI: what every request meets before routing.

In order: the `Host` check (`SHARED_STATE_ALLOWED_HOSTS`), the API token for
`/api/shared-state/*` (so an unauthenticated body is never read; the event stream alone
also takes it as `?access_token=`, for EventSource; the JS client's two files need none),
the GET fast path,
and the body limit (`SHARED_STATE_MAX_BODY_BYTES`) for everything that goes on to the
router. The fast path answers `GET /api/shared-state` and its four sections, without a
query string, straight from the bytes the StateManager renders once per state: the same
status, headers and body as the routed handlers, without a `Request`, a dependency tree
or a route match. Everything else (a query string such as `?refresh=true`, HEAD, items,
writes, other paths) goes on to FastAPI unchanged.

Every answer carries `X-Request-ID`: the request's own when it sent one of 1 to 128
printable characters, otherwise a new one. For routed requests the id is in
`shared_state.logs.REQUEST_ID` while the app runs, so their log lines carry it. With
`metrics`, every request is counted and timed (`shared_state_http_*`): the fast path
with labels made once, routed requests by the route template Starlette matched
(`scope["route"]`), `unmatched` when none did; the event stream is counted, not timed.

`create_app` installs it; an application that mounts `shared_state.api.router` itself
adds it with `app.add_middleware(SharedStateEdge, settings=settings)`.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from time import perf_counter
from typing import Final, NamedTuple
from urllib.parse import parse_qsl

from prometheus_client import Counter, Histogram
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_state.api.body_limit import LimitedBody, declared_length
from shared_state.api.deps import TOKEN_REQUIRED, runtime_of
from shared_state.api.events import EVENTS_PATH
from shared_state.api.hosts import AllowedHosts
from shared_state.api.routes import API_PREFIX
from shared_state.api.static import PUBLIC_API_PATHS
from shared_state.config import Settings
from shared_state.logs import REQUEST_ID
from shared_state.metrics import UNMATCHED, Metrics, method_label
from shared_state.state.manager import RenderTarget, StateManager, etag_matches

FAST_GETS: Final[dict[str, RenderTarget]] = {
    API_PREFIX: "state",
    f"{API_PREFIX}/user": "user",
    f"{API_PREFIX}/settings": "settings",
    f"{API_PREFIX}/workspaces": "workspaces",
    f"{API_PREFIX}/conversations": "conversations",
}
"""The GET paths answered from rendered bytes, and what each renders."""

UNCHECKED_HOST_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes (a kubelet sends the pod's IP as `Host`) and Prometheus (which scrapes the
pod's IP too) answer whatever the `Host`; none of them serves state."""

UNTIMED_ROUTES: Final = frozenset({f"{API_PREFIX}/events"})
"""Routes counted but not timed: an event stream lasts as long as its client stays."""

_JSON: Final = b"application/json"
_REQUEST_ID: Final = b"x-request-id"
_GIVEN_REQUEST_ID: Final = re.compile(rb"[!-~][ -~]{0,127}")
"""A client's own request id: 1 to 128 printable ASCII characters, not starting blank."""


class Answer(NamedTuple):
    """A whole response, built once and sent as it is."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    async def send_to(self, send: Send) -> None:
        # A fresh list each time: middleware outside (CORS) appends to the one it is given.
        headers = list(self.headers)
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def error_answer(
    status: int, detail: str, code: str, headers: dict[str, str] | None = None
) -> Answer:
    """The `{"detail", "code"}` error, byte for byte as the routed exception handlers
    render it (they also use `JSONResponse`)."""
    response = JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)
    return Answer(status, response.raw_headers, bytes(response.body))


UNAUTHORIZED: Final = error_answer(
    401, TOKEN_REQUIRED, "unauthorized", headers={"WWW-Authenticate": "Bearer"}
)
INVALID_HOST: Final = error_answer(
    400, "This service does not answer for that Host header.", "invalid_host"
)


class SharedStateEdge:
    """The ASGI middleware described in the module docstring; `settings` gives the token,
    the allowed hosts and the body limit. The state comes from `app.state.shared_state`
    (set by the lifespan); until it is there, GETs go on to the router. `metrics` (the
    app's own registry) is where HTTP requests are counted; without it, nowhere."""

    def __init__(self, app: ASGIApp, *, settings: Settings, metrics: Metrics | None = None) -> None:
        self.app = app
        self._metrics = metrics
        # The fast path's label children, made once: a GET there costs one inc, one observe.
        self._fast: dict[str, tuple[Histogram, dict[int, Counter]]] = {}
        if metrics is not None:
            self._fast = {
                path: (
                    metrics.http_duration.labels(path, "GET"),
                    {200: metrics.http_requests.labels(path, "GET", "200")},
                )
                for path in FAST_GETS
            }
        # New request ids: a random prefix per app and a counter, cheaper than urandom each time.
        self._id_prefix = os.urandom(4).hex().encode()
        self._ids = itertools.count(1)
        token = settings.api_token
        self._token = token.get_secret_value().encode() if token is not None else None
        self._hosts = AllowedHosts(settings.allowed_hosts)
        self._max_body_bytes = settings.max_body_bytes
        self._too_large = error_answer(
            413,
            f"The request body is larger than {settings.max_body_bytes} bytes "
            "(SHARED_STATE_MAX_BODY_BYTES).",
            "body_too_large",
            headers={"Connection": "close"},  # the rest of the body is not worth reading
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = authorization = content_length = given_id = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = host or value
            elif name == b"authorization":
                authorization = authorization or value
            elif name == b"content-length":
                content_length = content_length or value
            elif name == _REQUEST_ID:
                given_id = given_id or value
            elif name == b"if-none-match":
                if_none_match = if_none_match or value
        path: str = scope["path"]
        if given_id is not None and _GIVEN_REQUEST_ID.fullmatch(given_id):
            request_id = given_id
        else:
            request_id = b"%s-%x" % (self._id_prefix, next(self._ids))
        refusal = None
        if path not in UNCHECKED_HOST_PATHS and not self._hosts.allows(host):
            refusal = INVALID_HOST
        elif (
            self._token is not None
            and _is_api_path(path)
            and path not in PUBLIC_API_PATHS  # the JS client's files: no state in them
            and not self._has_token(authorization)
            # EventSource cannot set headers: the event stream, and it alone, takes the
            # token as `?access_token=` too.
            and not (path == EVENTS_PATH and self._has_query_token(scope["query_string"]))
        ):
            refusal = UNAUTHORIZED
        elif scope["method"] == "GET" and not scope["query_string"]:
            target = FAST_GETS.get(path)
            runtime = runtime_of(scope) if target is not None else None
            if target is not None and runtime is not None:
                if not self._fast:
                    await answer_get(runtime.manager, target, send, request_id, if_none_match)
                    return
                started = perf_counter()
                status = await answer_get(runtime.manager, target, send, request_id, if_none_match)
                duration, counts = self._fast[path]
                count = counts.get(status)
                if count is None:
                    count = counts[status] = self._count(path, "GET", status)
                count.inc()
                duration.observe(perf_counter() - started)
                return
        await self._observed(scope, receive, send, request_id, refusal, content_length)

    async def _observed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: bytes,
        refusal: Answer | None,
        content_length: bytes | None,
    ) -> None:
        """Everything but the fast path: the request id in the context and on the answer,
        the request counted and timed by its route once it has been answered."""
        status = 500  # what the server sends for an app that never started its answer
        header = (_REQUEST_ID, request_id)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        context = REQUEST_ID.set(request_id.decode("ascii"))
        started = perf_counter()
        try:
            if refusal is not None:
                await refusal.send_to(send_with_id)
            else:
                await self._call_app(scope, receive, send_with_id, declared_length(content_length))
        finally:
            REQUEST_ID.reset(context)
            if self._metrics is not None:
                self._record(scope, status, perf_counter() - started)

    def _record(self, scope: Scope, status: int, duration_s: float) -> None:
        assert self._metrics is not None
        route = getattr(scope.get("route"), "path", None)  # set by the router on a match
        label = route if isinstance(route, str) else UNMATCHED
        method = method_label(scope["method"])
        self._count(label, method, status).inc()
        if label not in UNTIMED_ROUTES:
            self._metrics.http_duration.labels(label, method).observe(duration_s)

    def _count(self, route: str, method: str, status: int) -> Counter:
        assert self._metrics is not None
        return self._metrics.http_requests.labels(route, method, str(status))

    def _has_token(self, authorization: bytes | None) -> bool:
        """FastAPI's `HTTPBearer` reading (`Bearer <token>`, scheme in any case), compared
        in constant time."""
        assert self._token is not None
        scheme, _, given = (authorization or b"").partition(b" ")
        if scheme.lower() != b"bearer":
            given = b""
        return secrets.compare_digest(given.strip(), self._token)

    def _has_query_token(self, query_string: bytes) -> bool:
        """`?access_token=<token>` (the first one), compared in constant time."""
        assert self._token is not None
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        given = next((value for name, value in pairs if name == "access_token"), "")
        return secrets.compare_digest(given.encode(), self._token)

    async def _call_app(
        self, scope: Scope, receive: Receive, send: Send, length: int | None
    ) -> None:
        if length is not None and length <= self._max_body_bytes:
            await self.app(scope, receive, send)  # the server stops the body at that length
        elif length is not None:
            await self._too_large.send_to(send)  # refused before a byte of it is read
        else:
            body = LimitedBody(
                receive,
                send,
                max_bytes=self._max_body_bytes,
                answer_too_large=self._too_large.send_to,
            )
            await self.app(scope, body.receive, body.send)


async def answer_get(
    manager: StateManager,
    target: RenderTarget,
    send: Send,
    request_id: bytes,
    if_none_match: bytes | None = None,
) -> int:
    """A fast-path GET: the rendered bytes, with the headers the routed handler sends (its
    `ETag` first) and the request id, or a 304 with no body on a matching `If-None-Match`.
    Returns the status sent (the edge counts it)."""
    etag = manager.etag(target)
    if if_none_match is not None and _is_fresh(if_none_match, etag):
        headers = [(b"etag", etag), (_REQUEST_ID, request_id)]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return 304
    body = manager.render(target)
    headers = [
        (b"etag", etag),
        (b"content-length", b"%d" % len(body)),
        (b"content-type", _JSON),
        (_REQUEST_ID, request_id),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return 200


def _is_fresh(if_none_match: bytes, etag: bytes) -> bool:
    """`If-None-Match` names `etag`: one bytes compare for the common case (a client
    sending back the one weak tag it was given, current or not); a list, `*` or a strong
    spelling is parsed."""
    if if_none_match == etag:
        return True
    if if_none_match.startswith(b'W/"') and b"," not in if_none_match:
        return False  # one weak tag, not ours
    return etag_matches(if_none_match, (etag,))


def _is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")
