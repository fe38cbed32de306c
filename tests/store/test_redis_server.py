"""The test suite's own `redis-server`: it runs, holds nothing on disk, and comes back
empty after a crash."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.redis_server import RedisServer


async def test_the_server_answers_and_persists_nothing(redis: Redis) -> None:
    assert await redis.ping() is True
    assert await redis.config_get("save") == {"save": ""}
    assert await redis.config_get("appendonly") == {"appendonly": "no"}
    assert await redis.config_get("bind") == {"bind": "127.0.0.1"}


async def test_a_stopped_server_refuses_and_comes_back_empty(
    redis_server: RedisServer, redis: Redis
) -> None:
    await redis.set("key", "value")
    redis_server.stop()
    with pytest.raises(RedisConnectionError):
        await redis.get("key")
    redis_server.start()
    assert await redis.get("key") is None
