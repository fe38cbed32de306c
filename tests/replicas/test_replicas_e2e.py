"""Several replicas on one Redis, end to end (contract §11): `shared-state serve`
subprocesses against the simulators. One poller and one login however many replicas
run; one version and one ETag everywhere; a write, a sync or a refresh on a follower is
carried out by the holder and seen by every replica and every replica's event stream;
`If-Match`, `Idempotency-Key` and `Last-Event-ID` honoured by a replica that did not
hand them out."""

from __future__ import annotations

import contextlib
import re
import time
import uuid

from tests.replicas.conftest import Cluster, Replica, event_stream

SYNC_INTERVAL_S = 0.5
"""Short, so that three syncs take a second and a half; only the holder runs them."""
SECTIONS = ("/user", "/settings", "/workspaces", "/conversations")
ETAG = re.compile(r'W/"(?P<epoch>[^"-]+)-(?P<version>\d+)"')


def upstream_requests(metrics: dict[str, float]) -> float:
    """All requests this replica sent to any upstream, by its own `/metrics`."""
    return sum(
        v for k, v in metrics.items() if k.startswith("shared_state_upstream_requests_total")
    )


def syncs(metrics: dict[str, float]) -> float:
    return metrics.get("shared_state_sync_duration_seconds_count", 0.0)


async def followers_of(cluster: Cluster) -> tuple[Replica, list[Replica]]:
    holder = await cluster.holder()
    return holder, [r for r in cluster.alive if r is not holder]


async def assert_one_poller(cluster: Cluster) -> None:
    """Over three of the holder's scheduled syncs, each upstream route read once a sync
    grew by the holder's syncs (N pollers would make it N times that, about N reads per
    interval), and no follower sent a single upstream request."""
    holder, followers = await followers_of(cluster)
    stats_before = await cluster.sim_stats()
    syncs_before = syncs(await cluster.metrics(holder))
    started = time.monotonic()

    async def three_more_syncs() -> float:
        done = syncs(await cluster.metrics(holder))
        assert done >= syncs_before + 3, done
        return done

    syncs_after = await cluster.eventually(three_more_syncs, "the holder syncs on schedule")
    elapsed_s = time.monotonic() - started
    stats_after = await cluster.sim_stats()

    holder_syncs = syncs_after - syncs_before
    for upstream, path in (("anythingllm", "/api/v1/system"), ("librechat", "/api/user")):
        reads = stats_after[upstream]["paths"][path] - stats_before[upstream]["paths"].get(path, 0)
        assert abs(reads - holder_syncs) <= 1, (upstream, path, reads, holder_syncs)
        assert 1 <= reads <= elapsed_s / SYNC_INTERVAL_S + 2, (upstream, path, reads, elapsed_s)
    assert upstream_requests(await cluster.metrics(holder)) > 0
    for follower in followers:
        assert upstream_requests(await cluster.metrics(follower)) == 0, follower
        assert syncs(await cluster.metrics(follower)) == 0, follower


async def assert_same_answers(cluster: Cluster) -> None:
    """Every replica answers the state and each section with the same body and ETag, the
    state's ETag `W/"<epoch>-<version>"` with the version it serves."""
    state = await cluster.converged()
    version = state.json()["version"]
    match = ETAG.fullmatch(state.headers["etag"])
    assert match is not None, state.headers["etag"]
    assert int(match["version"]) == version
    for path in SECTIONS:
        answers = [await cluster.state(r, path) for r in cluster.alive]
        assert len({a.headers["etag"] for a in answers}) == 1, (path, answers)
        assert len({a.content for a in answers}) == 1, path
    assert (await cluster.converged()).json()["version"] == version  # nothing moved meanwhile


async def test_two_then_three_replicas_poll_once_log_in_once_and_serve_one_state(
    cluster: Cluster,
) -> None:
    """Two replicas, then a third: the simulators see the reads of one poller and one
    login each, only the holder calls an upstream, and every replica answers the same
    version and ETag for the state and each section."""
    interval = {"SHARED_STATE_SYNC_INTERVAL_S": str(SYNC_INTERVAL_S)}
    await cluster.start(2, **interval)
    await assert_one_poller(cluster)
    await assert_same_answers(cluster)

    await cluster.start(1, **interval)
    await assert_one_poller(cluster)
    await assert_same_answers(cluster)

    stats = await cluster.sim_stats()
    assert stats["librechat"]["logins"] == 1
    assert stats["anythingllm"]["logins"] == 1
    stores = [await cluster.store(r) for r in cluster.alive]
    assert {s["kind"] for s in stores} == {"redis"}
    assert len({s["replica"] for s in stores}) == 3  # three replicas, three ids
    holder = await cluster.holder()
    for replica in cluster.alive:
        metrics = await cluster.metrics(replica)
        is_holder = 1 if replica is holder else 0
        assert metrics["shared_state_store_up"] == 1, replica
        assert metrics["shared_state_lease_held"] == is_holder, replica
        assert metrics["shared_state_lease_takeovers_total"] == is_holder, replica


async def test_a_write_on_a_follower_reaches_the_upstreams_once_and_every_replica_and_stream(
    cluster: Cluster,
) -> None:
    """`POST /llm-settings` on a follower: 200, one write to each upstream, the
    follower's next GET has the new version, every replica then serves it, and every
    replica's event stream sends the `changed` event with that id."""
    replicas = await cluster.start(3)
    _, followers = await followers_of(cluster)
    follower = followers[0]
    version = (await cluster.converged()).json()["version"]
    assert (await cluster.sim_writes()) == {"anythingllm": [], "librechat": []}

    async with contextlib.AsyncExitStack() as streams:
        readers = [
            await streams.enter_async_context(event_stream(cluster.client, r)) for r in replicas
        ]
        for reader in readers:
            snapshot = await reader.event()
            assert (snapshot.event, snapshot.id) == ("snapshot", str(version))

        answer = await cluster.client.post(
            follower.api("/llm-settings"), json={"model": "gpt-4o-mini"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "gpt-4o-mini"
        own = (await cluster.state(follower)).json()  # at once: it answered with its copy
        assert own["version"] == version + 1
        assert own["settings"]["llm"]["model"] == "gpt-4o-mini"

        writes = await cluster.sim_writes()
        assert [len(writes["anythingllm"]), len(writes["librechat"])] == [1, 1], writes
        everywhere = (await cluster.converged()).json()
        assert everywhere["version"] == version + 1
        assert everywhere["settings"]["llm"]["model"] == "gpt-4o-mini"

        for replica, reader in zip(replicas, readers, strict=True):
            changed = await reader.event()
            assert (changed.event, changed.id) == ("changed", str(version + 1)), replica
            event = changed.json()
            assert event["previousVersion"] == version
            assert event["changes"]["settings"]["llm"]["model"] == "gpt-4o-mini"


async def test_if_match_from_one_replica_is_honoured_by_another(cluster: Cluster) -> None:
    """The state's ETag from a follower used on the holder, and the settings' ETag from
    the holder used on the follower, are accepted while current; once a change made them
    stale, either replica answers 412 `version_mismatch` and no upstream is written."""
    await cluster.start(2)
    holder, (follower,) = await followers_of(cluster)
    state_etag = (await cluster.converged()).headers["etag"]
    assert (await cluster.state(follower)).headers["etag"] == state_etag

    first = await cluster.client.post(
        holder.api("/llm-settings"), json={"model": "gpt-4o-mini"}, headers={"If-Match": state_etag}
    )
    assert first.status_code == 200, first.text
    await cluster.converged()
    settings_etag = (await cluster.state(holder, "/settings")).headers["etag"]
    second = await cluster.client.post(
        follower.api("/llm-settings"),
        json={"temperature": 0.4},
        headers={"If-Match": settings_etag},
    )
    assert second.status_code == 200, second.text
    assert second.json()["temperature"] == 0.4
    await cluster.converged()
    writes = await cluster.sim_writes()

    for replica, stale in ((follower, state_etag), (holder, state_etag), (holder, settings_etag)):
        refused = await cluster.client.post(
            replica.api("/llm-settings"), json={"model": "gpt-4.1"}, headers={"If-Match": stale}
        )
        assert refused.status_code == 412, (replica, refused.text)
        assert refused.json()["code"] == "version_mismatch"
    assert await cluster.sim_writes() == writes
    assert (await cluster.converged()).json()["settings"]["llm"]["model"] == "gpt-4o-mini"


async def test_an_idempotency_key_given_to_one_replica_is_replayed_by_another(
    cluster: Cluster,
) -> None:
    """The same key and body on a follower, then on the holder: one write to the
    upstreams and the first answer replayed; another body with that key: 422
    `idempotency_key_reused`, nothing written."""
    await cluster.start(2)
    holder, (follower,) = await followers_of(cluster)
    headers = {"Idempotency-Key": f"replica-test-{uuid.uuid4()}"}

    first = await cluster.client.post(
        follower.api("/llm-settings"), json={"model": "gpt-4o-mini"}, headers=headers
    )
    assert first.status_code == 200, first.text
    version = (await cluster.converged()).json()["version"]
    replayed = await cluster.client.post(
        holder.api("/llm-settings"), json={"model": "gpt-4o-mini"}, headers=headers
    )
    reused = await cluster.client.post(
        holder.api("/llm-settings"), json={"model": "gpt-4.1"}, headers=headers
    )
    reused_on_follower = await cluster.client.post(
        follower.api("/llm-settings"), json={"model": "gpt-4.1"}, headers=headers
    )

    assert (replayed.status_code, replayed.json()) == (first.status_code, first.json())
    for answer in (reused, reused_on_follower):
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "idempotency_key_reused"
    writes = await cluster.sim_writes()
    assert [len(writes["anythingllm"]), len(writes["librechat"])] == [1, 1], writes
    assert (await cluster.converged()).json()["version"] == version


async def test_last_event_id_from_one_replica_resumes_on_another(cluster: Cluster) -> None:
    """A stream on one replica saw version N; resumed on the other with `Last-Event-ID: N`
    it gets exactly the changes N+1 and N+2 made meanwhile, in order, no snapshot, then
    the next live one: nothing missed, nothing repeated."""
    first, second = await cluster.start(2)
    version = (await cluster.converged()).json()["version"]

    async def write_ui(replica: Replica, **values: str) -> None:
        answer = await cluster.client.post(replica.api("/ui-settings"), json=values)
        assert answer.status_code == 200, answer.text

    async with event_stream(cluster.client, first) as reader:
        snapshot = await reader.event()
        assert (snapshot.event, snapshot.id) == ("snapshot", str(version))
        await write_ui(second, theme="dark")
        seen = await reader.event()
        assert (seen.event, seen.id) == ("changed", str(version + 1))
        cursor = str(version + 1)

    await write_ui(first, theme="light")
    await write_ui(second, fontSize="large")
    await cluster.converged()
    async with event_stream(cluster.client, second, **{"Last-Event-ID": cursor}) as reader:
        missed = [await reader.event(), await reader.event()]
        await write_ui(first, theme="dark")
        live = await reader.event()

    assert [(e.event, e.id) for e in [*missed, live]] == [
        ("changed", str(version + 2)),
        ("changed", str(version + 3)),
        ("changed", str(version + 4)),
    ]
    assert missed[0].json()["changes"]["settings"]["ui"]["theme"] == "light"
    assert missed[1].json()["changes"]["settings"]["ui"]["fontSize"] == "large"
    assert live.json()["previousVersion"] == version + 3


async def test_sync_and_refresh_on_a_follower_answer_with_the_holders_result(
    cluster: Cluster,
) -> None:
    """`POST /sync` and `?refresh=true` on a follower: each answers after one sync by the
    holder (one more read of the upstream, none by the follower), with the new data at a
    version the follower then serves."""
    await cluster.start(2)
    holder, (follower,) = await followers_of(cluster)
    version = (await cluster.converged()).json()["version"]
    before = await cluster.sim_stats()

    await cluster.sim("anythingllm", "POST", "/_sim/workspaces", json={"name": "Replica Sync"})
    synced = await cluster.client.post(follower.api("/sync"))
    assert synced.status_code == 200, synced.text
    assert synced.json()["version"] == version + 1
    state = (await cluster.state(follower)).json()
    assert state["version"] == version + 1
    assert "Replica Sync" in [w["name"] for w in state["workspaces"]]

    await cluster.sim("librechat", "POST", "/_sim/conversations", json={"title": "Replica Refresh"})
    refreshed = (await cluster.state(follower, refresh="true")).json()
    assert refreshed["version"] == version + 2
    assert refreshed["conversations"][0]["title"] == "Replica Refresh"
    assert (await cluster.state(follower)).json()["version"] == version + 2

    after = await cluster.sim_stats()
    for upstream, path in (("anythingllm", "/api/v1/system"), ("librechat", "/api/user")):
        assert after[upstream]["paths"][path] - before[upstream]["paths"][path] == 2, upstream
    assert upstream_requests(await cluster.metrics(follower)) == 0
    assert upstream_requests(await cluster.metrics(holder)) > 0
    assert (await cluster.converged()).json()["version"] == version + 2
