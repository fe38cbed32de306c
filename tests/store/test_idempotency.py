"""Idempotency keys in Redis, as two replicas see them: the first answer replayed by
the other, another body refused, a repeat waiting for the first, a crashed first
request not blocking the key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from shared_state.errors import IdempotencyKeyReused
from shared_state.service.idempotency import StoredAnswer, fingerprint
from shared_state.store.idempotency import RedisIdempotencyStore
from shared_state.store.keys import StoreKeys

GENEROUS_S = 10.0
BODY = fingerprint({"provider": "openai", "model": "gpt-4o"})


def replicas(redis: Redis, prefix: str, **options: Any) -> list[RedisIdempotencyStore]:
    keys = StoreKeys(prefix)
    return [RedisIdempotencyStore(redis, keys, **options) for _ in range(2)]


async def test_the_first_answer_is_replayed_on_another_replica(redis: Redis, prefix: str) -> None:
    first, second = replicas(redis, prefix)
    claim = await first.claim("llm", "key-1", BODY)
    assert claim.replay is None
    await first.finish(claim, StoredAnswer(status=200, body=b'{"version":3}\x00\xff'))

    repeat = await second.claim("llm", "key-1", BODY)
    assert repeat.replay == StoredAnswer(status=200, body=b'{"version":3}\x00\xff')
    assert 0 < await redis.pttl(StoreKeys(prefix).idempotency("llm", "key-1")) <= 24 * 3600_000


async def test_another_body_is_refused_and_routes_are_apart(redis: Redis, prefix: str) -> None:
    first, second = replicas(redis, prefix)
    claim = await first.claim("llm", "key-1", BODY)
    await first.finish(claim, StoredAnswer(status=412, body=b"{}"))

    with pytest.raises(IdempotencyKeyReused):
        await second.claim("llm", "key-1", fingerprint({"provider": "ollama"}))
    other_route = await second.claim("ui", "key-1", fingerprint({"provider": "ollama"}))
    assert other_route.replay is None


async def test_a_repeat_waits_for_the_first_on_another_replica(redis: Redis, prefix: str) -> None:
    first, second = replicas(redis, prefix, poll_s=0.01)
    claim = await first.claim("llm", "key-1", BODY)
    waiting = asyncio.create_task(second.claim("llm", "key-1", BODY))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # still running on the first replica

    await first.finish(claim, StoredAnswer(status=200, body=b"done"))
    repeat = await asyncio.wait_for(waiting, GENEROUS_S)
    assert repeat.replay == StoredAnswer(status=200, body=b"done")


async def test_an_abandoned_key_runs_again(redis: Redis, prefix: str) -> None:
    first, second = replicas(redis, prefix, poll_s=0.01)
    claim = await first.claim("llm", "key-1", BODY)
    waiting = asyncio.create_task(second.claim("llm", "key-1", BODY))
    await first.abandon(claim)

    retry = await asyncio.wait_for(waiting, GENEROUS_S)
    assert retry.replay is None  # the retry runs the write itself
    await first.finish(claim, StoredAnswer(status=200, body=b"late"))  # not its key now
    await second.finish(retry, StoredAnswer(status=200, body=b"retry"))
    assert (await first.claim("llm", "key-1", BODY)).replay == StoredAnswer(200, b"retry")


async def test_a_replica_that_died_mid_write_does_not_block_the_key(
    redis: Redis, prefix: str
) -> None:
    dead, alive = replicas(redis, prefix, running_ttl_s=0.2, poll_s=0.01)
    await dead.claim("llm", "key-1", BODY)  # and never finishes

    retry = await asyncio.wait_for(alive.claim("llm", "key-1", BODY), GENEROUS_S)
    assert retry.replay is None


async def test_the_oldest_keys_are_forgotten_past_the_most_kept(redis: Redis, prefix: str) -> None:
    """A client that sends a new key with every write cannot fill Redis with a day of
    answers: past `max_keys` the oldest go, on every replica, and the index stays that
    long."""
    keys = StoreKeys(prefix)
    first, second = replicas(redis, prefix, max_keys=3)
    for number in range(5):
        claim = await first.claim("llm", f"key-{number}", BODY)
        await first.finish(claim, StoredAnswer(status=200, body=f"answer {number}".encode()))

    for number in (2, 3, 4):
        repeat = await second.claim("llm", f"key-{number}", BODY)
        assert repeat.replay == StoredAnswer(status=200, body=f"answer {number}".encode())
    for number in (0, 1):
        assert await redis.exists(keys.idempotency("llm", f"key-{number}")) == 0
        assert (await second.claim("llm", f"key-{number}", BODY)).replay is None  # runs again
    assert await redis.zcard(keys.idempotency_index) == 3
    assert 0 < await redis.pttl(keys.idempotency_index) <= 24 * 3600_000


async def test_an_abandoned_key_leaves_the_index(redis: Redis, prefix: str) -> None:
    keys = StoreKeys(prefix)
    (store, _) = replicas(redis, prefix)
    claim = await store.claim("ui", "key-1", BODY)
    assert await redis.zcard(keys.idempotency_index) == 1
    await store.abandon(claim)
    assert await redis.zcard(keys.idempotency_index) == 0
