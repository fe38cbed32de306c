"""The Redis connection: a `redis.asyncio` client with bounded time, and the URL as it may
be shown (its password never is).

Every call is bounded (`socket_timeout`, `socket_connect_timeout`): a Redis that stops
answering must turn into an error the replica can report (`store: unavailable`), never a
request that hangs.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis


def connect(url: str, *, timeout_s: float) -> Redis:
    """A client for `url` (no connection is made until the first command); each command
    and each connection attempt gives up after `timeout_s`."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
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
