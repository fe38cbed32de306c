"""Shared helpers for the API tests: settings without a `.env`, fake upstreams, and the
app served in-process through its lifespan (no TestClient: it warns, and warnings fail)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared_state import Settings, create_app
from shared_state.domain.models import (
    EmbeddingValues,
    LlmValues,
    UiValues,
    VectorDbValues,
    WritableSection,
)
from shared_state.service.runtime import Runtime
from tests.fakes import GatedUpstream, make_snapshot

ALLM_USER = {"id": 1, "username": "ada", "email": "ada@example.com", "role": "admin"}
LC_USER = {"id": "665f", "username": "ada", "email": "ada@example.com", "name": "Ada Lovelace"}
WORKSPACE = {"id": 1, "name": "Research", "slug": "research"}
CONVERSATION = {"id": "c-1", "title": "Quarterly plan"}

ALLM_FIELDS: dict[WritableSection, frozenset[str]] = {
    "llm": frozenset({"provider", "model", "temperature", "max_tokens"})
}
LC_FIELDS: dict[WritableSection, frozenset[str]] = {
    "llm": frozenset({"model", "temperature", "max_tokens"}),
    "ui": frozenset({"theme", "font_size"}),
}


def make_settings(**env: Any) -> Settings:
    """Settings from `env` only: no `.env` file, no token, no CORS, no snapshot file, and
    a sync interval long enough that only the start-up sync runs by itself."""
    values: dict[str, Any] = {
        "SHARED_STATE_SYNC_INTERVAL_S": 3600,
        "SHARED_STATE_API_TOKEN": None,
        "SHARED_STATE_CORS_ORIGINS": [],
        "SHARED_STATE_SNAPSHOT_PATH": None,
    }
    values.update(env)
    return Settings(_env_file=None, **values)


def make_anythingllm(*, is_open: bool = True) -> GatedUpstream:
    """An AnythingLLM fake: user, LLM settings, embedding, vector DB, one workspace."""
    return GatedUpstream(
        "anythingllm",
        make_snapshot(user=ALLM_USER, workspaces=[WORKSPACE]),
        stored_fields=ALLM_FIELDS,
        is_open=is_open,
    )


def make_librechat(*, is_open: bool = True) -> GatedUpstream:
    """A LibreChat fake: user, LLM settings, UI settings, one conversation."""
    return GatedUpstream(
        "librechat",
        make_snapshot(
            user=LC_USER,
            llm=LlmValues(provider="anthropic", model="claude-3", temperature=0.3, max_tokens=2048),
            ui=UiValues(theme="dark", font_size="large"),
            embedding=EmbeddingValues(),
            vector_db=VectorDbValues(),
            workspaces=None,
            conversations=[CONVERSATION],
        ),
        stored_fields=LC_FIELDS,
        is_open=is_open,
    )


@dataclass(frozen=True)
class Service:
    """A running app, a client for it, and its parts."""

    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[Service]:
    """Run `app`'s lifespan and give a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Service(app=app, client=client, runtime=app.state.shared_state)


@asynccontextmanager
async def start_service(
    settings: Settings | None = None,
    upstreams: Sequence[GatedUpstream] = (),
    *,
    await_first_sync: bool = True,
) -> AsyncIterator[Service]:
    """`create_app` served in-process. With `await_first_sync`, the scheduler's start-up
    sync has finished when this yields, so no other sync runs unless a test asks for one."""
    app = create_app(settings or make_settings(), upstreams=list(upstreams))
    async with serve(app) as service:
        if await_first_sync:
            if upstreams:
                # The start-up sync is the scheduler's: wait until it reads, then join it.
                await upstreams[0].fetch_started.wait()
            await service.runtime.synchronizer.sync()
        yield service


@pytest.fixture
def anythingllm() -> GatedUpstream:
    """The AnythingLLM fake, gate open."""
    return make_anythingllm()


@pytest.fixture
def librechat() -> GatedUpstream:
    """The LibreChat fake, gate open."""
    return make_librechat()


@pytest.fixture
async def service(anythingllm: GatedUpstream, librechat: GatedUpstream) -> AsyncIterator[Service]:
    """The standalone app with both fakes, after its first sync."""
    async with start_service(make_settings(), [anythingllm, librechat]) as running:
        yield running
