"""Conditional requests and idempotent writes over real HTTP on loopback, against the
simulated upstreams: what the simulators' write logs (`GET /_sim/writes`) saw."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Service

SimClients = tuple[httpx.AsyncClient, httpx.AsyncClient]


async def writes_seen(sim_clients: SimClients) -> list[int]:
    """How many writes each simulator (AnythingLLM, LibreChat) has received."""
    return [len((await client.get("/_sim/writes")).json()) for client in sim_clients]


async def test_a_stale_if_match_is_412_and_reaches_no_upstream(
    service: Service, sim_clients: SimClients
) -> None:
    """A write on a tag that another write made stale is refused before either simulator
    receives anything, and the state keeps the other write's values."""
    state = await service.get("")
    stale = state.headers["etag"]
    accepted = await service.post(
        "/llm-settings", json={"model": "gpt-4o-mini"}, headers={"If-Match": stale}
    )
    assert accepted.status_code == 200
    seen = await writes_seen(sim_clients)
    assert seen[0] > 0
    assert seen[1] > 0

    refused = await service.post(
        "/llm-settings", json={"model": "gpt-4.1"}, headers={"If-Match": stale}
    )

    assert refused.status_code == 412
    assert refused.json()["code"] == "version_mismatch"
    assert await writes_seen(sim_clients) == seen
    assert (await service.get("/settings")).json()["llm"]["model"] == "gpt-4o-mini"


async def test_304_and_an_idempotent_replay_over_http(
    service: Service, sim_clients: SimClients
) -> None:
    """The fast path's 304 and a replayed write, through uvicorn: no body, no second
    write upstream."""
    settings = await service.get("/settings")
    not_modified = await service.get(
        "/settings", headers={"If-None-Match": settings.headers["etag"]}
    )
    assert (not_modified.status_code, not_modified.content) == (304, b"")

    headers = {"Idempotency-Key": "e2e-1"}
    first = await service.post("/llm-settings", json={"temperature": 0.3}, headers=headers)
    seen = await writes_seen(sim_clients)
    repeat = await service.post("/llm-settings", json={"temperature": 0.3}, headers=headers)

    assert first.status_code == repeat.status_code == 200
    assert repeat.content == first.content
    assert await writes_seen(sim_clients) == seen
    changed = await service.get("/settings", headers={"If-None-Match": settings.headers["etag"]})
    assert changed.status_code == 200
