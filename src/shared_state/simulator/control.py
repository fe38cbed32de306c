"""HTTP machinery both simulated upstreams share: auth hooks, fault injection, the write log,
request stats, JSON errors and body checks, and the `/_sim` routers that edit a running world.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shared_state.simulator.world import (
    READ_FAULTS,
    WRITE_FAULTS,
    AnythingLLMWorld,
    Conversation,
    JSONObject,
    LibreChatWorld,
    Stats,
    UpstreamWorld,
    Workspace,
)

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]
Authorizer = Callable[[Request], Response | None]
"""Checks a request's credentials: None lets it through, a response turns it away."""

HTML_PAGE = (
    "<!doctype html><html><head><title>Loading…</title></head>"
    '<body><div id="root"></div></body></html>'
)
"""What a single-page app's catch-all serves for a path it does not know."""

WRONG_SHAPE: Any = "ok"
"""A JSON value of the wrong type: a string where an object or an array is expected."""


class ApiError(Exception):
    """An error answer: raised anywhere in a simulator route, sent as `{"error": message}`."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def response(self) -> JSONResponse:
        """Render the error as its JSON answer."""
        return json_error(self.status_code, self.message)


def json_error(status_code: int, message: str) -> JSONResponse:
    """Answer `{"error": message}` with this status."""
    return JSONResponse({"error": message}, status_code=status_code)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app answers a JSON `{"error": ...}` object."""

    async def on_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in {204, 304}:
            return Response(status_code=exc.status_code, headers=exc.headers)
        return JSONResponse(
            {"error": str(exc.detail).lower()}, status_code=exc.status_code, headers=exc.headers
        )

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return json_error(400, "invalid request")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """Parse strict JSON (no NaN or Infinity); raise ApiError 400 if it is not."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid JSON") from exc


async def read_json_object(request: Request) -> JSONObject:
    """Return the request body, which must be a JSON object; raise ApiError 400 otherwise."""
    body = parse_json(await request.body())
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


@dataclass(frozen=True)
class FieldSpec:
    """What one key of a JSON body may hold: `expected` says it in words for error messages."""

    expected: str
    check: Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


STRING = FieldSpec("a string", lambda v: isinstance(v, str))
NUMBER = FieldSpec("a number", _is_number)
INTEGER = FieldSpec("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
COUNT = FieldSpec("an integer >= 0", lambda v: INTEGER.check(v) and v >= 0)
BOOLEAN = FieldSpec("true or false", lambda v: isinstance(v, bool))
DURATION = FieldSpec("a number >= 0", lambda v: _is_number(v) and v >= 0)


def one_of(*choices: str) -> FieldSpec:
    """A key that must hold one of these strings."""
    return FieldSpec("one of " + ", ".join(choices), lambda v: isinstance(v, str) and v in choices)


def nullable(spec: FieldSpec) -> FieldSpec:
    """A key that may also hold null."""
    return FieldSpec(f"{spec.expected} or null", lambda v: v is None or spec.check(v))


def check_fields(
    body: JSONObject, specs: Mapping[str, FieldSpec], *, required: tuple[str, ...] = ()
) -> JSONObject:
    """Return `body` if every key is known and well typed; raise ApiError 400 otherwise."""
    for key, value in body.items():
        spec = specs.get(key)
        if spec is None:
            raise ApiError(400, f"unknown key {key}")
        if not spec.check(value):
            raise ApiError(400, f"invalid value for {key}: expected {spec.expected}")
    for key in required:
        if key not in body:
            raise ApiError(400, f"missing key {key}")
    return body


def _authorized(request: Request, credential: str | None) -> bool:
    if credential is None:
        return True
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        supplied.strip().encode(), credential.encode()
    )


def _body_for_log(raw: bytes) -> Any:
    """The write body as logged: its JSON value, else its text, else None when empty."""
    if not raw:
        return None
    try:
        return parse_json(raw)
    except ApiError:
        return raw.decode("utf-8", errors="replace")


def bearer_authorizer(credential: str | None) -> Authorizer:
    """Require `Authorization: Bearer <credential>` (None: no check); else 401 `unauthorized`."""

    def authorize(request: Request) -> Response | None:
        return None if _authorized(request, credential) else json_error(401, "unauthorized")

    return authorize


def upstream_route_class(
    world: UpstreamWorld, credential: str | None = None, *, authorize: Authorizer | None = None
) -> type[APIRoute]:
    """A route class for an upstream's `/api` routes: auth first, then the world's faults.

    `authorize` checks credentials (default: the bearer `credential`). GET (and HEAD) routes
    suffer the read fault. Every other method is a write: it suffers the write fault, and
    lands in the world's write log (even when unauthorized), accepted if it answered 2xx.
    """
    check = authorize if authorize is not None else bearer_authorizer(credential)

    class UpstreamRoute(APIRoute):
        def get_route_handler(self) -> RouteHandler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                refusal = check(request)
                if request.method in {"GET", "HEAD"}:
                    if refusal is not None:
                        return refusal
                    return await _read(world, handler, request)
                return await _write(world, handler, request, refusal=refusal)

            return guarded

    return UpstreamRoute


def _slow_release(app: FastAPI) -> asyncio.Event:
    release: asyncio.Event | None = getattr(app.state, "sim_slow_release", None)
    if release is None:
        release = app.state.sim_slow_release = asyncio.Event()
    return release


def release_slow_reads(app: FastAPI) -> None:
    """Let reads held by the slow fault answer now, and later ones not wait: for a stop."""
    _slow_release(app).set()


async def _answer(handler: RouteHandler, request: Request) -> Response:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()


async def _read(world: UpstreamWorld, handler: RouteHandler, request: Request) -> Response:
    fault = world.faults.reads
    if fault == "error":
        return json_error(500, "simulated failure")
    if fault in ("throttled", "unavailable"):
        answer = json_error(429 if fault == "throttled" else 503, f"simulated {fault}")
        if world.faults.retry_after is not None:
            answer.headers["Retry-After"] = world.faults.retry_after
        return answer
    if fault == "html":
        return Response(HTML_PAGE, media_type="text/html; charset=utf-8")
    if fault == "wrong_shape":
        return JSONResponse(WRONG_SHAPE)
    if fault == "slow":
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(world.faults.delay_s):
                await _slow_release(request.app).wait()
    response = await _answer(handler, request)
    if fault == "malformed":
        # A proper prefix of a JSON object or array is never valid JSON.
        body = bytes(response.body)
        return Response(
            body[: max(1, len(body) // 2)],
            status_code=response.status_code,
            media_type="application/json",
        )
    return response


async def _write(
    world: UpstreamWorld, handler: RouteHandler, request: Request, *, refusal: Response | None
) -> Response:
    body = _body_for_log(await request.body())
    if refusal is not None:
        response: Response = refusal
    elif world.faults.writes == "fail":
        response = json_error(500, "simulated write failure")
    elif world.faults.fail_next_writes > 0:  # a few failures, then writes land again
        world.faults.fail_next_writes -= 1
        response = json_error(500, "simulated write failure")
    else:
        response = await _answer(handler, request)
    world.record_write(request.url.path, body, accepted=200 <= response.status_code < 300)
    return response


class PathCounter:
    """ASGI middleware counting every HTTP request outside `/_sim` in the world's stats."""

    def __init__(self, app: ASGIApp, world: UpstreamWorld) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path != "/_sim" and not path.startswith("/_sim/"):
                self.world.stats.count_path(path)
        await self.app(scope, receive, send)


# --- the /_sim control API -----------------------------------------------------------------
# Its bodies use the upstream's own field names (camelCase); records it answers are rendered by
# the renderer the app passes in, so `/_sim` shows them as the app's `/api` routes do.

_FAULT_FIELDS: dict[str, FieldSpec] = {
    "reads": one_of(*READ_FAULTS),
    "writes": one_of(*WRITE_FAULTS),
    "delay_s": FieldSpec("a number >= 0", lambda v: _is_number(v) and v >= 0),
    "retry_after": nullable(
        FieldSpec(
            "a Retry-After value (seconds or an HTTP date)",
            lambda v: isinstance(v, str) and 0 < len(v) <= 64 and v.isprintable(),
        )
    ),
    "fail_next_writes": COUNT,
}


def _faults_json(world: UpstreamWorld) -> JSONObject:
    faults = world.faults
    shown: JSONObject = {"reads": faults.reads, "writes": faults.writes, "delay_s": faults.delay_s}
    if faults.retry_after is not None:  # shown once set: earlier clients saw three keys
        shown["retry_after"] = faults.retry_after
    if faults.fail_next_writes:  # shown while some are left, likewise
        shown["fail_next_writes"] = faults.fail_next_writes
    return shown


def _writes_json(world: UpstreamWorld) -> list[JSONObject]:
    return [{"path": w.path, "body": w.body, "accepted": w.accepted} for w in world.writes]


@dataclass(frozen=True)
class SettingsAccess:
    """Where a flavour keeps the settings `/_sim/settings` edits: how to read and merge them."""

    read: Callable[[], JSONObject]
    merge: Callable[[JSONObject], JSONObject]


def _control_router(
    world: UpstreamWorld,
    records: Callable[[], JSONObject],
    settings: SettingsAccess | None = None,
) -> APIRouter:
    """The control routes every upstream has; `records` renders its own collections.

    `settings` says where the flavour keeps its settings (default: `world.settings`).
    """
    router = APIRouter(prefix="/_sim", tags=["simulator control"])
    access = settings or SettingsAccess(read=lambda: world.settings, merge=world.merge_settings)

    def state() -> JSONObject:
        return {
            "user": world.user,
            "settings": access.read(),
            **records(),
            "faults": _faults_json(world),
            "writes": _writes_json(world),
        }

    @router.get("/state")
    async def get_state() -> JSONResponse:
        """The whole simulated world of this upstream."""
        return JSONResponse(state())

    @router.patch("/settings")
    async def patch_settings(request: Request) -> JSONResponse:
        """Merge the given keys into the settings."""
        return JSONResponse(access.merge(await read_json_object(request)))

    @router.patch("/user")
    async def patch_user(request: Request) -> JSONResponse:
        """Merge the given keys into the user."""
        return JSONResponse(world.merge_user(await read_json_object(request)))

    @router.get("/fault")
    async def get_fault() -> JSONResponse:
        """The current fault settings."""
        return JSONResponse(_faults_json(world))

    @router.put("/fault")
    async def put_fault(request: Request) -> JSONResponse:
        """Change some fault settings; keys left out keep their value."""
        changes = check_fields(await read_json_object(request), _FAULT_FIELDS)
        if "reads" in changes:
            world.faults.reads = changes["reads"]
        if "writes" in changes:
            world.faults.writes = changes["writes"]
        if "delay_s" in changes:
            world.faults.delay_s = float(changes["delay_s"])
        if "retry_after" in changes:
            world.faults.retry_after = changes["retry_after"]
        if "fail_next_writes" in changes:
            world.faults.fail_next_writes = changes["fail_next_writes"]
        return JSONResponse(_faults_json(world))

    @router.get("/writes")
    async def get_writes() -> JSONResponse:
        """The writes received on `/api` routes, oldest first."""
        return JSONResponse(_writes_json(world))

    @router.delete("/writes", status_code=204)
    async def clear_writes() -> Response:
        """Forget the writes received so far."""
        world.writes.clear()
        return Response(status_code=204)

    @router.get("/stats")
    async def get_stats() -> JSONResponse:
        """The request counters."""
        return JSONResponse(world.stats.as_json())

    @router.delete("/stats", status_code=204)
    async def clear_stats() -> Response:
        """Set every request counter back to zero."""
        world.stats = Stats()
        return Response(status_code=204)

    @router.post("/reset")
    async def reset() -> JSONResponse:
        """Restore the seed data, clear the faults and the write log; answer the new state."""
        world.reset()
        return JSONResponse(state())

    return router


_NEW_WORKSPACE_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip())),
    "openAiTemp": nullable(NUMBER),
    "chatProvider": nullable(STRING),
    "chatModel": nullable(STRING),
    "documents": COUNT,
}


def anythingllm_control_router(
    world: AnythingLLMWorld,
    workspace_json: Callable[[Workspace], JSONObject],
    *,
    settings: SettingsAccess | None = None,
    extra_records: Callable[[], JSONObject] | None = None,
) -> APIRouter:
    """The `/_sim` control routes of the simulated AnythingLLM.

    Workspaces are rendered by `workspace_json`, as the app's own API flavour lists them;
    `settings` and `extra_records` let a flavour show and edit its own data.
    """

    def records() -> JSONObject:
        extra = extra_records() if extra_records is not None else {}
        return {"workspaces": [workspace_json(ws) for ws in world.workspaces], **extra}

    router = _control_router(world, records, settings)

    @router.post("/workspaces", status_code=201)
    async def create_workspace(request: Request) -> JSONResponse:
        """Create a workspace from `{"name": ...}` and optional other fields."""
        body = check_fields(
            await read_json_object(request), _NEW_WORKSPACE_FIELDS, required=("name",)
        )
        workspace = world.add_workspace(
            body["name"].strip(),
            openai_temp=body.get("openAiTemp"),
            chat_provider=body.get("chatProvider"),
            chat_model=body.get("chatModel"),
            documents=body.get("documents", 0),
        )
        return JSONResponse(workspace_json(workspace), status_code=201)

    @router.delete("/workspaces/{slug}", status_code=204)
    async def delete_workspace(slug: str) -> Response:
        """Delete the workspace with this slug."""
        if not world.remove_workspace(slug):
            raise ApiError(404, f"no workspace {slug}")
        return Response(status_code=204)

    return router


_CONVERSATION_FIELDS: dict[str, FieldSpec] = {
    "title": STRING,
    "endpoint": STRING,
    "model": STRING,
    "messageCount": COUNT,
    "isArchived": BOOLEAN,
    "temperature": nullable(NUMBER),
    "pinned": BOOLEAN,
}
_CONVERSATION_DOCUMENT_FIELDS = ("temperature", "pinned")
"""Control fields kept in `Conversation.fields` (null removes them)."""

_BULK_FIELDS: dict[str, FieldSpec] = {
    "count": FieldSpec("an integer from 0 to 100000", lambda v: COUNT.check(v) and v <= 100_000)
}


def _apply_document_fields(conversation: Conversation, body: JSONObject) -> None:
    if "isArchived" in body:
        conversation.is_archived = body["isArchived"]
    for key in _CONVERSATION_DOCUMENT_FIELDS:
        if key in body:
            if body[key] is None:
                conversation.fields.pop(key, None)
            else:
                conversation.fields[key] = body[key]


def _find_conversation(world: LibreChatWorld, conversation_id: str) -> Conversation:
    conversation = world.find_conversation(conversation_id)
    if conversation is None:
        raise ApiError(404, f"no conversation {conversation_id}")
    return conversation


def librechat_control_router(
    world: LibreChatWorld,
    conversation_json: Callable[[Conversation], JSONObject],
    *,
    extra_records: Callable[[], JSONObject] | None = None,
) -> APIRouter:
    """The `/_sim` control routes of the simulated LibreChat.

    Conversations are rendered by `conversation_json`, as the app's own API flavour lists them;
    `extra_records` adds a flavour's own data to `/_sim/state`.
    """

    def records() -> JSONObject:
        extra = extra_records() if extra_records is not None else {}
        return {"conversations": [conversation_json(c) for c in world.conversations], **extra}

    router = _control_router(world, records)

    @router.post("/conversations", status_code=201)
    async def create_conversation(request: Request) -> JSONResponse:
        """Start a conversation from `{"title": ...}` and optional other fields, first in line."""
        body = check_fields(
            await read_json_object(request), _CONVERSATION_FIELDS, required=("title",)
        )
        conversation = world.add_conversation(
            body["title"],
            endpoint=body.get("endpoint", "openAI"),
            model=body.get("model", "gpt-4o"),
            message_count=body.get("messageCount", 0),
        )
        _apply_document_fields(conversation, body)
        return JSONResponse(conversation_json(conversation), status_code=201)

    @router.post("/conversations/bulk", status_code=201)
    async def bulk_conversations(request: Request) -> JSONResponse:
        """Add `{"count": n}` conversations at once, a millisecond apart, the last one newest."""
        body = check_fields(await read_json_object(request), _BULK_FIELDS, required=("count",))
        added = world.add_conversations(body["count"])
        return JSONResponse(
            {
                "added": len(added),
                "total": len(world.conversations),
                "conversationIds": [c.conversation_id for c in added[:1] + added[-1:]],
            },
            status_code=201,
        )

    @router.patch("/conversations/{conversation_id}")
    async def patch_conversation(conversation_id: str, request: Request) -> JSONResponse:
        """Merge the given fields into a conversation and make it the most recent one."""
        conversation = _find_conversation(world, conversation_id)
        body = check_fields(await read_json_object(request), _CONVERSATION_FIELDS)
        conversation.title = body.get("title", conversation.title)
        conversation.endpoint = body.get("endpoint", conversation.endpoint)
        conversation.model = body.get("model", conversation.model)
        conversation.message_count = body.get("messageCount", conversation.message_count)
        _apply_document_fields(conversation, body)
        world.touch_conversation(conversation)
        return JSONResponse(conversation_json(conversation))

    @router.delete("/conversations/{conversation_id}", status_code=204)
    async def delete_conversation(conversation_id: str) -> Response:
        """Delete a conversation."""
        if not world.remove_conversation(conversation_id):
            raise ApiError(404, f"no conversation {conversation_id}")
        return Response(status_code=204)

    @router.patch("/presets/{preset_id}")
    async def patch_preset(preset_id: str, request: Request) -> JSONResponse:
        """Merge fields into a preset, as a user editing it in LibreChat's UI would."""
        if world.find_preset(preset_id) is None:
            raise ApiError(404, f"no preset {preset_id}")
        body = await read_json_object(request)
        if "presetId" in body and body["presetId"] != preset_id:
            raise ApiError(400, "presetId cannot change")
        if "defaultPreset" in body and not isinstance(body["defaultPreset"], bool):
            raise ApiError(400, "invalid value for defaultPreset: expected true or false")
        return JSONResponse(world.save_preset(preset_id, body))

    return router
