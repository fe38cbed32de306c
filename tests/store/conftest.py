"""Store fixtures: one real `redis-server` per test session (tests/redis_server.py) and,
per test, an empty database and a `redis.asyncio` client on it.

Without `redis-server` the tests that need it are skipped with a loud reason and a
warning line in the pytest summary; with `CI=true` that is an error, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.redis_server import RedisServer, find_redis_server

_skips: list[str] = []


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's `redis-server`, started on first use."""
    executable = find_redis_server()
    if executable is None:
        reason = (
            "REDIS TESTS SKIPPED: no `redis-server` found (Debian: apt-get install redis-server)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no `redis-server` found: the Redis tests must run ({reason})")
        _skips.append(reason)
        pytest.skip(reason)
    with RedisServer(executable) as server:
        yield server


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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it where nobody can miss it: the Redis tests did not run."""
    if _skips:
        terminalreporter.write_sep("!", f"WARNING: {_skips[0]}", red=True, bold=True)
