"""The pure-ASGI edge in front of FastAPI: what every request meets before routing.

In order: the `Host` check (`SHARED_STATE_ALLOWED_HOSTS`), the API token for
`/api/shared-state/*` (so an unauthenticated body is never read), the GET fast path,
and the body limit (`SHARED_STATE_MAX_BODY_BYTES`) for everything that goes on to the
router. The fast path answers `GET /api/shared-state` and its four sections, without a
query string, straight from the bytes the StateManager renders once per state: the same
status, headers and body as the routed handlers, without a `Request`, a dependency tree
or a route match. Everything else (a query string such as `?refresh=true`, HEAD, items,
writes, other paths) goes on to FastAPI unchanged.

`create_app` installs it; an application that mounts `shared_state.api.router` itself
adds it with `app.add_middleware(SharedStateEdge, settings=settings)`.
"""

from __future__ import annotations

import secrets
from typing import Final, NamedTuple

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared_state.api.body_limit import LimitedBody, declared_length
from shared_state.api.deps import TOKEN_REQUIRED, runtime_of
from shared_state.api.hosts import AllowedHosts
from shared_state.api.routes import API_PREFIX
from shared_state.config import Settings
from shared_state.state.manager import RenderTarget, StateManager, etag_matches

FAST_GETS: Final[dict[str, RenderTarget]] = {
    API_PREFIX: "state",
    f"{API_PREFIX}/user": "user",
    f"{API_PREFIX}/settings": "settings",
    f"{API_PREFIX}/workspaces": "workspaces",
    f"{API_PREFIX}/conversations": "conversations",
}
"""The GET paths answered from rendered bytes, and what each renders."""

UNCHECKED_HOST_PATHS: Final = frozenset({"/healthz", "/readyz"})
"""Probes (a kubelet sends the pod's IP as `Host`) answer whatever the `Host`."""

_JSON: Final = b"application/json"


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
    (set by the lifespan); until it is there, GETs go on to the router."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
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
        host = authorization = content_length = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = host or value
            elif name == b"authorization":
                authorization = authorization or value
            elif name == b"content-length":
                content_length = content_length or value
        path: str = scope["path"]
        if path not in UNCHECKED_HOST_PATHS and not self._hosts.allows(host):
            await INVALID_HOST.send_to(send)
            return
        if self._token is not None and _is_api_path(path) and not self._has_token(authorization):
            await UNAUTHORIZED.send_to(send)
            return
        if scope["method"] == "GET" and not scope["query_string"]:
            target = FAST_GETS.get(path)
            runtime = runtime_of(scope) if target is not None else None
            if target is not None and runtime is not None:
                await answer_get(runtime.manager, target, send, scope)
                return
        await self._call_app(scope, receive, send, declared_length(content_length))

    def _has_token(self, authorization: bytes | None) -> bool:
        """FastAPI's `HTTPBearer` reading (`Bearer <token>`, scheme in any case), compared
        in constant time."""
        assert self._token is not None
        scheme, _, given = (authorization or b"").partition(b" ")
        if scheme.lower() != b"bearer":
            given = b""
        return secrets.compare_digest(given.strip(), self._token)

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


async def answer_get(manager: StateManager, target: RenderTarget, send: Send, scope: Scope) -> None:
    """A fast-path GET: the rendered bytes, with the headers the routed handler sends
    (its `ETag` first), or a 304 with no body on a matching `If-None-Match`."""
    etag = manager.etag(target)
    if_none_match = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value
            break
    if if_none_match is not None and _is_fresh(if_none_match, etag):
        headers = [(b"etag", etag)]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    body = manager.render(target)
    headers = [(b"etag", etag), (b"content-length", b"%d" % len(body)), (b"content-type", _JSON)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
