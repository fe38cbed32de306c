"""Store fixtures: per test, on the session's `redis-server` (`tests/conftest.py`), an
empty database with a `redis.asyncio` client on it, and a key prefix of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.redis_server import RedisServer


@pytest_asyncio.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client on an empty database of the running server (restarted if a test stopped
    it)."""
    redis_server.start()
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own, as two deployments on one Redis would have."""
    return f"test-{uuid.uuid4().hex[:8]}"
