"""Replicas in one process against a real redis-server and the simulators: the wiring
of `store.replica` into the app, through the public API. (The subprocess tests, with
signals, live in `tests/replicas/`.)"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared_state.simulator import (
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_LIBRECHAT_PASSWORD,
    SIM_LIBRECHAT_TOKEN,
    Flavour,
    SimulatorServers,
)
from shared_state.store.keys import StoreKeys
from shared_state.store.shared_state import SharedStateStore
from tests.e2e.conftest import Service, run_service, sidecar_settings
from tests.e2e.conftest import sim_clients as sim_clients  # fixtures, shared
from tests.e2e.conftest import sims as sims
from tests.e2e.test_events_e2e import open_stream
from tests.e2e.test_propagation import World
from tests.e2e.test_propagation import native_world as native_world  # a fixture, shared
from tests.e2e.test_secrets_e2e import settings_for
from tests.redis_server import RedisServer

GENEROUS_S = 10.0


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = GENEROUS_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await check():
        assert loop.time() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


def on_redis(redis_server: RedisServer, prefix: str) -> dict[str, Any]:
    """The settings that make a replica of the deployment `prefix` on `redis_server`."""
    return {
        "SHARED_STATE_REDIS_URL": redis_server.url,
        "SHARED_STATE_REDIS_PREFIX": prefix,
        "SHARED_STATE_LEASE_TTL_S": 1,
    }


@pytest.fixture
async def replicas(
    redis_server: RedisServer, prefix: str, sims: SimulatorServers
) -> AsyncIterator[list[Service]]:
    """Two replicas on one Redis, once one of them holds the lease and both serve its
    first sync."""
    redis_server.start()
    settings = sidecar_settings(sims, **on_redis(redis_server, prefix))
    async with AsyncExitStack() as stack:
        services = [await stack.enter_async_context(run_service(settings)) for _ in range(2)]

        async def settled() -> bool:
            statuses = [(await s.get("/status")).json() for s in services]
            holding = [status["store"]["holding"] for status in statuses]
            versions = {status["version"] for status in statuses}
            return sorted(holding) == [False, True] and len(versions) == 1 and 0 not in versions

        await eventually(settled)
        yield sorted(services, key=lambda s: not s.runtime.store_status()["holding"])


async def test_every_replica_answers_the_same_state_and_etags(replicas: list[Service]) -> None:
    holder, follower = replicas
    for path in ("", "/user", "/settings", "/workspaces", "/conversations"):
        answers = [await s.get(path) for s in replicas]
        assert answers[0].status_code == answers[1].status_code == 200
        assert answers[0].content == answers[1].content
        assert answers[0].headers["etag"] == answers[1].headers["etag"]
    status = (await follower.get("/status")).json()["store"]
    assert status["kind"] == "redis"
    assert status["status"] == "ok"
    assert status["leaseHolder"] == holder.runtime.store_status()["replica"]


async def test_a_write_on_the_follower_is_carried_out_by_the_holder(
    replicas: list[Service], sim_clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    holder, follower = replicas
    before = (await follower.get("")).json()["version"]
    answer = await follower.post("/llm-settings", json={"temperature": 0.25})
    assert answer.status_code == 200, answer.text
    assert answer.json()["temperature"] == 0.25

    mine = (await follower.get("")).json()
    assert mine["version"] > before  # the follower answers once it serves the result
    assert mine["settings"]["llm"]["temperature"] == 0.25
    await eventually(lambda: _version_is(holder, mine["version"]))
    writes = (await sim_clients[0].get("/_sim/writes")).json()
    assert len(writes) == 1


async def test_if_match_from_one_replica_is_honoured_by_the_other(
    replicas: list[Service],
) -> None:
    holder, follower = replicas
    read = await holder.get("/settings")
    theme = "light" if read.json()["ui"]["theme"] == "dark" else "dark"
    first = await follower.post(
        "/ui-settings", json={"theme": theme}, headers={"If-Match": read.headers["etag"]}
    )
    assert first.status_code == 200, first.text
    stale = await holder.post(
        "/ui-settings", json={"theme": "system"}, headers={"If-Match": read.headers["etag"]}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_mismatch"
    assert (await holder.get("/settings")).json()["ui"]["theme"] == theme


async def test_sync_on_the_follower_is_the_holders(
    replicas: list[Service], sim_clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    _, follower = replicas
    patched = await sim_clients[1].patch("/_sim/user", json={"name": "Grace"})
    assert patched.status_code == 200
    answer = await follower.post("/sync")
    assert answer.status_code == 200, answer.text
    user = (await follower.get("/user")).json()
    assert answer.json()["version"] == (await follower.get("")).json()["version"]
    assert user["name"] == "Grace" or "user" in answer.json()["changed"]


async def test_a_holder_whose_renewal_is_late_goes_on_carrying_out_writes(
    replicas: list[Service],
    redis_server: RedisServer,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A renewal that comes back late (a loaded machine): for a moment the holder's own
    clock says its lease ran out, though Redis still has it and the renewal then
    succeeds. The holder goes on carrying out the other replicas' writes (its command
    loop once ended at that moment, for good, while the holder kept syncing)."""
    holder, follower = replicas
    lease = holder.runtime.replica.lease  # type: ignore[union-attr]
    renew = lease.renew
    stalled = asyncio.Event()

    async def late_renewal() -> bool:
        if not stalled.is_set():
            stalled.set()
            lease._valid_until = 0.0  # the holder's clock: the lease ran out
            client = Redis.from_url(redis_server.url)
            try:  # while Redis still has it, for longer than the stall
                await client.pexpire(StoreKeys(prefix).lease, 10_000)
            finally:
                await client.aclose()
            await asyncio.sleep(1.5)  # longer than one wait of the command loop
        renewed: bool = await renew()
        return renewed

    monkeypatch.setattr(lease, "renew", late_renewal)
    await asyncio.wait_for(stalled.wait(), GENEROUS_S)
    await eventually(lambda: _holding(holder))  # renewed: the same tenure goes on

    answer = await follower.post("/llm-settings", json={"temperature": 0.35})
    assert answer.status_code == 200, answer.text
    assert holder.runtime.store_status()["takeovers"] == 1  # no new tenure was needed


async def _holding(service: Service) -> bool:
    return bool(service.runtime.store_status()["holding"])


async def _version_is(service: Service, version: int) -> bool:
    return bool((await service.get("")).json()["version"] == version)


async def test_without_redis_replicas_serve_what_they_hold_and_refuse_writes(
    replicas: list[Service],
    redis_server: RedisServer,
    sim_clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    before = [(await s.get("")).content for s in replicas]
    redis_server.stop()
    try:
        for service, held in zip(replicas, before, strict=True):
            answer = await service.get("")
            assert (answer.status_code, answer.content) == (200, held)
            assert (await service.client.get("/readyz")).status_code == 200
            refused = await service.post("/llm-settings", json={"temperature": 0.75})
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "store_unavailable"
            assert (await service.post("/sync")).json()["code"] == "store_unavailable"
            refreshed = await service.get("", params={"refresh": "true"})
            assert (refreshed.status_code, refreshed.content) == (200, held)
        for service in replicas:
            await eventually(functools.partial(_store_is, service, "unavailable"))
            status = (await service.get("/status")).json()["store"]
            assert status["lastError"]
        assert (await sim_clients[0].get("/_sim/writes")).json() == []
    finally:
        redis_server.start()  # empty, as after a crash without persistence

    version = (await replicas[0].get("")).json()["version"]
    for service in replicas:
        await eventually(functools.partial(_store_is, service, "ok"))

    async def one_holder_again() -> bool:
        statuses = [(await s.get("/status")).json() for s in replicas]
        return (
            sorted(s["store"]["holding"] for s in statuses) == [False, True]
            and len({s["version"] for s in statuses}) == 1
        )

    await eventually(one_holder_again)
    assert (await replicas[0].get("")).json()["version"] >= version  # never backwards
    written = await replicas[1].post("/llm-settings", json={"temperature": 0.75})
    assert written.status_code == 200, written.text

    async def one_etag() -> bool:  # within a second of the answer (contract §11)
        return len({(await s.get("")).headers["etag"] for s in replicas}) == 1

    await eventually(one_etag, within_s=1.0)


async def test_the_holder_goes_on_above_a_version_that_redis_lost(
    replicas: list[Service], redis_server: RedisServer, prefix: str
) -> None:
    """A Redis that comes back without its data, while some replica had seen a newer
    version than the holder (it reports it): the holder publishes above that version,
    so no two different states ever share a version."""
    holder, follower = replicas
    version = (await holder.get("")).json()["version"]
    client = Redis.from_url(redis_server.url)
    try:
        await client.flushdb()  # as a restart without persistence
        await SharedStateStore(client, StoreKeys(prefix), replay_versions=10).report(version + 5)
    finally:
        await client.aclose()

    async def above() -> bool:
        answers = [await s.get("") for s in replicas]
        versions = {a.json()["version"] for a in answers}
        return versions == {version + 6} and len({a.headers["etag"] for a in answers}) == 1

    await eventually(above)
    assert (await follower.get("")).json()["user"] == (await holder.get("")).json()["user"]


async def _store_is(service: Service, status: str) -> bool:
    return bool((await service.get("/status")).json()["store"]["status"] == status)


async def test_every_replicas_stream_carries_every_change_and_resumes_on_another(
    replicas: list[Service],
) -> None:
    holder, follower = replicas
    async with open_stream(holder) as (_, on_holder), open_stream(follower) as (_, on_follower):
        first = [await on_holder.event(), await on_follower.event()]
        assert [m.event for m in first] == ["snapshot", "snapshot"]
        assert first[0].id == first[1].id
        for theme in ("light", "dark"):
            answer = await follower.post("/ui-settings", json={"theme": theme})
            assert answer.status_code == 200, answer.text
        seen = [[await reader.event() for _ in range(2)] for reader in (on_holder, on_follower)]
    assert [[(m.event, m.id, m.data) for m in messages] for messages in seen] == [
        [(m.event, m.id, m.data) for m in seen[0]]
    ] * 2
    assert all(m.event == "changed" for m in seen[0])

    # The follower's first event id, given to the holder: exactly the one missed after it.
    cursor = seen[1][0].id
    assert cursor is not None
    async with open_stream(holder, **{"Last-Event-ID": cursor}) as (_, resumed):
        missed = await resumed.event()
    assert (missed.event, missed.id, missed.data) == ("changed", seen[0][1].id, seen[0][1].data)


@pytest.mark.parametrize("flavour", ["native", "bizzy"])
async def test_redis_never_holds_a_secret(
    redis_server: RedisServer, prefix: str, flavour: Flavour
) -> None:
    """Every key under the prefix, after syncs, writes and an idempotent write: no API
    key, password, token, or the canaries the simulators hide in their data."""
    redis_server.start()
    async with SimulatorServers(flavour=flavour) as sims:
        settings = settings_for(sims, flavour, **on_redis(redis_server, prefix))
        async with run_service(settings) as service:
            await eventually(lambda: _version_is_above(service, 0))
            assert (await service.post("/sync")).status_code == 200
            written = await service.post(
                "/llm-settings", json={"temperature": 0.5}, headers={"Idempotency-Key": "k-1"}
            )
            assert written.status_code == 200, written.text
            held = await _everything_under(redis_server.url, prefix)
    assert f"{prefix}:state".encode() in held  # the dump did find the state
    for secret in (
        SECRET_CANARY,
        SIM_ANYTHINGLLM_API_KEY,
        SIM_ANYTHINGLLM_PASSWORD,
        SIM_LIBRECHAT_PASSWORD,
        SIM_LIBRECHAT_TOKEN,
    ):
        assert secret.encode() not in held, secret


async def _everything_under(url: str, prefix: str) -> bytes:
    """Every key under `prefix:` and its value(s), whatever the type, as one blob."""
    client = Redis.from_url(url)
    parts: list[Any] = []
    try:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            parts.append(key)
            kind = _text(await client.type(key))
            if kind == "string":
                parts.append(await client.get(key))
            elif kind == "hash":
                for field, value in (await client.hgetall(key)).items():
                    parts += [field, value]
            elif kind == "list":
                parts += await client.lrange(key, 0, -1)
            elif kind == "zset":
                parts += await client.zrange(key, 0, -1)
            elif kind == "stream":
                for _, fields in await client.xrange(key) or []:
                    for field, value in (fields or {}).items():
                        parts += [field, value]
            else:
                raise AssertionError(f"unexpected {kind} at {key!r}")
    finally:
        await client.aclose()
    return b"\n".join(part if isinstance(part, bytes) else str(part).encode() for part in parts)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _version_is_above(service: Service, version: int) -> bool:
    return bool((await service.get("")).json()["version"] > version)


async def test_a_replica_started_without_redis_waits_for_it_then_serves(
    redis_server: RedisServer, prefix: str, sims: SimulatorServers
) -> None:
    """Redis unreachable at start-up: the replica starts, says so, is not ready (it holds
    no state and serves none of its own), and syncs as the holder once Redis is there."""
    redis_server.stop()
    settings = sidecar_settings(sims, **on_redis(redis_server, prefix))
    try:
        async with run_service(settings) as service:
            assert (await service.client.get("/readyz")).status_code == 503
            await eventually(functools.partial(_store_is, service, "unavailable"))
            assert (await service.get("")).json()["version"] == 0
            refused = await service.post("/ui-settings", json={"theme": "dark"})
            assert refused.json()["code"] == "store_unavailable"
            redis_server.start()
            await eventually(lambda: _version_is_above(service, 0))
            assert (await service.client.get("/readyz")).status_code == 200
            status = (await service.get("/status")).json()["store"]
            assert (status["status"], status["holding"], status["takeovers"]) == ("ok", True, 1)
    finally:
        redis_server.start()


async def test_a_hung_redis_turns_writes_into_503_within_the_request_timeout(
    replicas: list[Service], redis_server: RedisServer
) -> None:
    """Redis that keeps its connections open and answers nothing (SIGSTOP): a write on
    either replica is refused within `SHARED_STATE_REQUEST_TIMEOUT_S` (2 s here), reads
    go on; once Redis answers again, writes work."""
    loop = asyncio.get_running_loop()
    redis_server.pause()
    try:
        for service in replicas:
            started = loop.time()
            refused = await service.post("/ui-settings", json={"fontSize": "large"})
            took = loop.time() - started
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "store_unavailable"
            assert took <= 2.0 + 0.5, took  # the contract's bound, with scheduling slack
            assert (await service.get("/settings")).status_code == 200
    finally:
        redis_server.resume()
    for service in replicas:
        await eventually(functools.partial(_store_is, service, "ok"))
    written = await replicas[1].post("/ui-settings", json={"fontSize": "large"})
    assert written.status_code == 200, written.text


async def test_propagation_goes_on_across_a_takeover(
    native_world: World, redis_server: RedisServer, prefix: str
) -> None:
    """Propagation runs on the holder only, and its memory (the bases, the last
    propagation) is in the shared state: after a takeover the new holder knows what was
    propagated, writes nothing again, and carries the next change over itself."""
    redis_server.start()
    settings = native_world.settings(**on_redis(redis_server, prefix))
    first_running: AbstractAsyncContextManager[Service] | None = run_service(settings)
    assert first_running is not None
    first = await first_running.__aenter__()
    try:
        await eventually(lambda: _version_is_above(first, 0))
        await native_world.set_anythingllm_model("gpt-4.1")
        assert (await first.post("/sync")).status_code == 200
        assert await native_world.librechat_model() == "gpt-4.1"
        async with run_service(settings) as second:
            await eventually(lambda: _version_is(second, first.runtime.manager.state.version))
            assert second.runtime.store_status()["holding"] is False
            writes = await native_world.settings_writes()

            await first_running.__aexit__(None, None, None)  # the holder stops (drains)
            first_running = None
            await eventually(lambda: _holds(second))
            assert (await second.post("/sync")).status_code == 200
            assert await native_world.settings_writes() == writes  # nothing propagated twice
            last = (await second.get("/status")).json()["propagation"]["lastPropagation"]
            assert last["value"] == {"provider": "openai", "model": "gpt-4.1"}

            await native_world.set_anythingllm_model("gpt-4o-mini")
            assert (await second.post("/sync")).status_code == 200
            assert await native_world.librechat_model() == "gpt-4o-mini"
    finally:
        if first_running is not None:
            await first_running.__aexit__(None, None, None)


async def _holds(service: Service) -> bool:
    return bool((await service.get("/status")).json()["store"]["holding"])
