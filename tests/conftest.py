"""Fixtures every test folder may use: the session's real `redis-server`
(`tests/redis_server.py`), shared by the Redis store's tests and the replica tests, each
with a key prefix (or database) of its own.

Without `redis-server` the tests that need it are skipped with a loud reason and a
warning line in the pytest summary; with `CI=true` that is an error, not a skip.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from tests.diagnostics import tasks_report
from tests.redis_server import RedisServer, find_redis_server

_skips: list[str] = []


def _print_asyncio_tasks(signum: int, frame: FrameType | None) -> None:
    """SIGUSR1 (`kill -USR1 <pytest's pid>`): what a hung test waits for, on the real
    stderr (pytest captures the other)."""
    print(tasks_report() or "SIGUSR1: no event loop running", file=sys.__stderr__, flush=True)


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGUSR1, _print_asyncio_tasks)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a non-interactive shell (`make test &`), the
        # suite inherits Ctrl-C ignored, and so would the CLI processes that the tests
        # press Ctrl-C on: a handler here is reset to the default in every child.
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it where nobody can miss it: the Redis tests did not run."""
    if _skips:
        terminalreporter.write_sep("!", f"WARNING: {_skips[0]}", red=True, bold=True)
