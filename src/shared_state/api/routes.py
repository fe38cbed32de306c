"""The REST API under /api/shared-state (contract §5): thin handlers over the runtime.

Every GET is answered from memory with JSON rendered once per state; only
`?refresh=true` waits on the upstreams (it joins or starts a sync first). Every GET
carries a weak `ETag` and answers 304 to a matching `If-None-Match`; the writes take
`If-Match` and `Idempotency-Key` (contract §8, "Conditional requests").
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse

from shared_state.api.deps import RuntimeDep, StateManagerDep, require_api_token
from shared_state.api.errors import error_response
from shared_state.api.responses import EDGE_REFUSALS, UNAUTHORIZED
from shared_state.api.schemas import (
    ErrorAnswer,
    InvalidWriteAnswer,
    LlmSettingsUpdate,
    PropagationStatus,
    SourceSchedule,
    StatusAnswer,
    StoreStatus,
    SyncAnswer,
    UiSettingsUpdate,
    WriteFailedAnswer,
)
from shared_state.domain.models import (
    Item,
    LlmSettings,
    SharedState,
    StateSettings,
    UiSettings,
    User,
    WritableSection,
)
from shared_state.errors import (
    HolderUnavailable,
    StoreUnavailable,
    UpstreamWriteFailed,
    VersionMismatch,
)
from shared_state.service.idempotency import StoredAnswer, checked_key, fingerprint
from shared_state.service.runtime import Runtime
from shared_state.state.manager import ListSection, RenderTarget, etag_matches

log = logging.getLogger(__name__)

API_PREFIX = "/api/shared-state"

router = APIRouter(
    prefix=API_PREFIX,
    tags=["shared-state"],
    dependencies=[Depends(require_api_token)],
    responses={**UNAUTHORIZED, **EDGE_REFUSALS},
)

Refresh = Annotated[bool, Query(description="Run a sync (or join the running one) first.")]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="ETags from earlier answers (or `*`): a 304 with no body when one is "
        "current. Weak comparison.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag of `GET /api/shared-state` or `GET /api/shared-state/settings` "
        "(or `*`): the write is made only while it is current, else 412 `version_mismatch` "
        "and no upstream is called. Without it, the last writer wins.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1-255 printable ASCII characters (else 422 `invalid_idempotency_key`). "
        "A repeat with the same key and body replays the first answer without writing "
        "again (and waits for it while it runs); another body is 422 "
        "`idempotency_key_reused`. Keys are kept 24 h, at most 10,000.",
        json_schema_extra={"minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    ),
]

_ETAG_HEADER = {
    "ETag": {"description": "Weak entity tag of this answer", "schema": {"type": "string"}}
}
GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": _ETAG_HEADER},
    304: {
        "description": "Not modified: `If-None-Match` names the current ETag (no body)",
        "headers": _ETAG_HEADER,
    },
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    412: {
        "model": ErrorAnswer,
        "description": "`If-Match` is no longer current (`version_mismatch`)",
    },
    422: {
        "model": InvalidWriteAnswer,
        "description": "Invalid body, or an invalid or reused `Idempotency-Key`",
    },
    502: {"model": WriteFailedAnswer},
    503: {
        "model": ErrorAnswer,
        "description": "Replicas: Redis (`store_unavailable`) or the syncing replica "
        "(`holder_unavailable`) cannot be reached now; nothing was written (unless the "
        "detail says the syncing replica stepped down in the middle of it)",
    },
}


class JsonBytes(Response):
    media_type = "application/json"


def _conditional(etag: bytes, if_none_match: str | None, body: Callable[[], bytes]) -> Response:
    """The answer to a GET whose current ETag is `etag`: 304 when `If-None-Match` names
    it, else `body()` (only rendered then)."""
    tag = etag.decode()
    if if_none_match is not None and etag_matches(if_none_match.encode(), (etag,)):
        return Response(status_code=304, headers={"ETag": tag})
    return JsonBytes(body(), headers={"ETag": tag})


async def _refresh(runtime: Runtime) -> None:
    """`?refresh=true`: a sync first (on a replica, by the holder). When replicas cannot
    have one carried out now (Redis or the holder unavailable), the answer is the state
    this replica holds, as always: reads never fail for want of a sync."""
    try:
        await runtime.actions.sync()
    except (StoreUnavailable, HolderUnavailable) as exc:
        log.warning("refresh: answering with the state held: %s", exc)


async def _answer(
    runtime: Runtime, target: RenderTarget, refresh: bool, if_none_match: str | None
) -> Response:
    if refresh:
        await _refresh(runtime)
    manager = runtime.manager
    return _conditional(manager.etag(target), if_none_match, lambda: manager.render(target))


async def _find(
    runtime: Runtime, section: ListSection, key: str, refresh: bool, if_none_match: str | None
) -> Response:
    if refresh:
        await _refresh(runtime)
    found = runtime.manager.render_item(section, key)  # NotFound: 404 before any 304
    return _conditional(runtime.manager.etag(section), if_none_match, lambda: found)


async def _write(
    runtime: Runtime,
    route: str,
    section: WritableSection,
    values: dict[str, Any],
    if_match: str | None,
    idempotency_key: str | None,
) -> Response:
    """One write, carried out once per `Idempotency-Key` (when one is given)."""
    if idempotency_key is None:
        return await _write_once(runtime, section, values, if_match)
    store = runtime.idempotency
    claim = await store.claim(route, checked_key(idempotency_key), fingerprint(values))
    if claim.replay is not None:
        return JsonBytes(claim.replay.body, status_code=claim.replay.status)
    try:
        answer = await _write_once(runtime, section, values, if_match)
    except BaseException:
        await store.abandon(claim)  # crashed or cancelled: a retry runs it
        raise
    await store.finish(claim, StoredAnswer(status=answer.status_code, body=bytes(answer.body)))
    return answer


async def _write_once(
    runtime: Runtime, section: WritableSection, values: dict[str, Any], if_match: str | None
) -> Response:
    try:
        state = await runtime.actions.write(section, values, if_match=if_match)
    except (VersionMismatch, UpstreamWriteFailed) as exc:
        return error_response(exc)  # an answer an Idempotency-Key replays
    # One line per write that went through (failures are logged where they are handled).
    # Field names only: the values came from a client.
    log.info("%s settings written (%s): version %d", section, ", ".join(values), state.version)
    written = state.settings.llm if section == "llm" else state.settings.ui
    return JSONResponse(written.model_dump(mode="json", by_alias=True))


@router.get(
    "", response_model=SharedState, responses=GET_RESPONSES, summary="The whole merged state"
)
async def get_state(
    runtime: RuntimeDep, if_none_match: IfNoneMatch = None, refresh: Refresh = False
) -> Response:
    return await _answer(runtime, "state", refresh, if_none_match)


@router.get(
    "/user",
    response_model=User | None,
    responses=GET_RESPONSES,
    summary="The merged user (may be null)",
)
async def get_user(
    runtime: RuntimeDep, if_none_match: IfNoneMatch = None, refresh: Refresh = False
) -> Response:
    return await _answer(runtime, "user", refresh, if_none_match)


@router.get(
    "/settings",
    response_model=StateSettings,
    responses=GET_RESPONSES,
    summary="LLM, embedding, UI, vector DB",
)
async def get_settings(
    runtime: RuntimeDep, if_none_match: IfNoneMatch = None, refresh: Refresh = False
) -> Response:
    return await _answer(runtime, "settings", refresh, if_none_match)


@router.get(
    "/workspaces",
    response_model=list[Item],
    responses=GET_RESPONSES,
    summary="AnythingLLM's workspaces",
)
async def get_workspaces(
    runtime: RuntimeDep, if_none_match: IfNoneMatch = None, refresh: Refresh = False
) -> Response:
    return await _answer(runtime, "workspaces", refresh, if_none_match)


@router.get(
    "/workspaces/{workspace_id}",
    response_model=Item,
    responses={**GET_RESPONSES, 404: {"model": ErrorAnswer}},
    summary="One workspace, by id or slug",
)
async def get_workspace(
    workspace_id: str,
    runtime: RuntimeDep,
    if_none_match: IfNoneMatch = None,
    refresh: Refresh = False,
) -> Response:
    return await _find(runtime, "workspaces", workspace_id, refresh, if_none_match)


@router.get(
    "/conversations",
    response_model=list[Item],
    responses=GET_RESPONSES,
    summary="LibreChat's conversations",
)
async def get_conversations(
    runtime: RuntimeDep, if_none_match: IfNoneMatch = None, refresh: Refresh = False
) -> Response:
    return await _answer(runtime, "conversations", refresh, if_none_match)


@router.get(
    "/conversations/{conversation_id}",
    response_model=Item,
    responses={**GET_RESPONSES, 404: {"model": ErrorAnswer}},
    summary="One conversation, by id",
)
async def get_conversation(
    conversation_id: str,
    runtime: RuntimeDep,
    if_none_match: IfNoneMatch = None,
    refresh: Refresh = False,
) -> Response:
    return await _find(runtime, "conversations", conversation_id, refresh, if_none_match)


@router.post(
    "/llm-settings",
    response_model=LlmSettings,
    responses=WRITE_RESPONSES,
    summary="Write LLM settings through to the upstreams",
)
async def update_llm_settings(
    body: LlmSettingsUpdate,
    runtime: RuntimeDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    values = body.values()
    return await _write(runtime, "llm-settings", "llm", values, if_match, idempotency_key)


@router.post(
    "/ui-settings",
    response_model=UiSettings,
    responses=WRITE_RESPONSES,
    summary="Write UI settings through to the upstreams",
)
async def update_ui_settings(
    body: UiSettingsUpdate,
    runtime: RuntimeDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    values = body.values()
    return await _write(runtime, "ui-settings", "ui", values, if_match, idempotency_key)


@router.post(
    "/sync",
    summary="Sync now (or join the running sync)",
    responses={503: WRITE_RESPONSES[503]},
)
async def sync_now(runtime: RuntimeDep) -> SyncAnswer:
    report = await runtime.actions.sync()
    return SyncAnswer(
        version=report.version,
        changed=report.changed,
        sources=report.sources,
        duration_ms=report.duration_ms,
    )


@router.get(
    "/status",
    response_model=StatusAnswer,
    responses=GET_RESPONSES,
    summary="Version, sources, schedule, subscribers, uptime",
)
async def get_status(
    runtime: RuntimeDep, manager: StateManagerDep, if_none_match: IfNoneMatch = None
) -> Response:
    state = manager.state
    sources = {}
    for name, status in state.sources.items():
        backoff = runtime.synchronizer.backoff(name)
        sources[name] = SourceSchedule(
            **dict(status),
            consecutive_failures=backoff.consecutive_failures if backoff else 0,
            next_attempt_at=backoff.next_attempt_at if backoff else None,
        )
    answer = StatusAnswer(
        version=state.version,
        sync_timestamp=state.sync_timestamp,
        sources=sources,
        sync_interval_s=runtime.settings.sync_interval_s,
        subscribers=manager.subscriber_count,
        uptime_s=runtime.uptime_s,
        propagation=PropagationStatus.model_validate(_propagation_status(runtime)),
        store=StoreStatus.model_validate(runtime.store_status()),
    )
    body = answer.model_dump(mode="json", by_alias=True)
    return _conditional(_status_etag(body), if_none_match, lambda: _json(body))


def _propagation_status(runtime: Runtime) -> dict[str, Any]:
    if runtime.propagator is not None:
        return runtime.propagator.status()
    # A runtime built without one (a host application's own wiring): nothing propagates.
    policy = runtime.settings.conflict_policy
    return {
        "groups": [],
        "policy": policy,
        "fields": [],
        "lastPropagation": None,
        "conflicts": [],
        "unwritable": [],
    }


def _status_etag(body: dict[str, Any]) -> bytes:
    """`status`'s ETag: a digest of everything but `uptimeS`, which moves every time."""
    rest = {name: value for name, value in body.items() if name != "uptimeS"}
    digest = hashlib.blake2b(json.dumps(rest, sort_keys=True).encode(), digest_size=12)
    return b'W/"status-%s"' % digest.hexdigest().encode()


def _json(body: Any) -> bytes:
    return bytes(JSONResponse(body).body)
