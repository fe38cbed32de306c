"""`shared-state doctor` with `SHARED_STATE_REDIS_URL`: the replicas' Redis against a
real `redis-server` (the session's, `tests/conftest.py`): it answers, it keeps its keys
when full, what the deployment holds there; an unreachable Redis, refused credentials
and an evicting policy each fail their check with the fix; no store line without it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shared_state.simulator import SimulatorServers
from shared_state.store.keys import StoreKeys
from shared_state.store.lease import Lease
from shared_state.store.shared_state import SharedStateStore
from tests.doctor.conftest import Doctor, free_port, healthy_env
from tests.redis_server import RedisServer


@pytest.fixture
async def sims() -> AsyncIterator[SimulatorServers]:
    async with SimulatorServers(flavour="bizzy") as servers:
        yield servers


@pytest.fixture
def prefix() -> str:
    return f"doctor-{uuid.uuid4().hex[:8]}"


async def test_without_redis_there_is_no_store_line(doctor: Doctor, sims: SimulatorServers) -> None:
    run = await doctor(healthy_env(sims))
    assert run.code == 0, run.out
    assert all(upstream != "store" for _, upstream, _, _ in run.rows())


async def test_a_healthy_redis_passes_and_says_what_the_deployment_holds(
    doctor: Doctor, sims: SimulatorServers, redis_server: RedisServer, prefix: str
) -> None:
    redis_server.start()
    env = healthy_env(sims) | {
        "SHARED_STATE_REDIS_URL": redis_server.url,
        "SHARED_STATE_REDIS_PREFIX": prefix,
    }
    empty = await doctor(env)
    assert empty.code == 0, empty.out
    assert [check for ok, upstream, check, _ in empty.rows() if upstream == "store" and ok] == [
        "reachable",
        "eviction",
        "shared state",
    ]
    assert empty.line("store", "reachable").startswith("Redis 7")
    assert "noeviction" in empty.line("store", "eviction")
    assert "no shared state yet" in empty.line("store", "shared state")

    client = Redis.from_url(redis_server.url)
    try:
        keys = StoreKeys(prefix)
        lease = Lease(client, keys, "web-1-42-beef", 30)
        fence = await lease.acquire()
        assert fence is not None
        store = SharedStateStore(client, keys, replay_versions=10)
        await store.publish(holder=lease.holder, fence=fence, version=7, snapshot=b"{}", event=None)
        held = await doctor(env, "--json")
    finally:
        await client.aclose()
    assert held.code == 0, held.out
    (line,) = [
        c for c in held.json()["checks"] if (c["upstream"], c["check"]) == ("store", "shared state")
    ]
    assert f"prefix {prefix}: version 7, synced by web-1-42-beef (lease for " in line["detail"]


async def test_nothing_listening_fails_reachable_with_the_fix(
    doctor: Doctor, sims: SimulatorServers
) -> None:
    run = await doctor(
        healthy_env(sims) | {"SHARED_STATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    assert run.code == 1
    assert run.failed("store") == ["reachable"]
    assert "→ fix: check SHARED_STATE_REDIS_URL" in run.line("store", "reachable")


async def test_refused_credentials_fail_without_showing_the_password(
    doctor: Doctor, sims: SimulatorServers, redis_server: RedisServer
) -> None:
    redis_server.start()
    password = "redis-doctor-wrong-password"
    client = Redis.from_url(redis_server.url)
    try:
        await client.config_set("requirepass", "the-right-password")  # this client stays in
        url = redis_server.url.replace("redis://", f"redis://:{password}@")
        run = await doctor(healthy_env(sims) | {"SHARED_STATE_REDIS_URL": url})
    finally:
        await client.config_set("requirepass", "")
        await client.aclose()
    assert run.code == 1
    assert run.failed("store") == ["reachable"]
    assert "set the password" in run.line("store", "reachable")
    assert password not in run.out + run.err


async def test_an_evicting_policy_fails_with_the_fix(
    doctor: Doctor, sims: SimulatorServers, redis_server: RedisServer
) -> None:
    redis_server.start()
    client = Redis.from_url(redis_server.url)
    try:
        await client.config_set("maxmemory-policy", "allkeys-lru")
        run = await doctor(healthy_env(sims) | {"SHARED_STATE_REDIS_URL": redis_server.url})
    finally:
        await client.config_set("maxmemory-policy", "noeviction")
        await client.aclose()
    assert run.code == 1
    assert run.failed("store") == ["eviction"]
    assert "maxmemory-policy allkeys-lru" in run.line("store", "eviction")
    assert "set maxmemory-policy noeviction" in run.line("store", "eviction")
