"""The shared state and its change log against a real redis-server: fenced, atomic
publishes; "every version after N" or "too old"; a follower that sees every change in
order; and the in-memory mirror a replica serves from."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from shared_state.domain.events import ChangedEvent, changed_json, diff_items
from shared_state.domain.items import ItemList
from shared_state.store.changelog import MirroredChangeLog
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


def state_json(version: int) -> bytes:
    return b'{"version":%d}' % version


class Holder:
    """A replica that took the lease and publishes versions one after another."""

    def __init__(self, store: SharedStateStore, lease: Lease) -> None:
        self.store = store
        self.lease = lease

    async def publish(self, version: int) -> None:
        assert self.lease.fence is not None
        await self.store.publish(
            fence=self.lease.fence,
            version=version,
            state_json=state_json(version),
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
    await holder.store.publish(fence=1, version=1, state_json=state_json(1), event=None)
    await holder.publish(2)

    assert await store.current() == StoredState(version=2, json=state_json(2), fence=1)
    assert as_bytes(await store.since(1)) == as_bytes([event(2)])
    assert await store.since(2) == []


async def test_the_new_holder_is_published_and_the_paused_one_refused(
    redis: Redis, keys: StoreKeys, store: SharedStateStore
) -> None:
    paused = Lease(redis, keys, "a", 0.2)
    assert await paused.acquire() == 1
    await store.publish(fence=1, version=1, state_json=state_json(1), event=None)
    remaining_ms = await redis.pttl(keys.lease)
    await asyncio.sleep(max(remaining_ms, 0) / 1000 + 0.01)  # its lease runs out
    successor = Lease(redis, keys, "b", 30)
    assert await successor.acquire() == 2

    # The paused holder wakes up and publishes with the token it still has: refused.
    with pytest.raises(StaleFence):
        await store.publish(fence=1, version=2, state_json=b'{"stale":1}', event=event(2))
    await store.publish(fence=2, version=2, state_json=state_json(2), event=event(2))
    with pytest.raises(StaleFence):
        await store.publish(fence=1, version=3, state_json=b'{"stale":1}', event=event(3))

    assert await store.current() == StoredState(version=2, json=state_json(2), fence=2)
    assert as_bytes(await store.since(1)) == as_bytes([event(2)])


async def test_nobody_publishes_without_a_lease(store: SharedStateStore) -> None:
    with pytest.raises(StaleFence):
        await store.publish(fence=1, version=1, state_json=state_json(1), event=None)
    assert await store.current() is None


async def test_versions_never_go_backwards(holder: Holder, store: SharedStateStore) -> None:
    await holder.publish(1)
    await holder.publish(2)
    with pytest.raises(VersionNotNewer) as refused:
        await holder.publish(2)
    assert refused.value.current == 2
    with pytest.raises(VersionNotNewer):
        await holder.publish(1)
    assert (await store.current()) == StoredState(version=2, json=state_json(2), fence=1)


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
    await store.publish(fence=1, version=5, state_json=state_json(5), event=event(5, 4))

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
    await store.publish(fence=1, version=1, state_json=state_json(1), event=None)
    await redis.flushdb()  # Redis restarted with nothing
    assert await store.current() is None
    assert await store.since(1) is None

    assert await lease.acquire() == 1  # the key is gone: taken again, the counter anew
    await store.publish(fence=1, version=7, state_json=state_json(7), event=event(7))

    assert await store.current() == StoredState(version=7, json=state_json(7), fence=1)
    assert await store.since(6) is None
    assert await store.since(7) == []


async def test_a_follower_sees_every_change_in_order(
    redis: Redis, keys: StoreKeys, holder: Holder
) -> None:
    await holder.publish(1)
    follower = SharedStateStore(redis, keys, replay_versions=5).follow(1, block_ms=200)
    seen: list[int] = []
    try:
        for version in (2, 3, 4):
            await holder.publish(version)
            update = await asyncio.wait_for(anext(follower), GENEROUS_S)
            assert update.state == StoredState(version=version, json=state_json(version), fence=1)
            assert update.events is not None
            seen += [e.version for e in update.events]
        await holder.publish(5)
        await holder.publish(6)
        update = await asyncio.wait_for(anext(follower), GENEROUS_S)
        assert update.events is not None
        seen += [e.version for e in update.events]
    finally:
        await follower.aclose()
    assert seen == [2, 3, 4, 5, 6]


async def test_a_follower_behind_the_log_is_told_to_start_over(
    redis: Redis, keys: StoreKeys, holder: Holder
) -> None:
    for version in range(1, 10):
        await holder.publish(version)
    follower = SharedStateStore(redis, keys, replay_versions=5)
    stream = follower.follow(2)
    first = await asyncio.wait_for(anext(stream), GENEROUS_S)
    await stream.aclose()
    assert first.events is None
    assert first.state.version == 9


async def test_the_mirror_answers_as_redis_does(
    redis: Redis, keys: StoreKeys, holder: Holder, store: SharedStateStore
) -> None:
    for version in range(1, 8):
        await holder.publish(version)
    mirror = MirroredChangeLog(5)
    assert await mirror.load(store) is True
    assert mirror.version == 7
    for cursor in range(0, 9):
        assert as_bytes(mirror.since(cursor)) == as_bytes(await store.since(cursor))

    await holder.publish(8)
    update = await store.changes_after(7)
    assert update is not None
    mirror.apply(update)
    assert as_bytes(mirror.since(6)) == as_bytes([event(7), event(8)])

    await store.publish(fence=1, version=10, state_json=state_json(10), event=None)
    update = await store.changes_after(8)
    assert update is not None
    mirror.apply(update)
    assert (mirror.version, mirror.since(8), mirror.since(10)) == (10, None, [])


async def test_an_empty_redis_leaves_the_mirror_as_it_was(store: SharedStateStore) -> None:
    mirror = MirroredChangeLog(5, version=3)
    assert await mirror.load(store) is False
    assert mirror.version == 3
