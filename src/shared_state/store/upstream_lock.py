"""The upstream lock: no sync or write calls the upstreams during another, on any
replica (contract §11).

Only the lease holder syncs and writes, and in the process one `asyncio.Lock` keeps them
apart, as it does without Redis. What that cannot see is a previous tenure: a holder
that lost its lease while a write was still in flight, or a new holder that starts
syncing while its predecessor is still finishing one. So the holder also takes
`<prefix>:upstream-lock` in Redis, with the same fencing as a publish (the lease must
name it, its fencing token must be current), for as long as the lease lasts (the
lease's renewal extends it, `store.lease`), and gives it back (compare-and-delete) when
done. A lock left by a holder that died runs out with its lease.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared_state.errors import HolderUnavailable, StoreUnavailable
from shared_state.store.keys import StoreKeys
from shared_state.store.lease import Lease, NotHolder

log = logging.getLogger(__name__)

# KEYS: lease, fence, lock. ARGV: holder, fence, ttl (ms).
# -> {1} taken; {0, 'not_holder'}; {0, 'busy', pttl}: another tenure's operation runs.
_TAKE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1]
        or tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[2]) then
    return {0, 'not_holder', 0}
end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[3]) then
    return {1, 'ok', 0}
end
return {0, 'busy', redis.call('PTTL', KEYS[3])}
"""
# KEYS: lock. ARGV: holder. -> 1 given back; 0 not ours.
_GIVE_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class FencedUpstreamLock:
    """The holder's lock around every sync and write: the process's own, then Redis's.

    `NotHolder` when this replica does not hold the lease, `StoreUnavailable` when Redis
    does not answer, `HolderUnavailable` when another tenure's operation still holds
    the lock after `wait_s`; in each case no upstream is called."""

    def __init__(
        self, redis: Redis, keys: StoreKeys, lease: Lease, *, wait_s: float, poll_s: float = 0.05
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._lease = lease
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._local = asyncio.Lock()
        self._take = redis.register_script(_TAKE)
        self._give_back = redis.register_script(_GIVE_BACK)

    async def __aenter__(self) -> None:
        await self._local.acquire()
        try:
            await self._take_in_redis()
        except BaseException:
            self._local.release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._give_back(keys=[self._keys.upstream_lock], args=[self._lease.holder])
        except (RedisError, OSError) as error:
            # It runs out with the lease; until then only this replica could take it.
            log.warning("could not give the upstream lock back: %s", type(error).__name__)
        finally:
            self._local.release()

    async def _take_in_redis(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while True:
            fence = self._lease.fence
            if fence is None or not self._lease.held:
                raise NotHolder("This replica does not hold the sync lease.")
            try:
                taken, reason, _ = await self._take(
                    keys=[self._keys.lease, self._keys.fence, self._keys.upstream_lock],
                    args=[self._lease.holder, fence, self._lease.ttl_ms],
                )
            except (RedisError, OSError) as error:
                raise StoreUnavailable(
                    f"Redis did not answer ({type(error).__name__}); nothing was changed."
                ) from error
            if taken:
                return
            if reason == b"not_holder":
                raise NotHolder("This replica no longer holds the sync lease.")
            if loop.time() >= deadline:
                raise HolderUnavailable(
                    "The previous syncing replica's sync or write still holds the upstream "
                    "lock; nothing was changed. Try again shortly."
                )
            await asyncio.sleep(self._poll_s)
