"""The lease that makes one replica the syncing one, and the fencing token it carries.

Exactly one replica holds `<prefix>:lease` at a time: it is taken with `SET NX PX` (only
when nobody holds it), renewed by its holder well before it runs out (every third of the
TTL) with a script that checks the holder, and given back on shutdown with a
compare-and-delete. Each acquisition `INCR`s `<prefix>:fence`, and that number, the
fencing token, goes with every write of the shared state: Redis refuses a write whose
token is older than the counter (see `store.shared_state`). So a holder that paused past
its lease (a GC pause, SIGSTOP, a VM migration) and wakes up believing it still holds it
cannot publish over its successor: its token is stale even though its clock says
otherwise.

`Lease` is the protocol against Redis; `LeaseKeeper` is the background task a replica
runs: it renews while holding, tries to take the lease while not (right when the current
one runs out, so a takeover comes within the TTL of the holder's last renewal), and
releases it on `stop()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared_state.errors import HolderUnavailable
from shared_state.store.keys import StoreKeys
from shared_state.store.tasks import stop_task

logger = logging.getLogger(__name__)

STOP_WITHIN_S = 2.0
"""How long `LeaseKeeper.stop` waits for its cancelled task before giving the lease back."""

# KEYS: lease, fence. ARGV: holder, ttl (ms). -> {1, fence} taken; {0, pttl} held by another.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {1, redis.call('INCR', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
"""
# KEYS: lease, upstream lock. ARGV: holder, ttl (ms). -> 1 renewed; 0 not ours (any more).
# The upstream lock (`store.upstream_lock`) lives as long as the lease that took it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    if redis.call('GET', KEYS[2]) == ARGV[1] then
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
    end
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS: lease. ARGV: holder. -> 1 released; 0 not ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class NotHolder(HolderUnavailable):
    """This replica does not hold the lease (any more): another carries out syncs and
    writes."""


class Lease:
    """One replica's side of the lease: `acquire`, `renew`, `release`, and the fencing
    token of its current tenure (`fence`, None while it holds none)."""

    def __init__(
        self,
        redis: Redis,
        keys: StoreKeys,
        holder: str,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._redis = redis
        self._keys = keys
        self.holder = holder
        self.ttl_s = ttl_s
        self.ttl_ms = max(1, round(ttl_s * 1000))
        self._clock = clock
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._fence: int | None = None
        self._valid_until = 0.0
        self.retry_after_s = ttl_s / 3
        """After a failed `acquire`: how long until the current lease runs out."""

    @property
    def fence(self) -> int | None:
        """The fencing token of the current tenure, or None."""
        return self._fence

    @property
    def held(self) -> bool:
        """Whether this replica may act as the holder: it took or renewed the lease less
        than a TTL ago by its own clock. (Only the fencing token makes that safe: a
        paused process may find out late.)"""
        return self._fence is not None and self._clock() < self._valid_until

    async def acquire(self) -> int | None:
        """Take the lease if nobody holds it (or renew it if this replica does): the
        fencing token, or None when another replica holds it."""
        if self._fence is not None and await self.renew():
            return self._fence
        started = self._clock()
        taken, number = await self._call(self._acquire, [self._keys.lease, self._keys.fence])
        if taken:
            self._fence = int(number)
            self._valid_until = started + self.ttl_s
            return self._fence
        self._fence = None
        # PTTL: the other's remaining time; -1 (no TTL: never set by us) or -2 (just gone).
        remaining_ms = int(number)
        self.retry_after_s = remaining_ms / 1000 if remaining_ms > 0 else 0.0
        return None

    async def renew(self) -> bool:
        """Extend this replica's lease by a TTL; False (and no fence) when it is no longer
        this replica's: it ran out and maybe another took it."""
        if self._fence is None:
            return False
        started = self._clock()
        renewed = await self._call(self._renew, [self._keys.lease, self._keys.upstream_lock])
        if renewed:
            self._valid_until = started + self.ttl_s
            return True
        self._fence = None
        return False

    async def release(self) -> bool:
        """Give the lease back (on shutdown), only if it is still this replica's."""
        fence, self._fence = self._fence, None
        if fence is None:
            return False
        return bool(await self._redis_release())

    async def current_holder(self) -> str | None:
        """Who holds the lease now (for `/status`), or None."""
        value = await self._redis.get(self._keys.lease)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def _redis_release(self) -> Any:
        return await self._release(keys=[self._keys.lease], args=[self.holder])

    async def _call(self, script: Any, keys: list[str]) -> Any:
        return await script(keys=keys, args=[self.holder, self.ttl_ms])


LeaseCallback = Callable[[int | None], Awaitable[None]]
"""Called with the new fencing token when the lease is taken, None when it is lost."""


class LeaseKeeper:
    """The background task that keeps (or waits for) the lease: renewal every third of
    the TTL while holding, an attempt to take it as soon as the other's runs out while
    not, `on_change` at every change of tenure, and a release on `stop()`."""

    def __init__(self, lease: Lease, on_change: LeaseCallback | None = None) -> None:
        self.lease = lease
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._changed = asyncio.Condition()
        self._was_held = False
        self.takeovers = 0
        """Times this replica took the lease."""
        self.last_error: str | None = None
        """The last Redis error, or None once Redis answered again."""

    @property
    def held(self) -> bool:
        return self.lease.held

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lease-keeper")

    async def stop(self) -> None:
        """Stop renewing and give the lease back (so a successor need not wait for the
        TTL)."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task, within_s=STOP_WITHIN_S)
        try:
            await self.lease.release()
        except RedisError as error:
            logger.warning("could not release the lease: %s", type(error).__name__)
        await self._set_held(False)

    async def wait_until(self, held: bool) -> None:
        """Return once this replica holds (or no longer holds) the lease."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._was_held == held)

    async def _run(self) -> None:
        interval = self.lease.ttl_s / 3
        while not self._stopping:
            delay = interval
            try:
                if self.lease.fence is not None:
                    await self.lease.renew()
                if self.lease.fence is None:
                    await self.lease.acquire()
                    if self.lease.fence is None:
                        delay = min(interval, self.lease.retry_after_s)
                self.last_error = None
            except (RedisError, OSError) as error:
                self.last_error = f"{type(error).__name__}: {error}"
                logger.warning("lease: Redis unavailable (%s)", type(error).__name__)
            if self._stopping:
                return  # a cancellation redis-py lost: `stop` gives the lease back
            await self._set_held(self.lease.held)
            await asyncio.sleep(delay)

    async def _set_held(self, held: bool) -> None:
        if held == self._was_held:
            return
        self._was_held = held
        if held:
            self.takeovers += 1
        async with self._changed:
            self._changed.notify_all()
        if self._on_change is not None:
            try:
                await self._on_change(self.lease.fence if held else None)
            except Exception:
                # The keeper must go on renewing whatever the replica does with the news.
                logger.exception("lease: the change of tenure was not handled")
