"""Running uvicorn servers inside an event loop we own: the demo, the simulator, the tests.

`uvicorn.run` owns the process; here several servers share one loop, so signal handling
stays with the caller, and sockets are bound up front so their ports are known.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator

import uvicorn

STARTUP_TIMEOUT_S = 10.0


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever runs the event loop.

    Stock `uvicorn.Server.serve` swaps the process's SIGINT/SIGTERM handlers while it runs
    and re-raises the signal afterwards; with several servers in one loop that leaves a
    dead server's handler installed, or a KeyboardInterrupt where a clean stop was meant.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on `host:port` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def start(server: uvicorn.Server, sock: socket.socket) -> asyncio.Task[None]:
    """Serve on `sock` in a task; return once it accepts connections (or raise why not)."""
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the server stopped while starting")
            await asyncio.sleep(0.005)  # uvicorn offers no "started" event; poll its flag
    return task


async def stop_requested() -> None:
    """Return on the first SIGINT (Ctrl-C) or SIGTERM; the caller then stops its servers."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
