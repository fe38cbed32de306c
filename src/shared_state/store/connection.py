"""The Redis connection: a `redis.asyncio` client with bounded time, and the URL as it may
be shown (its password never is).

Every call is bounded (`socket_timeout`, `socket_connect_timeout`): a Redis that stops
answering must turn into an error the replica can report (`store: unavailable`), never a
request that hangs.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def connect(url: str, *, timeout_s: float, wait_s: float = 0.0) -> Redis:
    """A client for `url` (no connection is made until the first command); each
    connection attempt gives up after `timeout_s`, each command `timeout_s` after the
    `wait_s` it may block in Redis (`XREAD BLOCK`, `BLPOP`). A failed command is tried
    once more, at once: redis-py's default (three tries, backing off up to seconds)
    would stretch a write's 503 far past the request timeout."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s + wait_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )


def redacted_url(url: str) -> str:
    """`url` with its password (and a user name's password-like token) replaced by `***`,
    for logs and `/status`."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    credentials = f"{user}:***" if parts.password is not None else "***"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))
