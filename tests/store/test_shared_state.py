"""The shared state and its change log against a real redis-server: fenced, atomic
publishes; "every version after N" or "too old"; renewed timestamps (`touch`); and a
follower that sees every change in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from shared_state.domain.events import ChangedEvent, changed_json, diff_items
from shared_state.domain.items import ItemList
from shared_state.store.keys import StoreKeys
from shared_state.store.lease import Lease
from shared_state.store.shared_state import (
    SharedStateStore,
    StaleFence,
    StoredState,
    VersionNotNewer,
)

GENEROUS_S = 10.0


def event(version: int, previous: int | None = None) -> ChangedEvent:
    """The event of `version`: workspace `w<version>` added."""
    before = ItemList.from_items([])
    after = ItemList.from_items([{"id": f"w{version}", "name": 'é\u2028"quoted"'}])
    return ChangedEvent(
        version=version,
        previous_version=version - 1 if previous is None else previous,
        timestamp=datetime(2026, 12, 2, tzinfo=UTC),
        changes={"workspaces": diff_items(before, after)},
    )


def snapshot(version: int) -> bytes:
    return b'{"version":%d}' % version


class Holder:
    """A replica that took the lease and publishes versions one after another."""

    def __init__(self, store: SharedStateStore, lease: Lease) -> None:
        self.store = store
        self.lease = lease

    async def publish(self, version: int) -> None:
        assert self.lease.fence is not None
        await self.store.publish(
            holder=self.lease.holder,
            fence=self.lease.fence,
            version=version,
            snapshot=snapshot(version),
            event=event(version),
        )


@pytest.fixture
def keys(prefix: str) -> StoreKeys:
    return StoreKeys(prefix)


@pytest.fixture
def store(redis: Redis, keys: StoreKeys) -> SharedStateStore:
    return SharedStateStore(redis, keys, replay_versions=5)


@pytest.fixture
async def holder(redis: Redis, keys: StoreKeys, store: SharedStateStore) -> Holder:
    lease = Lease(redis, keys, "holder", 30)
    assert await lease.acquire() is not None
    return Holder(store, lease)


def as_bytes(events: list[ChangedEvent] | None) -> list[bytes] | None:
    return None if events is None else [changed_json(e) or b"" for e in events]


async def test_a_publish_is_the_state_its_version_and_its_entry(
    holder: Holder, store: SharedStateStore
) -> None:
    assert await store.current() is None
    await holder.store.publish(
        holder="holder", fence=1, version=1, snapshot=snapshot(1), event=None
    )
    await holder.publish(2)

    assert await store.current() == StoredState(version=2, fence=1, snapshot=snapshot(2), highest=2)
    assert as_bytes(await store.since(1)) == as_bytes([event(2)])
    assert await store.since(2) == []


async def test_the_new_holder_is_published_and_the_paused_one_refused(
    redis: Redis, keys: StoreKeys, store: SharedStateStore
) -> None:
    paused = Lease(redis, keys, "a", 0.2)
    assert await paused.acquire() == 1
    await store.publish(holder="a", fence=1, version=1, snapshot=snapshot(1), event=None)
    remaining_ms = await redis.pttl(keys.lease)
    await asyncio.sleep(max(remaining_ms, 0) / 1000 + 0.01)  # its lease runs out
    successor = Lease(redis, keys, "b", 30)
    assert await successor.acquire() == 2

    # The paused holder wakes up and publishes with the token it still has: refused.
    with pytest.raises(StaleFence):
        await store.publish(holder="a", fence=1, version=2, snapshot=b'{"stale":1}', event=event(2))
    await store.publish(holder="b", fence=2, version=2, snapshot=snapshot(2), event=event(2))
    with pytest.raises(StaleFence):
        await store.publish(holder="a", fence=1, version=3, snapshot=b'{"stale":1}', event=event(3))

    assert await store.current() == StoredState(version=2, fence=2, snapshot=snapshot(2), highest=2)
    assert as_bytes(await store.since(1)) == as_bytes([event(2)])


async def test_nobody_publishes_without_a_lease(store: SharedStateStore) -> None:
    with pytest.raises(StaleFence):
        await store.publish(holder="nobody", fence=1, version=1, snapshot=snapshot(1), event=None)
    assert await store.current() is None


async def test_versions_never_go_backwards(holder: Holder, store: SharedStateStore) -> None:
    await holder.publish(1)
    await holder.publish(2)
    with pytest.raises(VersionNotNewer) as refused:
        await holder.publish(2)
    assert refused.value.current == 2
    with pytest.raises(VersionNotNewer):
        await holder.publish(1)
    assert (await store.current()) == StoredState(
        version=2, fence=1, snapshot=snapshot(2), highest=2
    )


async def test_since_answers_every_version_after_n_or_too_old(
    redis: Redis, keys: StoreKeys, holder: Holder, store: SharedStateStore
) -> None:
    for version in range(1, 9):
        await holder.publish(version)

    assert await redis.xlen(keys.log) == 5  # capped at replay_versions
    assert as_bytes(await store.since(3)) == as_bytes([event(v) for v in range(4, 9)])
    assert as_bytes(await store.since(7)) == as_bytes([event(8)])
    assert await store.since(8) == []
    assert await store.since(2) is None  # too old: version 3 is no longer held
    assert await store.since(0) is None
    assert await store.since(9) is None  # ahead of the current version


async def test_a_gap_starts_the_log_over(holder: Holder, store: SharedStateStore) -> None:
    for version in (1, 2, 3):
        await holder.publish(version)
    # An event from another version than the shared one (a restore elsewhere, say).
    await store.publish(
        holder="holder", fence=1, version=5, snapshot=snapshot(5), event=event(5, 4)
    )

    assert await store.since(3) is None
    assert await store.since(4) is None
    assert await store.since(5) == []
    await holder.publish(6)
    assert as_bytes(await store.since(5)) == as_bytes([event(6)])


async def test_no_replay_when_none_is_kept(redis: Redis, keys: StoreKeys, holder: Holder) -> None:
    store = SharedStateStore(redis, keys, replay_versions=0)
    holder.store = store
    for version in (1, 2):
        await holder.publish(version)
    assert await store.since(1) is None
    assert await store.since(2) == []


async def test_a_redis_that_comes_back_empty_takes_the_holders_state(
    redis: Redis, keys: StoreKeys, store: SharedStateStore
) -> None:
    lease = Lease(redis, keys, "a", 30)
    assert await lease.acquire() == 1
    await store.publish(holder="a", fence=1, version=1, snapshot=snapshot(1), event=None)
    await redis.flushdb()  # Redis restarted with nothing
    assert await store.current() is None
    assert await store.since(1) is None

    assert await lease.acquire() == 1  # the key is gone: taken again, the counter anew
    await store.publish(holder="a", fence=1, version=7, snapshot=snapshot(7), event=event(7))

    assert await store.current() == StoredState(version=7, fence=1, snapshot=snapshot(7), highest=7)
    assert await store.since(6) is None
    assert await store.since(7) == []


async def test_a_follower_sees_every_change_in_order(
    redis: Redis, keys: StoreKeys, holder: Holder
) -> None:
    await holder.publish(1)
    follower = SharedStateStore(redis, keys, replay_versions=5)
    seen: list[int] = []
    after = 1
    for batch in ((2,), (3, 4), (5,)):
        waiting = asyncio.create_task(follower.wait_for_change(after, block_ms=5000))
        for version in batch:
            await holder.publish(version)
        assert await asyncio.wait_for(waiting, GENEROUS_S) is True
        update = await follower.changes_after(after)
        assert update is not None
        assert update.events is not None
        assert update.state == StoredState(
            version=batch[-1], fence=1, snapshot=snapshot(batch[-1]), highest=batch[-1]
        )
        seen += [e.version for e in update.events]
        after = update.state.version
    assert seen == [2, 3, 4, 5]
    assert await follower.wait_for_change(after, block_ms=50) is False  # nothing newer


async def test_a_follower_behind_the_log_is_told_to_start_over(
    redis: Redis, keys: StoreKeys, holder: Holder
) -> None:
    for version in range(1, 10):
        await holder.publish(version)
    follower = SharedStateStore(redis, keys, replay_versions=5)
    update = await follower.changes_after(2)
    assert update is not None
    assert update.events is None
    assert update.state.version == 9


async def test_a_touch_renews_the_snapshot_at_the_same_version(
    holder: Holder, store: SharedStateStore
) -> None:
    await holder.publish(1)
    assert await store.touched() == (1, 0, 1)
    fence = holder.lease.fence
    assert fence is not None
    assert await store.touch(holder="holder", fence=fence, version=1, snapshot=b"t1") == 1
    assert await store.touch(holder="holder", fence=fence, version=1, snapshot=b"t2") == 2

    assert await store.current() == StoredState(
        version=1, fence=1, snapshot=b"t2", touch=2, highest=1
    )
    assert await store.since(0) is None  # no log entry: a touch is no version
    assert await store.since(1) == []
    with pytest.raises(VersionNotNewer):
        await store.touch(holder="holder", fence=fence, version=2, snapshot=b"t3")
    with pytest.raises(StaleFence):
        await store.touch(holder="other", fence=fence, version=1, snapshot=b"t3")
    await holder.publish(2)
    assert await store.touched() == (2, 0, 2)  # a new version starts the count over


async def test_a_redis_without_state_has_nothing_touched(store: SharedStateStore) -> None:
    assert await store.touched() is None


async def test_a_replica_ahead_of_a_redis_that_lost_data_is_reported(
    holder: Holder, store: SharedStateStore
) -> None:
    assert await store.report(9) == 9  # Redis empty: a replica says it has seen 9
    assert await store.touched() is None  # still no state
    await holder.publish(4)
    assert await store.touched() == (4, 0, 9)
    assert await store.report(7) == 9  # lower reports do not count
    await holder.publish(10)
    assert await store.touched() == (10, 0, 10)
