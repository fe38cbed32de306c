"""The Redis URL as it may be shown: never its password."""

from __future__ import annotations

import pytest

from shared_state.store.connection import connect, redacted_url
from tests.redis_server import RedisServer


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://app:hunter2@redis.example.com/1", "rediss://app:***@redis.example.com/1"),
        ("redis://hunter2@[::1]:6380", "redis://***@[::1]:6380"),
    ],
)
def test_a_shown_url_has_no_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
    assert "hunter2" not in redacted_url(url)


async def test_connect_reaches_the_server(redis_server: RedisServer) -> None:
    client = connect(redis_server.url, timeout_s=5)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()
