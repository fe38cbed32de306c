"""The GET fast path of `SharedStateEdge`: the same answers as the routed handlers, for
the state and every section, with and without a token; everything else falls through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_state.api import SharedStateEdge, add_exception_handlers, router
from shared_state.config import Settings
from shared_state.service.runtime import Runtime
from tests.api.conftest import (
    Service,
    make_anythingllm,
    make_librechat,
    make_settings,
    start_service,
)

BASE = "/api/shared-state"
TOKEN = "s3cret-token"
FAST_PATHS = [BASE, *(f"{BASE}/{s}" for s in ("user", "settings", "workspaces", "conversations"))]


@asynccontextmanager
async def routed_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The router mounted the way a library user mounts it, with no edge in front,
    serving the same running parts."""
    app = FastAPI()
    app.include_router(router)
    add_exception_handlers(app)
    app.state.shared_state = runtime
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@asynccontextmanager
async def edge_only_client(
    runtime: Runtime, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The edge in front of an app with no routes at all: what answers 200 here can only
    be the fast path, and what falls through gets the app's 404."""
    app = FastAPI()
    app.add_middleware(SharedStateEdge, settings=settings)
    app.state.shared_state = runtime
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def answer_of(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body, but the `X-Request-ID` the edge adds to every answer
    (the routed app here has no edge; tests/api/test_request_id.py covers it)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    return response.status_code, headers, response.content


@asynccontextmanager
async def both_fakes(settings: Settings) -> AsyncIterator[Service]:
    async with start_service(settings, [make_anythingllm(), make_librechat()]) as service:
        yield service


@pytest.mark.parametrize("path", FAST_PATHS)
@pytest.mark.parametrize(
    ("token", "headers", "status"),
    [
        pytest.param(None, {}, 200, id="no-token-configured"),
        pytest.param(TOKEN, {"Authorization": f"Bearer {TOKEN}"}, 200, id="right-token"),
        pytest.param(TOKEN, {"Authorization": f"bearer {TOKEN}"}, 200, id="lower-case-scheme"),
        pytest.param(TOKEN, {"Authorization": f"Bearer  {TOKEN} "}, 200, id="spaces"),
        pytest.param(TOKEN, {"Authorization": "Bearer "}, 401, id="empty-token"),
        pytest.param(TOKEN, {}, 401, id="no-token-sent"),
        pytest.param(TOKEN, {"Authorization": "Bearer wrong"}, 401, id="wrong-token"),
        pytest.param(TOKEN, {"Authorization": f"Bearer {TOKEN}x"}, 401, id="token-with-suffix"),
        pytest.param(TOKEN, {"Authorization": f"Basic {TOKEN}"}, 401, id="basic-scheme"),
        pytest.param(TOKEN, {"Authorization": TOKEN}, 401, id="no-scheme"),
    ],
)
async def test_fast_path_answers_what_the_router_answers(
    path: str, token: str | None, headers: dict[str, str], status: int
) -> None:
    """Status, headers and body of the fast path equal the routed handler's, byte for byte."""
    async with (
        both_fakes(make_settings(SHARED_STATE_API_TOKEN=token)) as service,
        routed_client(service.runtime) as routed,
    ):
        fast = await service.client.get(path, headers=headers)
        slow = await routed.get(path, headers=headers)

    assert fast.status_code == status
    assert answer_of(fast) == answer_of(slow)


async def test_fast_path_serves_rendered_bytes_without_the_router() -> None:
    """The state and each section are answered even by an app that has no routes."""
    settings = make_settings()
    async with (
        both_fakes(settings) as service,
        edge_only_client(service.runtime, settings) as client,
    ):
        answers = {path: await client.get(path) for path in FAST_PATHS}
        manager = service.runtime.manager
        expected = {
            BASE: manager.render("state"),
            f"{BASE}/user": manager.render("user"),
            f"{BASE}/settings": manager.render("settings"),
            f"{BASE}/workspaces": manager.render("workspaces"),
            f"{BASE}/conversations": manager.render("conversations"),
        }

    for path, response in answers.items():
        assert response.status_code == 200, path
        assert response.content == expected[path]
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-length"] == str(len(expected[path]))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", BASE + "?refresh=true", id="query-string"),
        pytest.param("GET", BASE + "/settings?refresh=false", id="section-query-string"),
        pytest.param("HEAD", BASE, id="head"),
        pytest.param("GET", BASE + "/workspaces/1", id="item"),
        pytest.param("GET", BASE + "/status", id="status"),
        pytest.param("GET", BASE + "/", id="trailing-slash"),
        pytest.param("POST", BASE, id="post"),
    ],
)
async def test_anything_else_falls_through_to_the_app(method: str, path: str) -> None:
    """Requests the fast path does not own reach the app behind it (here: its 404)."""
    settings = make_settings()
    async with (
        both_fakes(settings) as service,
        edge_only_client(service.runtime, settings) as client,
    ):
        response = await client.request(method, path)

    assert response.status_code == 404


async def test_fast_path_follows_each_new_state() -> None:
    """After a write the fast path serves the new version's bytes, not the old ones."""
    async with both_fakes(make_settings()) as service:
        before = (await service.client.get(BASE + "/settings")).json()
        written = await service.client.post(BASE + "/ui-settings", json={"theme": "light"})
        after = (await service.client.get(BASE + "/settings")).json()
        state = (await service.client.get(BASE)).json()

    assert written.status_code == 200
    assert before["ui"]["theme"] == "dark"
    assert after["ui"]["theme"] == "light"
    assert state["version"] == service.runtime.manager.state.version == 2


async def test_routed_query_string_answers_the_same_bytes() -> None:
    """`?refresh=false` takes the routed handler and answers the fast path's bytes."""
    async with both_fakes(make_settings()) as service:
        fast = await service.client.get(BASE)
        routed = await service.client.get(BASE, params={"refresh": "false"})

    assert answer_of(fast) == answer_of(routed)


class StampingMiddleware:
    """An outer middleware that adds a header by appending to the list it is handed, as
    some middleware do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"].append((b"x-stamp", b"1"))
            await send(message)

        await self.app(scope, receive, stamped)


async def test_outer_middleware_cannot_pile_headers_onto_the_edge_answers() -> None:
    """The precomputed 401 is answered again and again with its own headers only once."""
    settings = make_settings(SHARED_STATE_API_TOKEN=TOKEN)
    async with both_fakes(settings) as service:
        app = FastAPI()
        app.add_middleware(SharedStateEdge, settings=settings)
        app.add_middleware(StampingMiddleware)
        app.state.shared_state = service.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = [await client.get(BASE) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert [a.headers.get_list("x-stamp") for a in answers] == [["1"]] * 3
