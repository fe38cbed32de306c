"""Running uvicorn servers inside an event loop we own: the demo, the simulator, the tests.

`uvicorn.run` owns the process; here several servers share one loop, so signal handling
stays with the caller, and sockets are bound up front so their ports are known.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator

import uvicorn

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 10.0


class PortInUse(OSError):
    """Another process listens on the port asked for."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} on {host} is in use")
        self.host = host
        self.port = port


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
    """A listening-ready TCP socket on `host:port` (port 0: a free one); `PortInUse`
    when another process has it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
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


@contextlib.contextmanager
def stop_signals() -> Iterator[asyncio.Event]:
    """An event set by the first SIGINT (Ctrl-C) or SIGTERM while the block runs: enter
    it before telling anyone the servers are up, so that an early signal is not fatal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
            loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


async def stop_requested() -> None:
    """Return on the first SIGINT (Ctrl-C) or SIGTERM; the caller then stops its servers."""
    with stop_signals() as stop:
        await stop.wait()


async def serve_until_stopped(
    server: uvicorn.Server,
    sock: socket.socket,
    *,
    shutdown_timeout_s: float,
    on_started: Callable[[], None] | None = None,
    on_stopping: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Serve on `sock` until SIGINT or SIGTERM, then stop within `shutdown_timeout_s`.

    `on_started` runs once the server accepts connections, `on_stopping` when the signal
    arrives, before the server stops accepting and waits for requests in flight (it
    counts against the same budget). The exit code: 0 after a
    graceful stop, 1 when the stop outran its budget (the server task is then cancelled).
    A lifespan that fails to start raises uvicorn's `SystemExit(3)`.
    """
    # Once the block is left, a second signal has its default effect: it ends the process.
    with stop_signals() as stop:
        serving = await start(server, sock)
        if on_started is not None:
            on_started()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if serving.done():
            serving.result()
            return 0
        log.info("stopping: at most %g s", shutdown_timeout_s)
        try:
            async with asyncio.timeout(shutdown_timeout_s):
                if on_stopping is not None:
                    await on_stopping()
                server.should_exit = True
                await serving
        except TimeoutError:
            log.error("the stop took longer than %g s; exiting anyway", shutdown_timeout_s)
            return 1
        return 0
