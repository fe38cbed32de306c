"""The lease against a real redis-server: one holder at a time, renewal, expiry,
takeover with a newer fencing token, release, and the keeper that does it all in the
background."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared_state.store.keys import StoreKeys
from shared_state.store.lease import Lease, LeaseKeeper

GENEROUS_S = 10.0
"""Bound for what must happen within a TTL or two: the machine may be loaded."""


async def wait_for_expiry(redis: Redis, keys: StoreKeys) -> None:
    """Let the lease run out: waiting for time to pass is the behaviour under test."""
    remaining_ms = await redis.pttl(keys.lease)
    if remaining_ms > 0:
        await asyncio.sleep(remaining_ms / 1000 + 0.01)
    # Redis checks a key's expiry on every access (to the millisecond): it is gone now.
    assert await redis.exists(keys.lease) == 0


async def test_one_holder_at_a_time_with_a_fencing_token(redis: Redis, prefix: str) -> None:
    keys = StoreKeys(prefix)
    first, second = Lease(redis, keys, "a", 5), Lease(redis, keys, "b", 5)

    assert await first.acquire() == 1
    assert await second.acquire() is None
    assert first.held
    assert not second.held
    assert second.fence is None
    assert 0 < second.retry_after_s <= 5
    assert await first.current_holder() == "a"
    assert await second.current_holder() == "a"
    assert await redis.get(keys.fence) == b"1"


async def test_renewal_extends_the_lease_and_keeps_the_token(redis: Redis, prefix: str) -> None:
    keys = StoreKeys(prefix)
    lease = Lease(redis, keys, "a", 5)
    assert await lease.acquire() == 1
    await redis.pexpire(keys.lease, 100)  # as if most of the TTL had passed

    assert await lease.renew() is True
    assert await redis.pttl(keys.lease) > 4000
    assert lease.fence == 1
    assert await lease.acquire() == 1  # acquiring again while holding renews


async def test_an_expired_lease_is_taken_over_with_a_newer_token(redis: Redis, prefix: str) -> None:
    keys = StoreKeys(prefix)
    paused, successor = Lease(redis, keys, "a", 0.2), Lease(redis, keys, "b", 5)
    assert await paused.acquire() == 1
    await wait_for_expiry(redis, keys)

    assert await successor.acquire() == 2
    assert await successor.current_holder() == "b"
    # The paused holder wakes up: it cannot renew what is no longer its own.
    assert await paused.renew() is False
    assert paused.fence is None
    assert not paused.held
    assert await successor.current_holder() == "b"


async def test_a_lease_not_renewed_is_not_held_by_the_holders_own_clock(
    redis: Redis, prefix: str
) -> None:
    now = [100.0]
    lease = Lease(redis, StoreKeys(prefix), "a", 5, clock=lambda: now[0])
    assert await lease.acquire() == 1
    now[0] += 4.9
    assert lease.held
    now[0] += 0.2
    assert not lease.held


async def test_release_gives_it_back_only_when_it_is_ours(redis: Redis, prefix: str) -> None:
    keys = StoreKeys(prefix)
    stale, holder = Lease(redis, keys, "a", 0.2), Lease(redis, keys, "b", 5)
    assert await stale.acquire() == 1
    await wait_for_expiry(redis, keys)
    assert await holder.acquire() == 2

    assert await stale.release() is False  # not its lease any more: b's is left alone
    assert await holder.current_holder() == "b"
    assert await holder.release() is True
    assert await holder.current_holder() is None
    assert await stale.acquire() == 3


async def test_keepers_hand_over_on_stop(redis: Redis, prefix: str) -> None:
    keys = StoreKeys(prefix)
    tenures: list[tuple[str, int | None]] = []

    def recorder(name: str) -> LeaseKeeper:
        async def record(fence: int | None) -> None:
            tenures.append((name, fence))

        return LeaseKeeper(Lease(redis, keys, name, 0.6), on_change=record)

    first, second = recorder("a"), recorder("b")
    first.start()
    await asyncio.wait_for(first.wait_until(held=True), GENEROUS_S)
    second.start()
    try:
        await asyncio.sleep(0.7)  # more than a TTL: the holder keeps it by renewing
        assert first.held
        assert not second.held
        await first.stop()  # released: the other need not wait for the TTL
        await asyncio.wait_for(second.wait_until(held=True), GENEROUS_S)
    finally:
        await first.stop()
        await second.stop()
    assert tenures == [("a", 1), ("a", None), ("b", 2), ("b", None)]
    assert (first.takeovers, second.takeovers) == (1, 1)
    assert await redis.exists(keys.lease) == 0


class LosesItsCancellation(Lease):
    """A renewal stuck in Redis whose cancellation comes out as redis-py's TimeoutError,
    as cancelled blocking reads have (redis/redis-py#2028): the keeper's loop catches it
    and, but for its stop flag, would go round again."""

    async def renew(self) -> bool:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379") from None
        return True


async def test_a_keeper_stops_even_when_redis_py_loses_the_cancellation(
    redis: Redis, prefix: str
) -> None:
    keys = StoreKeys(prefix)
    keeper = LeaseKeeper(LosesItsCancellation(redis, keys, "a", 0.6))
    keeper.start()
    await asyncio.wait_for(keeper.wait_until(held=True), GENEROUS_S)
    await asyncio.sleep(0.3)  # past a third of the TTL: the keeper is in its renewal now

    await asyncio.wait_for(keeper.stop(), GENEROUS_S)  # it used to wait forever here

    assert not keeper.held
    assert await redis.exists(keys.lease) == 0  # given back, not left to run out


async def test_a_keeper_takes_over_from_a_holder_that_hangs(redis: Redis, prefix: str) -> None:
    keys = StoreKeys(prefix)
    hung = Lease(redis, keys, "a", 0.5)
    assert await hung.acquire() == 1  # and never renews: a hung or SIGSTOPped process
    keeper = LeaseKeeper(Lease(redis, keys, "b", 0.5))
    keeper.start()
    try:
        await asyncio.wait_for(keeper.wait_until(held=True), GENEROUS_S)
        assert keeper.lease.fence == 2
        assert await hung.renew() is False
    finally:
        await keeper.stop()
