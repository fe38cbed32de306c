"""The client's reads: paths, typed models, and the ETag cache (httpx.MockTransport)."""

from __future__ import annotations

from typing import Any

import pytest

from shared_state.api.schemas import StatusAnswer
from shared_state.client import AsyncSharedStateClient, SharedStateClient
from shared_state.domain.items import ItemList
from shared_state.domain.models import SharedState, StateSettings, User
from tests.clients.python.wire import (
    API,
    BASE,
    SETTINGS,
    SOURCES,
    TOKEN,
    Recorder,
    json_answer,
    state,
)

STATUS = {
    "version": 7,
    "syncTimestamp": "2026-11-21T12:00:00.000Z",
    "sources": {name: {**s, "consecutiveFailures": 0} for name, s in SOURCES.items()},
    "syncIntervalS": 30.0,
    "subscribers": 2,
    "uptimeS": 12.5,
    "propagation": {
        "groups": ["llm"],
        "policy": "manual",
        "fields": ["llm.provider", "llm.model"],
        "lastPropagation": None,
        "conflicts": [],
        "unwritable": [],
    },
    "store": {
        "kind": "redis",
        "status": "ok",
        "lastError": None,
        "replica": "pod-a-12-9f3c",
        "leaseHolder": "pod-b-7-0d1e",
        "holding": False,
        "takeovers": 1,
    },
}


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("get_state", "", state(), SharedState),
        ("get_user", "/user", state()["user"], User),
        ("get_settings", "/settings", SETTINGS, StateSettings),
        ("get_workspaces", "/workspaces", state()["workspaces"], ItemList),
        ("get_conversations", "/conversations", state()["conversations"], ItemList),
        ("get_status", "/status", STATUS, StatusAnswer),
    ],
)
def test_each_read_gets_its_path_as_the_services_model(
    method: str, path: str, body: Any, expected: type
) -> None:
    """Each read asks its path with the token and returns the service's own model."""
    service = Recorder(json_answer(body, etag='W/"t1"'))
    with SharedStateClient(BASE, TOKEN, transport=service.transport) as client:
        value = getattr(client, method)()
    assert isinstance(value, expected)
    assert str(service.last.url) == API + path
    assert service.last.headers["authorization"] == f"Bearer {TOKEN}"


def test_a_user_of_null_is_none() -> None:
    service = Recorder(json_answer(None))
    with SharedStateClient(BASE, transport=service.transport) as client:
        assert client.get_user() is None
    assert "authorization" not in service.last.headers


def test_models_hold_the_answers_values() -> None:
    """camelCase on the wire, snake_case in Python."""
    service = Recorder(json_answer(state(version=9)))
    with SharedStateClient(BASE, transport=service.transport) as client:
        got = client.get_state()
    assert got.version == 9
    assert got.settings.llm.max_tokens == 4096
    assert got.settings.ui.font_size == "medium"
    assert got.workspaces[0]["slug"] == "research"
    assert got.sources["librechat"].status == "ok"


def test_a_304_gives_back_the_very_object_of_the_last_200() -> None:
    """The second read sends the ETag as If-None-Match; the 304 returns the cached object."""
    service = Recorder(
        json_answer(SETTINGS, etag='W/"s-1"'),
        json_answer(None, 304, etag='W/"s-1"'),
    )
    with SharedStateClient(BASE, transport=service.transport) as client:
        first = client.get_settings()
        second = client.get_settings()
    assert second is first
    assert "if-none-match" not in service.requests[0].headers
    assert service.requests[1].headers["if-none-match"] == 'W/"s-1"'


def test_a_new_etag_replaces_the_cached_answer() -> None:
    changed = {**SETTINGS, "ui": {"theme": "dark", "fontSize": "large"}}
    service = Recorder(
        json_answer(SETTINGS, etag='W/"s-1"'),
        json_answer(changed, etag='W/"s-2"'),
        json_answer(None, 304, etag='W/"s-2"'),
    )
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.get_settings()
        second = client.get_settings()
        third = client.get_settings()
    assert second.ui.theme == "dark"
    assert third is second
    assert service.requests[2].headers["if-none-match"] == 'W/"s-2"'


def test_each_path_keeps_its_own_etag() -> None:
    service = Recorder(
        json_answer(SETTINGS, etag='W/"settings"'),
        json_answer(state()["workspaces"], etag='W/"workspaces"'),
        json_answer(None, 304, etag='W/"settings"'),
    )
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.get_settings()
        client.get_workspaces()
        client.get_settings()
    assert "if-none-match" not in service.requests[1].headers
    assert service.requests[2].headers["if-none-match"] == 'W/"settings"'


def test_an_answer_without_an_etag_is_not_cached() -> None:
    service = Recorder(json_answer(SETTINGS), json_answer(SETTINGS))
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.get_settings()
        client.get_settings()
    assert "if-none-match" not in service.requests[1].headers


def test_refresh_asks_the_service_to_sync_first() -> None:
    service = Recorder(json_answer(state()))
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.get_state(refresh=True)
    assert service.last.url.params["refresh"] == "true"


def test_an_item_id_is_one_path_segment() -> None:
    """A `/` or `?` in an id stays in the id, it never reaches another route."""
    service = Recorder(json_answer({"id": "a/b?c", "title": "odd"}))
    with SharedStateClient(BASE, transport=service.transport) as client:
        item = client.get_conversation("a/b?c")
    assert item["title"] == "odd"
    assert service.last.url.raw_path == b"/api/shared-state/conversations/a%2Fb%3Fc"


def test_a_workspace_by_slug_or_id() -> None:
    service = Recorder(json_answer({"id": 1, "slug": "research"}), json_answer({"id": 1}))
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.get_workspace("research")
        client.get_workspace(1)
    assert [r.url.path for r in service.requests] == [
        "/api/shared-state/workspaces/research",
        "/api/shared-state/workspaces/1",
    ]


def test_a_base_url_with_a_trailing_slash_or_a_prefix() -> None:
    service = Recorder(json_answer(SETTINGS), json_answer(SETTINGS))
    with SharedStateClient(f"{BASE}/", transport=service.transport) as client:
        client.get_settings()
    with SharedStateClient(f"{BASE}/sidecar", transport=service.transport) as client:
        client.get_settings()
    assert [r.url.path for r in service.requests] == [
        "/api/shared-state/settings",
        "/sidecar/api/shared-state/settings",
    ]


@pytest.mark.parametrize(
    "url", ["ftp://user:pw-canary@service.test", "service.test", "http://user:pw-canary@host:port"]
)
def test_a_base_url_that_is_not_http_is_refused_without_its_credentials(url: str) -> None:
    with pytest.raises(ValueError, match="must be an http") as caught:
        SharedStateClient(url)
    assert "pw-canary" not in str(caught.value)


async def test_the_async_client_reads_and_caches_alike() -> None:
    service = Recorder(
        json_answer(state(), etag='W/"v7"'),
        json_answer(None, 304, etag='W/"v7"'),
    )
    async with AsyncSharedStateClient(BASE, TOKEN, transport=service.transport) as client:
        first = await client.get_state()
        second = await client.get_state()
        assert isinstance(first, SharedState)
    assert second is first
    assert service.requests[1].headers["if-none-match"] == 'W/"v7"'


async def test_the_async_client_reads_every_section() -> None:
    service = Recorder(
        json_answer(state()["user"]),
        json_answer(SETTINGS),
        json_answer(state()["workspaces"]),
        json_answer(state()["conversations"]),
        json_answer({"id": 1}),
        json_answer({"id": "c-1"}),
        json_answer(STATUS),
    )
    async with AsyncSharedStateClient(BASE, transport=service.transport) as client:
        assert isinstance(await client.get_user(), User)
        assert isinstance(await client.get_settings(), StateSettings)
        assert len(await client.get_workspaces()) == 1
        assert len(await client.get_conversations()) == 1
        assert (await client.get_workspace("research"))["id"] == 1
        assert (await client.get_conversation("c-1"))["id"] == "c-1"
        status = await client.get_status()
    assert (status.subscribers, status.propagation.policy) == (2, "manual")
    assert (status.store.kind, status.store.lease_holder) == ("redis", "pod-b-7-0d1e")
