"""The REST API under /api/shared-state (contract §5): thin handlers over the runtime.

Every GET is answered from memory with JSON rendered once per state; only
`?refresh=true` waits on the upstreams (it joins or starts a sync first).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from shared_state.api.deps import RuntimeDep, StateManagerDep, require_api_token
from shared_state.api.schemas import (
    ErrorAnswer,
    LlmSettingsUpdate,
    SourceSchedule,
    StatusAnswer,
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
from shared_state.service.runtime import Runtime
from shared_state.state.manager import ListSection, RenderTarget

log = logging.getLogger(__name__)

API_PREFIX = "/api/shared-state"

router = APIRouter(
    prefix=API_PREFIX,
    tags=["shared-state"],
    dependencies=[Depends(require_api_token)],
    responses={401: {"model": ErrorAnswer, "description": "Missing or wrong API token"}},
)

Refresh = Annotated[bool, Query(description="Run a sync (or join the running one) first.")]


class JsonBytes(Response):
    media_type = "application/json"


async def _answer(runtime: Runtime, target: RenderTarget, refresh: bool) -> Response:
    if refresh:
        await runtime.synchronizer.sync()
    return JsonBytes(runtime.manager.render(target))


async def _find(runtime: Runtime, section: ListSection, key: str, refresh: bool) -> Item:
    if refresh:
        await runtime.synchronizer.sync()
    return runtime.manager.find(section, key)


async def _write(runtime: Runtime, section: WritableSection, values: dict[str, Any]) -> SharedState:
    state = await runtime.writer.write(section, values)
    # One line per write that went through (failures are logged where they are handled).
    # Field names only: the values came from a client.
    log.info("%s settings written (%s): version %d", section, ", ".join(values), state.version)
    return state


@router.get("", response_model=SharedState, summary="The whole merged state")
async def get_state(runtime: RuntimeDep, refresh: Refresh = False) -> Response:
    return await _answer(runtime, "state", refresh)


@router.get("/user", response_model=User | None, summary="The merged user (may be null)")
async def get_user(runtime: RuntimeDep, refresh: Refresh = False) -> Response:
    return await _answer(runtime, "user", refresh)


@router.get("/settings", response_model=StateSettings, summary="LLM, embedding, UI, vector DB")
async def get_settings(runtime: RuntimeDep, refresh: Refresh = False) -> Response:
    return await _answer(runtime, "settings", refresh)


@router.get("/workspaces", response_model=list[Item], summary="AnythingLLM's workspaces")
async def get_workspaces(runtime: RuntimeDep, refresh: Refresh = False) -> Response:
    return await _answer(runtime, "workspaces", refresh)


@router.get(
    "/workspaces/{workspace_id}",
    response_model=Item,
    responses={404: {"model": ErrorAnswer}},
    summary="One workspace, by id or slug",
)
async def get_workspace(workspace_id: str, runtime: RuntimeDep, refresh: Refresh = False) -> Item:
    return await _find(runtime, "workspaces", workspace_id, refresh)


@router.get("/conversations", response_model=list[Item], summary="LibreChat's conversations")
async def get_conversations(runtime: RuntimeDep, refresh: Refresh = False) -> Response:
    return await _answer(runtime, "conversations", refresh)


@router.get(
    "/conversations/{conversation_id}",
    response_model=Item,
    responses={404: {"model": ErrorAnswer}},
    summary="One conversation, by id",
)
async def get_conversation(
    conversation_id: str, runtime: RuntimeDep, refresh: Refresh = False
) -> Item:
    return await _find(runtime, "conversations", conversation_id, refresh)


@router.post(
    "/llm-settings",
    responses={502: {"model": WriteFailedAnswer}},
    summary="Write LLM settings through to the upstreams",
)
async def update_llm_settings(body: LlmSettingsUpdate, runtime: RuntimeDep) -> LlmSettings:
    state = await _write(runtime, "llm", body.values())
    return state.settings.llm


@router.post(
    "/ui-settings",
    responses={502: {"model": WriteFailedAnswer}},
    summary="Write UI settings through to the upstreams",
)
async def update_ui_settings(body: UiSettingsUpdate, runtime: RuntimeDep) -> UiSettings:
    state = await _write(runtime, "ui", body.values())
    return state.settings.ui


@router.post("/sync", summary="Sync now (or join the running sync)")
async def sync_now(runtime: RuntimeDep) -> SyncAnswer:
    report = await runtime.synchronizer.sync()
    return SyncAnswer(
        version=report.version,
        changed=report.changed,
        sources=report.sources,
        duration_ms=report.duration_ms,
    )


@router.get("/status", summary="Version, sources, schedule, subscribers, uptime")
async def get_status(runtime: RuntimeDep, manager: StateManagerDep) -> StatusAnswer:
    state = manager.state
    sources = {}
    for name, status in state.sources.items():
        backoff = runtime.synchronizer.backoff(name)
        sources[name] = SourceSchedule(
            **dict(status),
            consecutive_failures=backoff.consecutive_failures if backoff else 0,
            next_attempt_at=backoff.next_attempt_at if backoff else None,
        )
    return StatusAnswer(
        version=state.version,
        sync_timestamp=state.sync_timestamp,
        sources=sources,
        sync_interval_s=runtime.settings.sync_interval_s,
        subscribers=manager.subscriber_count,
        uptime_s=runtime.uptime_s,
    )
