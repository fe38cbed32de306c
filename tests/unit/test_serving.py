"""How the service is served: the connection cap's arithmetic and the one-time warning
when the asyncio loop cannot accept for lack of file descriptors (the connection
behaviour itself is tested end to end in tests/e2e/test_process_e2e.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shared_state.serving import connection_cap, warn_on_accept_failure


@pytest.mark.parametrize(
    ("max_connections", "open_file_limit", "cap"),
    [
        pytest.param(1000, 20_000, 1000, id="the-setting-when-descriptors-abound"),
        pytest.param(1000, 1024, 960, id="64-descriptors-kept-for-the-rest"),
        pytest.param(1000, 256, 192, id="a-low-limit"),
        pytest.param(1000, 64, 32, id="half-of-a-tiny-limit"),
        pytest.param(1000, 1, 1, id="never-zero"),
    ],
)
def test_connection_cap_leaves_descriptors_for_everything_else(
    max_connections: int, open_file_limit: int, cap: int
) -> None:
    """The cap is the setting, lowered to keep 64 descriptors (or half) free."""
    assert connection_cap(max_connections, open_file_limit) == cap


async def test_accept_failure_is_logged_once_and_other_errors_pass_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncio's "out of system resource" reports become one warning; other loop errors
    still reach the default handler (which logs them as errors)."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    warn_on_accept_failure(loop)
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
            loop.call_exception_handler({"message": "something else"})
    finally:
        loop.set_exception_handler(previous)

    warnings = [r for r in caplog.records if "out of file descriptors" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert any(r.getMessage() == "something else" for r in caplog.records)
