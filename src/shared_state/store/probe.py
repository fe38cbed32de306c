"""What `shared-state doctor` asks a deployment's Redis (`SHARED_STATE_REDIS_URL`): does
it answer, as which server, will it keep the keys the replicas need, and what do they
hold there now. Read-only: nothing is written, no lease is taken.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from shared_state.store.connection import connect
from shared_state.store.keys import StoreKeys

EVICTING_POLICIES = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})
"""`maxmemory-policy` values under which a full Redis may drop the shared state, its
log or the fencing counter (keys without a TTL)."""


@dataclass(frozen=True)
class StoreProbe:
    """One look at the deployment's Redis."""

    server_version: str
    round_trip_ms: float
    eviction_policy: str | None
    """None when Redis refuses `CONFIG GET` (managed services often do)."""
    version: int | None
    """The shared state's version; None when no replica has published with this prefix."""
    lease_holder: str | None
    lease_remaining_s: float | None
    waiting_commands: int


class ProbeFailed(Exception):
    """Redis did not answer the probe; `kind` says how: `unreachable` or `auth`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


async def probe(url: str, prefix: str, *, timeout_s: float) -> StoreProbe:
    """Ask Redis at `url` about the deployment `prefix`; `ProbeFailed` when it does not
    answer (the message never holds the URL)."""
    redis = connect(url, timeout_s=timeout_s)
    keys = StoreKeys(prefix)
    try:
        started = time.perf_counter()
        await redis.ping()
        round_trip_ms = (time.perf_counter() - started) * 1000
        info = await redis.info("server")
        try:
            policy = (await redis.config_get("maxmemory-policy")).get("maxmemory-policy")
        except ResponseError:
            policy = None
        version, holder, remaining_ms, waiting = await _deployment(redis, keys)
    except AuthenticationError as error:
        raise ProbeFailed("auth", f"Redis refused the credentials ({error})") from None
    except ResponseError as error:
        if any(word in str(error) for word in ("NOAUTH", "WRONGPASS", "AUTH")):
            raise ProbeFailed("auth", f"Redis refused the credentials ({error})") from None
        raise ProbeFailed("unreachable", f"Redis answered with an error ({error})") from None
    except (RedisError, OSError) as error:
        raise ProbeFailed("unreachable", f"{type(error).__name__}: {error}") from None
    finally:
        await redis.aclose()
    return StoreProbe(
        server_version=str(info.get("redis_version", "?")),
        round_trip_ms=round_trip_ms,
        eviction_policy=None if policy is None else _text(policy),
        version=None if version is None else int(version),
        lease_holder=None if holder is None else _text(holder),
        lease_remaining_s=None if remaining_ms is None or remaining_ms < 0 else remaining_ms / 1000,
        waiting_commands=int(waiting),
    )


async def _deployment(redis: Redis, keys: StoreKeys) -> tuple[Any, Any, int | None, int]:
    """The shared version, the lease's holder and remaining time, the commands waiting."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.state, "version")
        pipe.get(keys.lease)
        pipe.pttl(keys.lease)
        pipe.llen(keys.commands)
        version, holder, remaining_ms, waiting = await pipe.execute()
    return version, holder, int(remaining_ms) if holder is not None else None, int(waiting)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
