"""Idempotency keys in Redis: `service.idempotency.IdempotencyStore` shared by replicas.

A write's key is claimed in Redis (`<prefix>:idempotency:<route>:<key>`, a hash of the
body's digest and the claiming request's owner id), so the same key sent to another
replica is known there: a repeat with the same body replays the first answer (status
and body), another body is `IdempotencyKeyReused`, and a repeat that arrives while the
first still runs, on any replica, waits for it. A claim lives `running_ttl_s` while its
write runs (a replica that dies mid-write does not block the key for a day) and
`ttl_s` (24 h) once it has an answer. As in `MemoryIdempotencyStore`, at most
`max_keys` (10,000) keys are kept, the oldest forgotten first: `<prefix>:idempotency-keys`
(a sorted set of the keys by the time Redis claimed them) is the index, so a client that
sends a new key with every write cannot fill Redis with answers for a day.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared_state.errors import IdempotencyKeyReused, StoreUnavailable
from shared_state.service.idempotency import KEY_TTL_S, MAX_KEYS, Claim, StoredAnswer
from shared_state.store.keys import StoreKeys

log = logging.getLogger(__name__)

# KEYS: entry, index. ARGV: digest, owner, running ttl (ms), kept ttl (ms), max keys.
# -> {1} claimed; {0, digest, status, body} ('' for what is not there yet). A new claim
# enters the index (its score Redis's clock in ms); index entries older than a kept TTL
# leave it, and past `max keys` the oldest keys are deleted with their answers. (The
# deleted entries are named by the index, not in KEYS: one Redis, not a cluster.)
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'digest', ARGV[1], 'owner', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    local now = redis.call('TIME')
    local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms - tonumber(ARGV[4]))
    redis.call('ZADD', KEYS[2], now_ms, KEYS[1])
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
    local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
    if over > 0 then
        local oldest = redis.call('ZPOPMIN', KEYS[2], over)
        for i = 1, #oldest, 2 do
            redis.call('DEL', oldest[i])
        end
    end
    return {1}
end
local entry = redis.call('HMGET', KEYS[1], 'digest', 'status', 'body')
return {0, entry[1] or '', entry[2] or '', entry[3] or ''}
"""
# KEYS: entry. ARGV: owner, status, body, ttl (ms). -> 1 kept; 0 not this claim's any more.
_FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
    return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'body', ARGV[3])
redis.call('HDEL', KEYS[1], 'owner')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""
# KEYS: entry, index. ARGV: owner. -> 1 forgotten; 0 not this claim's.
_ABANDON = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
    redis.call('ZREM', KEYS[2], KEYS[1])
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisIdempotencyStore:
    """`IdempotencyStore` in Redis, shared by every replica with the same prefix."""

    def __init__(
        self,
        redis: Redis,
        keys: StoreKeys,
        *,
        ttl_s: float = KEY_TTL_S,
        max_keys: int = MAX_KEYS,
        running_ttl_s: float = 120.0,
        poll_s: float = 0.05,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._running_ms = max(1, round(running_ttl_s * 1000))
        self._max_keys = max_keys
        self._poll_s = poll_s
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._abandon = redis.register_script(_ABANDON)

    async def claim(self, scope: str, key: str, body_digest: str) -> Claim:
        """`StoreUnavailable` when Redis does not answer: the write is not run."""
        name = self._keys.idempotency(scope, key)
        owner = uuid.uuid4().hex
        while True:
            try:
                answer = await self._claim(
                    keys=[name, self._keys.idempotency_index],
                    args=[body_digest, owner, self._running_ms, self._ttl_ms, self._max_keys],
                )
            except (RedisError, OSError) as error:
                raise StoreUnavailable(
                    f"Redis did not answer ({type(error).__name__}); nothing was changed."
                ) from error
            if int(answer[0]) == 1:
                return Claim(token=(name, owner))
            digest, status, body = (bytes(part) for part in answer[1:])
            if digest.decode() != body_digest:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with another body on this route."
                )
            if status:
                return Claim(replay=StoredAnswer(status=int(status), body=body))
            # The first request still runs, maybe on another replica: Redis has no way
            # to wait on a key, so look again shortly (bounded by the claim's TTL).
            await asyncio.sleep(self._poll_s)

    async def finish(self, claim: Claim, answer: StoredAnswer) -> None:
        """Keep the answer for repeats. When Redis does not take it, the write's own
        answer still goes out (it happened); the claim then runs out after
        `running_ttl_s` and a repeat after that runs the write again."""
        name, owner = claim.token
        try:
            await self._finish(keys=[name], args=[owner, answer.status, answer.body, self._ttl_ms])
        except (RedisError, OSError) as error:
            log.warning("could not keep an Idempotency-Key's answer: %s", type(error).__name__)

    async def abandon(self, claim: Claim) -> None:
        """The write ended without an answer worth keeping: forget the key, so a retry
        (on any replica) runs it (or, when Redis does not answer, once the claim runs
        out)."""
        name, owner = claim.token
        try:
            await self._abandon(keys=[name, self._keys.idempotency_index], args=[owner])
        except (RedisError, OSError) as error:
            log.warning("could not forget an Idempotency-Key: %s", type(error).__name__)
