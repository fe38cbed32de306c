"""Faults of a deployment of replicas (contract §11), with real processes and a real
`redis-server`: the holder SIGKILLed; the holder SIGSTOPped in the middle of a sync past
its lease, then continued; the holder stopped with SIGTERM; Redis itself stopped while
serving and started again empty. Throughout, every `(version, content)` any replica
served is recorded: no version may be served with two contents and no replica may go
back."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from tests.replicas.conftest import (
    LEASE_TTL_S,
    REQUEST_TIMEOUT_S,
    WAIT_S,
    Cluster,
    Replica,
    content_of,
    event_stream,
)

SYNC_INTERVAL_S = "1"
TAKEOVER_SLACK_S = 6.0
"""Beyond the TTL: the renewal cadence, the keeper's next attempt, a loaded machine."""
STORE_SLACK_S = 2.0
"""Beyond the request timeout, for the 503 while Redis is away."""


def workspace_names(state: dict[str, Any]) -> list[str]:
    return [w["name"] for w in state["workspaces"]]


async def add_workspace_seen_everywhere(
    cluster: Cluster, name: str, replicas: list[Replica]
) -> dict[str, Any]:
    """A new workspace in AnythingLLM, then the state once every one of `replicas`
    serves it (the holder's scheduled sync picks it up)."""
    await cluster.sim("anythingllm", "POST", "/_sim/workspaces", json={"name": name})

    async def seen() -> dict[str, Any]:
        state: dict[str, Any] = (await cluster.converged(replicas)).json()
        assert name in workspace_names(state), workspace_names(state)
        return state

    return await cluster.eventually(seen, f"every replica serves workspace {name!r}")


async def assert_every_version_is_in_the_log(
    cluster: Cluster, replica: Replica, since: int, until: int
) -> None:
    """Resumed from `since`, the replica's stream replays `changed` events for exactly
    the versions since+1 … until, each once, each following the one before."""
    async with event_stream(cluster.client, replica, **{"Last-Event-ID": str(since)}) as reader:
        events = [await reader.event() for _ in range(until - since)]
    assert [(e.event, e.id) for e in events] == [
        ("changed", str(v)) for v in range(since + 1, until + 1)
    ]
    assert [e.json()["previousVersion"] for e in events] == list(range(since, until))


async def test_the_holder_killed_another_takes_over_within_the_ttl_and_versions_go_on(
    cluster: Cluster,
) -> None:
    """SIGKILL of the holder of three: one of the other two holds the lease within the
    TTL (+ slack), counts the takeover, logs in once and syncs, and the versions go on
    from where they were: none served with two contents, none going back, every one in
    the change log."""
    replicas = await cluster.start(3, SHARED_STATE_SYNC_INTERVAL_S=SYNC_INTERVAL_S)
    old = await cluster.holder()
    survivors = [r for r in replicas if r is not old]
    takeovers = {r.name: (await cluster.store(r))["takeovers"] for r in survivors}
    first_version = (await cluster.converged()).json()["version"]

    async with cluster.sampling(replicas) as ledger:
        before = await add_workspace_seen_everywhere(cluster, "Before Kill", replicas)
        await old.kill()
        killed_at = time.monotonic()
        new = await cluster.holder(survivors)
        took_s = time.monotonic() - killed_at
        after = await add_workspace_seen_everywhere(cluster, "After Kill", survivors)

    assert took_s <= LEASE_TTL_S + TAKEOVER_SLACK_S, took_s
    assert after["version"] > before["version"]
    assert "Before Kill" in workspace_names(after)
    ledger.assert_consistent()
    assert ledger.answers > len(ledger.contents)  # the samplers did read, over and over
    for survivor in survivors:
        store = await cluster.store(survivor)
        expected = takeovers[survivor.name] + (1 if survivor is new else 0)
        assert store["takeovers"] == expected, (survivor, store)
        metrics = await cluster.metrics(survivor)
        assert metrics["shared_state_lease_takeovers_total"] == expected, survivor
        assert metrics["shared_state_lease_held"] == (1 if survivor is new else 0), survivor
    assert (await cluster.sim_stats())["librechat"]["logins"] == 2  # one per tenure
    other = next(r for r in survivors if r is not new)
    await assert_every_version_is_in_the_log(cluster, other, first_version, after["version"])


async def test_a_holder_paused_mid_sync_cannot_publish_a_stale_state_and_then_follows(
    cluster: Cluster,
) -> None:
    """The holder SIGSTOPped in the middle of a sync (its AnythingLLM read held by the
    simulator), past its lease; the other takes over and makes two changes (a write, then
    a sync); SIGCONT: the old holder's sync goes on from its old state, with a result it
    would publish over its successor's. It is refused: no version served with two
    contents, none going back; the old holder follows and serves the newer state."""
    replicas = await cluster.start(2)
    old = await cluster.holder()
    (other,) = [r for r in replicas if r is not old]
    first_version = (await cluster.converged()).json()["version"]
    reads_before = sum((await cluster.sim_stats())["anythingllm"]["paths"].values())

    async with cluster.sampling(replicas) as ledger:
        # Held for an hour: the one read of the old holder's sync; later reads answer at once.
        await cluster.sim(
            "anythingllm", "PUT", "/_sim/fault", json={"reads": "slow", "delay_s": 3600}
        )
        stale_sync = asyncio.create_task(cluster.client.post(old.api("/sync"), timeout=60))

        async def read_held() -> None:
            reads = sum((await cluster.sim_stats())["anythingllm"]["paths"].values())
            assert reads > reads_before, reads

        await cluster.eventually(read_held, "the holder's sync reads AnythingLLM")
        old.pause()
        paused_at = time.monotonic()
        await cluster.sim("anythingllm", "PUT", "/_sim/fault", json={"reads": "ok"})
        assert await cluster.holder([other]) is other
        took_s = time.monotonic() - paused_at
        written = await cluster.client.post(
            other.api("/llm-settings"), json={"model": "gpt-4o-mini"}
        )
        assert written.status_code == 200, written.text
        await cluster.sim("anythingllm", "POST", "/_sim/workspaces", json={"name": "While Paused"})
        synced = await cluster.client.post(other.api("/sync"))
        assert synced.status_code == 200, synced.text
        newer: dict[str, Any] = (await cluster.state(other)).json()
        old.resume()

        async def following() -> dict[str, Any]:
            store = await cluster.store(old)
            assert not store["holding"], store
            assert store["leaseHolder"] == (await cluster.store(other))["replica"], store
            assert store["status"] == "ok", store
            return store

        await cluster.eventually(following, "the old holder follows")
        caught_up: dict[str, Any] = (await cluster.converged(replicas)).json()
        assert await cluster.holder(replicas) is other

        async def sampled_caught_up() -> None:
            assert ledger.latest.get(old.name, 0) >= caught_up["version"], ledger.latest

        await cluster.eventually(sampled_caught_up, "the old holder's own reads catch up")
        stale_answer = await asyncio.wait_for(stale_sync, WAIT_S)

    assert took_s <= LEASE_TTL_S + TAKEOVER_SLACK_S, took_s
    assert newer["version"] == first_version + 2
    assert "While Paused" in workspace_names(newer)
    assert caught_up["version"] >= newer["version"]
    assert caught_up["settings"]["llm"]["model"] == "gpt-4o-mini"
    assert "While Paused" in workspace_names(caught_up)
    assert caught_up["sources"]["anythingllm"]["status"] == "ok"  # not the stale sync's
    ledger.assert_consistent()
    assert stale_answer.status_code in {200, 503}, stale_answer.text
    if stale_answer.status_code == 200:  # joined to what the shared state holds
        assert stale_answer.json()["version"] >= newer["version"], stale_answer.text
    await assert_every_version_is_in_the_log(cluster, old, first_version, caught_up["version"])


async def test_redis_stopped_replicas_serve_what_they_hold_refuse_writes_and_catch_up(
    cluster: Cluster,
) -> None:
    """Redis stopped: each replica still answers the last state and `/readyz` 200,
    `/status.store` says `unavailable` with the error, a write and `POST /sync` answer 503
    `store_unavailable` within the request timeout and nothing reaches an upstream.
    Redis started again, empty: the replicas catch up by themselves (one state, one
    ETag, no lower version) and a write works again."""
    replicas = await cluster.start(2)
    await cluster.holder()
    before = await cluster.converged()
    version = before.json()["version"]

    cluster.redis_server.stop()
    for replica in replicas:
        served = await cluster.state(replica)
        assert served.json()["version"] == version
        assert content_of(served.json()) == content_of(before.json())
        assert served.headers["etag"] == before.headers["etag"]
        assert (await cluster.client.get(f"{replica.url}/readyz")).status_code == 200

    async def unavailable(replica: Replica) -> None:
        store = await cluster.store(replica)
        assert store["status"] == "unavailable", store
        assert isinstance(store["lastError"], str), store
        assert (await cluster.metrics(replica))["shared_state_store_up"] == 0

    for replica in replicas:
        await cluster.eventually(partial(unavailable, replica), f"{replica} sees Redis gone")

    async def refused(replica: Replica, path: str, body: dict[str, Any] | None) -> float:
        started = time.monotonic()
        answer = await cluster.client.post(replica.api(path), json=body)
        took_s = time.monotonic() - started
        assert answer.status_code == 503, (replica, path, answer.status_code, answer.text)
        assert answer.json()["code"] == "store_unavailable", answer.text
        return took_s

    tries: list[tuple[Replica, str, dict[str, Any] | None]]
    tries = [(r, "/llm-settings", {"model": "gpt-4o-mini"}) for r in replicas]
    tries += [(r, "/sync", None) for r in replicas]
    took = await asyncio.gather(*(refused(*t) for t in tries))
    assert max(took) <= REQUEST_TIMEOUT_S + STORE_SLACK_S, took
    assert await cluster.sim_writes() == {"anythingllm": [], "librechat": []}
    for replica in replicas:
        assert (await cluster.state(replica)).json()["version"] == version

    cluster.redis_server.start()

    async def back(replica: Replica) -> None:
        store = await cluster.store(replica)
        assert store["status"] == "ok", store
        assert (await cluster.metrics(replica))["shared_state_store_up"] == 1

    for replica in replicas:
        await cluster.eventually(partial(back, replica), f"{replica} sees Redis back")
    caught_up = await cluster.converged()
    assert caught_up.json()["version"] >= version
    holder = await cluster.holder()
    follower = next(r for r in replicas if r is not holder)
    # The first write after that works: one that meets a takeover waits for the new
    # holder in the queue (a replica that finds it holds no lease hands it back).
    answer = await cluster.client.post(follower.api("/llm-settings"), json={"model": "gpt-4o-mini"})
    assert answer.status_code == 200, answer.text
    writes = await cluster.sim_writes()
    assert [len(writes["anythingllm"]), len(writes["librechat"])] == [1, 1], writes
    after = (await cluster.converged()).json()
    assert after["version"] > caught_up.json()["version"]
    assert after["settings"]["llm"]["model"] == "gpt-4o-mini"
    cluster.ledger.assert_consistent()


async def test_the_holder_stopped_with_sigterm_exits_0_and_the_other_goes_on(
    cluster: Cluster,
) -> None:
    """SIGTERM of the holder: it exits 0 with no traceback; the other replica takes the
    lease and syncs, at the next version."""
    replicas = await cluster.start(2)
    old = await cluster.holder()
    (other,) = [r for r in replicas if r is not old]
    version = (await cluster.converged()).json()["version"]

    code = await old.terminate()
    assert code == 0, old.stderr()
    assert "Traceback" not in old.stderr()
    assert await cluster.holder([other]) is other
    await cluster.sim("anythingllm", "POST", "/_sim/workspaces", json={"name": "After Sigterm"})
    synced = await cluster.client.post(other.api("/sync"))
    assert synced.status_code == 200, synced.text
    assert synced.json()["version"] == version + 1
    assert "After Sigterm" in workspace_names((await cluster.state(other)).json())
