"""Conditional requests (contract §8): weak ETags on every GET, 304 on `If-None-Match`,
per-section tags, and `If-Match` on the writes (412 `version_mismatch`, no upstream
called; last writer wins without it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from shared_state.state.manager import StateManager
from tests.api.conftest import (
    ALLM_FIELDS,
    CONVERSATION,
    Service,
    make_anythingllm,
    make_settings,
    start_service,
)
from tests.api.test_fast_path import answer_of, routed_client
from tests.fakes import GatedUpstream, HeldWriteUpstream, make_snapshot

BASE = "/api/shared-state"
SECTIONS = ["", "/user", "/settings", "/workspaces", "/conversations"]
EVERY_GET = [
    *SECTIONS,
    "/workspaces/research",
    "/workspaces/1",
    "/conversations/c-1",
    "/status",
    "?refresh=true",
    "/settings?refresh=true",
]


async def tag_of(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(BASE + path)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


async def change_conversations(service: Service, librechat: GatedUpstream) -> None:
    """A new conversation upstream, and a sync that brings it in."""
    conversations = [CONVERSATION, {"id": "c-2", "title": "New"}]
    librechat.snapshot = librechat.snapshot.model_copy(
        update={"conversations": make_snapshot(conversations=conversations).conversations}
    )
    version = service.runtime.manager.state.version
    await service.runtime.synchronizer.sync()
    assert service.runtime.manager.state.version == version + 1


@pytest.mark.parametrize("path", EVERY_GET)
async def test_every_get_answers_a_weak_etag_and_304_when_it_matches(
    service: Service, path: str
) -> None:
    """State, sections, items and status carry `W/"…"`; sending it back gets a bodiless 304."""
    first = await service.client.get(BASE + path)
    etag = first.headers["etag"]
    assert etag.startswith('W/"')

    again = await service.client.get(BASE + path, headers={"If-None-Match": etag})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag


@pytest.mark.parametrize("path", SECTIONS)
@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda tag: f'W/"old", {tag}', id="list"),
        pytest.param(lambda tag: "*", id="star"),
        pytest.param(lambda tag: tag.removeprefix("W/"), id="strong-spelling"),
        pytest.param(lambda tag: f' {tag} ,W/"x"', id="spaces"),
    ],
)
async def test_if_none_match_lists_star_and_weak_comparison(
    service: Service, path: str, spelling: Callable[[str], str]
) -> None:
    """Fast path and router alike read a list of tags, `*`, and compare weakly."""
    etag = await tag_of(service.client, path)
    header = spelling(etag)
    async with routed_client(service.runtime) as routed:
        fast = await service.client.get(BASE + path, headers={"If-None-Match": header})
        slow = await routed.get(BASE + path, headers={"If-None-Match": header})

    assert (fast.status_code, fast.content) == (304, b"")
    assert (slow.status_code, slow.content) == (304, b"")
    assert answer_of(fast)[1] == answer_of(slow)[1]  # the edge adds X-Request-ID only


@pytest.mark.parametrize("path", [*SECTIONS, "/status", "/workspaces/research"])
async def test_a_tag_that_is_not_current_gets_the_whole_answer(service: Service, path: str) -> None:
    """A stale or foreign tag is a 200 with the body and the current tag."""
    etag = await tag_of(service.client, path)
    for header in ('W/"stale-1"', '"stale-1"', 'W/"a", W/"b"'):
        response = await service.client.get(BASE + path, headers={"If-None-Match": header})
        assert response.status_code == 200
        assert response.content
        assert response.headers["etag"] == etag


async def test_a_missing_item_is_404_whatever_the_tag(service: Service) -> None:
    """An item that is not there is not "not modified", even for the section's tag."""
    etag = await tag_of(service.client, "/workspaces/research")

    response = await service.client.get(BASE + "/workspaces/nope", headers={"If-None-Match": etag})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_a_conversations_change_keeps_the_other_sections_tags(
    service: Service, librechat: GatedUpstream
) -> None:
    """Only the state's, the conversations' and their items' tags move with a new
    conversation; the settings, user and workspaces tags (and a workspace's) stay."""
    paths = [*SECTIONS, "/workspaces/research", "/conversations/c-1"]
    before = {path: await tag_of(service.client, path) for path in paths}

    await change_conversations(service, librechat)
    after = {path: await tag_of(service.client, path) for path in paths}

    moved = {path for path in paths if before[path] != after[path]}
    assert moved == {"", "/conversations", "/conversations/c-1"}


async def test_a_settings_change_moves_the_settings_tag(service: Service) -> None:
    """A write to the settings gives `/settings` and the state new tags, not the lists."""
    paths = ["", "/settings", "/workspaces", "/conversations"]
    before = {path: await tag_of(service.client, path) for path in paths}

    written = await service.client.post(BASE + "/ui-settings", json={"theme": "light"})
    assert written.status_code == 200
    after = {path: await tag_of(service.client, path) for path in paths}

    assert {path for path in paths if before[path] != after[path]} == {"", "/settings"}


async def test_the_state_tag_follows_the_version(
    service: Service, librechat: GatedUpstream
) -> None:
    """A sync that finds nothing new keeps the state's tag; a new version changes it."""
    first = await tag_of(service.client, "")
    await service.runtime.synchronizer.sync()  # nothing new
    assert await tag_of(service.client, "") == first

    await change_conversations(service, librechat)

    assert await tag_of(service.client, "") != first


async def test_status_tag_ignores_uptime_but_not_the_rest(
    service: Service, librechat: GatedUpstream
) -> None:
    """`uptimeS` moves on every request; the tag moves only when something else does."""
    first = await service.client.get(BASE + "/status")
    for _ in range(10_000):  # until the clock has moved a millisecond
        later = await service.client.get(BASE + "/status")
        if later.json()["uptimeS"] != first.json()["uptimeS"]:
            break
    assert later.json()["uptimeS"] != first.json()["uptimeS"]
    assert later.headers["etag"] == first.headers["etag"]

    await change_conversations(service, librechat)

    assert await tag_of(service.client, "/status") != first.headers["etag"]


def test_tags_of_a_new_counter_never_match_an_old_one() -> None:
    """Without a snapshot file the version starts over at each start: a tag from before
    a restart names another run of the counter, so it is not current afterwards."""
    before, after = StateManager(configured=[]), StateManager(configured=[])

    assert before.state.version == after.state.version
    for target in ("state", "settings", "conversations"):
        assert before.etag(target) != after.etag(target)
        assert not after.is_current(before.etag(target).decode(), [target])


# --- If-Match on the writes ------------------------------------------------------------


@pytest.mark.parametrize("source", ["", "/settings"])
@pytest.mark.parametrize("route", ["/llm-settings", "/ui-settings"])
async def test_a_current_tag_lets_the_write_through(
    service: Service, source: str, route: str
) -> None:
    """The state's or the settings' tag, while current, is a write's `If-Match`."""
    etag = await tag_of(service.client, source)
    body = {"model": "gpt-4.1"} if route == "/llm-settings" else {"theme": "light"}

    response = await service.client.post(BASE + route, json=body, headers={"If-Match": etag})

    assert response.status_code == 200, response.text


async def test_star_and_lists_match_too(service: Service) -> None:
    """`*` always matches; in a list, one current tag is enough."""
    etag = await tag_of(service.client, "/settings")
    for header in ("*", f'W/"old", {etag}'):
        response = await service.client.post(
            BASE + "/ui-settings", json={"theme": "dark"}, headers={"If-Match": header}
        )
        assert response.status_code == 200, header


@pytest.mark.parametrize("route", ["/llm-settings", "/ui-settings"])
async def test_a_stale_tag_is_412_and_no_upstream_is_called(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream, route: str
) -> None:
    """After another write moved the settings, the old tag is refused before any upstream
    sees the write, and the state stays as it was."""
    stale = await tag_of(service.client, "/settings")
    moved = await service.client.post(BASE + "/llm-settings", json={"temperature": 1.5})
    assert moved.status_code == 200
    writes = (len(anythingllm.writes), len(librechat.writes))
    before = service.runtime.manager.render("state")
    body = {"model": "gpt-4.1"} if route == "/llm-settings" else {"theme": "light"}

    response = await service.client.post(BASE + route, json=body, headers={"If-Match": stale})

    assert response.status_code == 412
    assert response.json() == {
        "detail": "The state changed since that ETag was read (If-Match); nothing was written.",
        "code": "version_mismatch",
    }
    assert (len(anythingllm.writes), len(librechat.writes)) == writes
    assert service.runtime.manager.render("state") == before


async def test_the_settings_tag_survives_a_change_elsewhere(
    service: Service, librechat: GatedUpstream
) -> None:
    """A new conversation makes the state's tag stale, but not the settings' tag."""
    state_tag = await tag_of(service.client, "")
    settings_tag = await tag_of(service.client, "/settings")
    await change_conversations(service, librechat)

    refused = await service.client.post(
        BASE + "/ui-settings", json={"theme": "light"}, headers={"If-Match": state_tag}
    )
    accepted = await service.client.post(
        BASE + "/ui-settings", json={"theme": "light"}, headers={"If-Match": settings_tag}
    )

    assert refused.status_code == 412
    assert accepted.status_code == 200


async def test_without_if_match_the_last_writer_wins(service: Service) -> None:
    """Two writes without `If-Match` both go through; the second one's values stay."""
    first = await service.client.post(BASE + "/ui-settings", json={"theme": "light"})
    second = await service.client.post(BASE + "/ui-settings", json={"theme": "dark"})

    assert (first.status_code, second.status_code) == (200, 200)
    assert service.runtime.manager.state.settings.ui.theme == "dark"


async def test_two_writes_racing_on_one_tag_cannot_both_pass() -> None:
    """A write held at its upstream keeps the writer's lock: a write of service-kept
    fields sent meanwhile with the same tag is checked after it, and refused."""
    anythingllm = HeldWriteUpstream(
        "anythingllm", make_snapshot(), stored_fields=ALLM_FIELDS
    )  # stores no UI fields: `theme` is kept by the service itself
    async with start_service(make_settings(), [anythingllm]) as service:
        etag = await tag_of(service.client, "/settings")
        headers = {"If-Match": etag}
        llm = asyncio.create_task(
            service.client.post(BASE + "/llm-settings", json={"model": "m"}, headers=headers)
        )
        await anythingllm.write_started.wait()
        ui = asyncio.create_task(
            service.client.post(BASE + "/ui-settings", json={"theme": "light"}, headers=headers)
        )
        anythingllm.write_gate.set()
        answers = await asyncio.gather(llm, ui)

    assert [answer.status_code for answer in answers] == [200, 412]
    assert service.runtime.manager.state.settings.ui.theme != "light"


async def test_a_write_without_upstreams_checks_if_match_too() -> None:
    """Fields the service keeps itself are guarded by `If-Match` the same way."""
    async with start_service(make_settings(), [make_anythingllm()]) as service:
        stale = await tag_of(service.client, "")
        moved = await service.client.post(BASE + "/ui-settings", json={"theme": "dark"})
        refused = await service.client.post(
            BASE + "/ui-settings", json={"theme": "light"}, headers={"If-Match": stale}
        )

    assert moved.status_code == 200
    assert refused.status_code == 412
    assert service.runtime.manager.state.settings.ui.theme == "dark"


async def test_the_openapi_schema_documents_the_headers(service: Service) -> None:
    """Each GET lists `If-None-Match` and a 304 (the event stream has no ETag: it never
    ends); each write `If-Match`, `Idempotency-Key`, a 412 and a 422."""
    schema = service.app.openapi()
    for path, item in schema["paths"].items():
        if not path.startswith(BASE) or path == f"{BASE}/events":
            continue
        for method, operation in item.items():
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if method == "get":
                assert "If-None-Match" in headers, path
                assert "304" in operation["responses"], path
                assert "ETag" in operation["responses"]["200"]["headers"], path
            elif path.endswith("-settings"):
                assert {"If-Match", "Idempotency-Key"} <= headers, path
                assert {"412", "422", "502"} <= set(operation["responses"]), path
