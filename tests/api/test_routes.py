"""Tests of the read endpoints, sync, status, health and mounting (contract §5)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI

from shared_state import running
from shared_state.api import add_exception_handlers, health_router, router
from shared_state.domain.models import UpstreamSnapshot
from shared_state.errors import UpstreamUnavailable
from tests.api.conftest import (
    ALLM_USER,
    CONVERSATION,
    LC_USER,
    WORKSPACE,
    Service,
    make_anythingllm,
    make_librechat,
    make_settings,
    serve,
    start_service,
)
from tests.fakes import GatedUpstream

JS_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BASE = "/api/shared-state"

SETTINGS = {
    "llm": {"provider": "openai", "model": "gpt-4o", "temperature": 0.7, "maxTokens": 4096},
    "embedding": {"provider": "openai", "model": "text-embedding-3-small"},
    "ui": {"theme": "dark", "fontSize": "large"},
    "vectorDb": {"provider": "lancedb", "settings": {}},
}
USER = {
    "id": 1,
    "username": "ada",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "role": "admin",
    "anythingLLM": ALLM_USER,
    "libreChat": LC_USER,
}


def assert_ok_source(source: dict[str, Any]) -> None:
    assert source["status"] == "ok"
    assert source["lastError"] is None
    assert JS_ISO.match(source["lastSuccessAt"])
    assert source["lastAttemptAt"] == source["lastSuccessAt"]


async def test_state_has_every_section_in_camel_case(service: Service) -> None:
    """`GET /api/shared-state` answers the merged state with the contract's camelCase names."""
    response = await service.client.get(BASE)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    state = response.json()
    assert set(state) == {
        "version",
        "syncTimestamp",
        "user",
        "settings",
        "workspaces",
        "conversations",
        "sources",
    }
    assert state["version"] == 1
    assert JS_ISO.match(state["syncTimestamp"])
    assert state["user"] == USER
    assert state["settings"] == SETTINGS
    assert state["workspaces"] == [WORKSPACE]
    assert state["conversations"] == [CONVERSATION]
    assert set(state["sources"]) == {"anythingllm", "librechat"}
    for source in state["sources"].values():
        assert set(source) == {"status", "lastSuccessAt", "lastAttemptAt", "lastError"}
        assert_ok_source(source)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/user", USER),
        ("/settings", SETTINGS),
        ("/workspaces", [WORKSPACE]),
        ("/workspaces/1", WORKSPACE),
        ("/workspaces/research", WORKSPACE),
        ("/conversations", [CONVERSATION]),
        ("/conversations/c-1", CONVERSATION),
    ],
)
async def test_section_get_answers_that_section(
    service: Service, path: str, expected: object
) -> None:
    """Each section GET answers that section of the state (workspaces by id or slug)."""
    response = await service.client.get(BASE + path)

    assert response.status_code == 200
    assert response.json() == expected


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/workspaces/42", "No workspace with id '42'."),
        ("/workspaces/c-1", "No workspace with id 'c-1'."),
        ("/conversations/nope", "No conversation with id 'nope'."),
        ("/conversations/research", "No conversation with id 'research'."),
    ],
)
async def test_unknown_item_is_not_found(service: Service, path: str, detail: str) -> None:
    """An unknown workspace or conversation id answers 404 with code `not_found`."""
    response = await service.client.get(BASE + path)

    assert response.status_code == 404
    assert response.json() == {"detail": detail, "code": "not_found"}


async def test_user_is_null_when_no_upstream_knows_one(anythingllm: GatedUpstream) -> None:
    """`GET /user` answers JSON `null` when no upstream gave a user."""
    anythingllm.snapshot = UpstreamSnapshot()
    async with start_service(make_settings(), [anythingllm]) as service:
        response = await service.client.get(BASE + "/user")

    assert response.status_code == 200
    assert response.json() is None


@pytest.mark.parametrize(
    ("path", "before", "after"),
    [
        ("", [CONVERSATION], [{"id": "c-2", "title": "Roadmap"}]),
        ("/conversations", [CONVERSATION], [{"id": "c-2", "title": "Roadmap"}]),
    ],
)
async def test_get_without_refresh_never_calls_the_upstream(
    service: Service,
    librechat: GatedUpstream,
    path: str,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
) -> None:
    """A GET without `refresh` answers from memory; with `refresh=true` it syncs first."""
    fetches = librechat.fetch_count
    librechat.snapshot = UpstreamSnapshot(conversations=after)

    cached = await service.client.get(BASE + path)
    assert librechat.fetch_count == fetches
    refreshed = await service.client.get(BASE + path, params={"refresh": "true"})

    def conversations(body: Any) -> Any:
        return body["conversations"] if path == "" else body

    assert conversations(cached.json()) == before
    assert conversations(refreshed.json()) == after
    assert librechat.fetch_count == fetches + 1


@pytest.mark.parametrize(
    "path", ["/user", "/settings", "/workspaces", "/workspaces/1", "/conversations/c-1", "/status"]
)
async def test_section_gets_answer_from_memory(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream, path: str
) -> None:
    """No GET without `refresh` calls an upstream."""
    fetches = (anythingllm.fetch_count, librechat.fetch_count)

    response = await service.client.get(BASE + path)

    assert response.status_code == 200
    assert (anythingllm.fetch_count, librechat.fetch_count) == fetches


async def test_item_get_with_refresh_finds_a_new_item(
    service: Service, anythingllm: GatedUpstream
) -> None:
    """`GET /workspaces/{id}?refresh=true` syncs first, so a workspace added upstream is found."""
    added = {"id": 2, "name": "Ops", "slug": "ops"}
    anythingllm.snapshot = anythingllm.snapshot.model_copy(
        update={"workspaces": [WORKSPACE, added]}
    )

    missing = await service.client.get(BASE + "/workspaces/ops")
    found = await service.client.get(BASE + "/workspaces/ops", params={"refresh": "true"})

    assert missing.status_code == 404
    assert found.status_code == 200
    assert found.json() == added


async def test_post_sync_answers_a_report(service: Service, librechat: GatedUpstream) -> None:
    """`POST /sync` syncs now and answers version, changed sections, sources and duration."""
    fetches = librechat.fetch_count
    librechat.snapshot = librechat.snapshot.model_copy(update={"conversations": []})

    response = await service.client.post(BASE + "/sync")

    assert response.status_code == 200
    report = response.json()
    assert set(report) == {"version", "changed", "sources", "durationMs"}
    assert report["version"] == 2
    assert report["changed"] == ["conversations"]
    assert isinstance(report["durationMs"], float)
    assert report["durationMs"] >= 0
    assert set(report["sources"]) == {"anythingllm", "librechat"}
    assert_ok_source(report["sources"]["librechat"])
    assert librechat.fetch_count == fetches + 1


async def test_timer_sync_joins_the_running_post_sync(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """A timer sync that arrives while `POST /sync` runs joins it: one read per upstream."""
    fetches = (anythingllm.fetch_count, librechat.fetch_count)
    for upstream in (anythingllm, librechat):
        upstream.gate.clear()
        upstream.fetch_started.clear()
    librechat.snapshot = librechat.snapshot.model_copy(update={"conversations": []})

    posted = asyncio.create_task(service.client.post(BASE + "/sync"))
    await anythingllm.fetch_started.wait()
    timer = asyncio.create_task(service.runtime.synchronizer.sync())
    anythingllm.gate.set()
    librechat.gate.set()
    response, report = await asyncio.gather(posted, timer)

    assert (anythingllm.fetch_count, librechat.fetch_count) == (fetches[0] + 1, fetches[1] + 1)
    assert response.json()["version"] == report.version == 2
    assert response.json()["changed"] == report.changed == ["conversations"]


async def test_post_sync_with_nothing_new_keeps_the_version(service: Service) -> None:
    """A sync that finds nothing new answers `changed: []` and the same version."""
    response = await service.client.post(BASE + "/sync")

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert response.json()["changed"] == []


async def test_status_answers_the_contract_fields(service: Service) -> None:
    """`GET /status` answers version, syncTimestamp, sources, interval, subscribers, uptime,
    propagation (contract §10) and store (§11: in memory, one process does it all)."""
    response = await service.client.get(BASE + "/status")

    assert response.status_code == 200
    status = response.json()
    assert set(status) == {
        "version",
        "syncTimestamp",
        "sources",
        "syncIntervalS",
        "subscribers",
        "uptimeS",
        "propagation",
        "store",
    }
    assert status["store"] == {
        "kind": "memory",
        "status": "ok",
        "lastError": None,
        "replica": None,
        "leaseHolder": None,
        "holding": True,
        "takeovers": 0,
    }
    assert status["version"] == 1
    assert JS_ISO.match(status["syncTimestamp"])
    assert status["syncIntervalS"] == 3600.0
    assert status["subscribers"] == 0
    assert isinstance(status["uptimeS"], float)
    assert status["uptimeS"] >= 0
    assert_ok_source(status["sources"]["anythingllm"])
    assert_ok_source(status["sources"]["librechat"])


async def test_failed_upstream_shows_stale_with_its_error(
    service: Service, librechat: GatedUpstream
) -> None:
    """After a failed read the source is `stale` with `lastError`, and its data stays."""
    librechat.fail_reads = UpstreamUnavailable("librechat", "timeout")

    response = await service.client.get(BASE, params={"refresh": "true"})

    state = response.json()
    assert state["sources"]["librechat"]["status"] == "stale"
    assert state["sources"]["librechat"]["lastError"] == "timeout"
    assert state["conversations"] == [CONVERSATION]
    assert state["version"] == 2


async def test_disabled_source_shows_disabled(anythingllm: GatedUpstream) -> None:
    """An upstream that is not configured is reported `disabled` with no timestamps."""
    async with start_service(make_settings(), [anythingllm]) as service:
        response = await service.client.get(BASE)

    sources = response.json()["sources"]
    assert sources["librechat"] == {
        "status": "disabled",
        "lastSuccessAt": None,
        "lastAttemptAt": None,
        "lastError": None,
    }
    assert sources["anythingllm"]["status"] == "ok"
    assert response.json()["conversations"] == []


async def test_healthz_answers_ok(service: Service) -> None:
    """`/healthz` answers 200 while the process runs."""
    response = await service.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_until_the_first_sync_finished() -> None:
    """`/readyz` answers 503 `not_ready` while the first sync is held, then 200."""
    anythingllm = make_anythingllm(is_open=False)
    async with start_service(make_settings(), [anythingllm], await_first_sync=False) as service:
        await anythingllm.fetch_started.wait()
        before = await service.client.get("/readyz")
        health = await service.client.get("/healthz")
        state = await service.client.get(BASE)
        anythingllm.gate.set()
        await service.runtime.synchronizer.sync()
        after = await service.client.get("/readyz")

    assert before.status_code == 503
    assert before.json() == {"detail": "The first sync has not finished yet.", "code": "not_ready"}
    assert health.status_code == 200
    assert state.status_code == 200
    assert state.json()["version"] == 0
    assert state.json()["syncTimestamp"] is None
    assert state.json()["sources"]["anythingllm"]["status"] == "pending"
    assert after.status_code == 200
    assert after.json() == {"status": "ready"}
    assert anythingllm.fetch_count == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", BASE + "/nope", 404, "not_found"),
        ("DELETE", BASE, 405, "method_not_allowed"),
        ("GET", BASE + "/llm-settings", 405, "method_not_allowed"),
    ],
)
async def test_unknown_route_answers_an_error_body(
    service: Service, method: str, path: str, status: int, code: str
) -> None:
    """An unknown path or method answers the contract's error body with a `code`."""
    response = await service.client.request(method, path)

    assert response.status_code == status
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


async def test_router_mounts_into_a_host_app() -> None:
    """A host app that includes the routers and sets `app.state.shared_state` from
    `running()` in its own lifespan serves the state (the README's mounting recipe)."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    settings = make_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings, upstreams=[anythingllm, librechat]) as runtime:
            app.state.shared_state = runtime
            yield

    host = FastAPI(lifespan=lifespan)
    host.include_router(router)
    host.include_router(health_router)
    add_exception_handlers(host)

    async with serve(host) as service:
        await anythingllm.fetch_started.wait()
        await service.runtime.synchronizer.sync()
        state = await service.client.get(BASE)
        missing = await service.client.get(BASE + "/workspaces/none")
        ready = await service.client.get("/readyz")

    assert state.status_code == 200
    assert state.json()["workspaces"] == [WORKSPACE]
    assert state.json()["conversations"] == [CONVERSATION]
    assert state.json()["settings"] == SETTINGS
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No workspace with id 'none'.", "code": "not_found"}
    assert ready.status_code == 200
