"""Serve both simulated upstreams over real HTTP with uvicorn, in the current event loop.

`SimulatorServers` is for tests and the demo; `run_simulators` blocks, for a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

from shared_state.simulator.anythingllm import create_anythingllm_app
from shared_state.simulator.control import release_slow_reads
from shared_state.simulator.librechat import create_librechat_app
from shared_state.simulator.world import World

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_GRACE_S = 1  # seconds a stop waits for answers still in flight


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever runs the event loop.

    Stock `uvicorn.Server.serve` swaps the process's SIGINT/SIGTERM handlers while it runs;
    two of them stopping in a different order than they started would leave a dead server's
    handler installed, and Ctrl-C would stop working.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
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


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Served:
    """One app served on one bound socket."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app = app
        self.sock = _bind(host, port)
        self.url = _url(host, self.sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            host=host,
            port=self.sock.getsockname()[1],
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        self.server = _EmbeddedServer(config)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))

    async def wait_started(self) -> None:
        """Return once the server accepts connections; raise if it stopped instead."""
        assert self.task is not None
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while not self.server.started:
                if self.task.done():
                    self.task.result()  # raises what stopped it
                    raise RuntimeError(f"the simulator at {self.url} stopped while starting")
                # uvicorn offers no event for this; poll its flag.
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        release_slow_reads(self.app)
        self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.sock.close()


class SimulatorServers:
    """An async context manager serving simulated AnythingLLM and LibreChat on loopback.

    Port 0 (the default) picks a free port; the URLs are known once the context is entered.
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        anythingllm_port: int = 0,
        librechat_port: int = 0,
    ) -> None:
        self.world = world if world is not None else World.seed()
        self.host = host
        self._ports = (anythingllm_port, librechat_port)
        self._served: tuple[_Served, _Served] | None = None

    @property
    def anythingllm_url(self) -> str:
        """The simulated AnythingLLM's base URL, such as `http://127.0.0.1:54321`."""
        return self._running()[0].url

    @property
    def librechat_url(self) -> str:
        """The simulated LibreChat's base URL, such as `http://127.0.0.1:54322`."""
        return self._running()[1].url

    def _running(self) -> tuple[_Served, _Served]:
        if self._served is None:
            raise RuntimeError("the simulators are not running: use `async with`")
        return self._served

    async def __aenter__(self) -> Self:
        if self._served is not None:
            raise RuntimeError("the simulators are already running")
        anythingllm = _Served(
            create_anythingllm_app(self.world.anythingllm), self.host, self._ports[0]
        )
        try:
            librechat = _Served(
                create_librechat_app(self.world.librechat), self.host, self._ports[1]
            )
        except OSError:
            anythingllm.sock.close()
            raise
        served = (anythingllm, librechat)
        for one in served:
            one.start()
        try:
            await asyncio.gather(*(one.wait_started() for one in served))
        except BaseException:
            await asyncio.gather(*(one.stop() for one in served), return_exceptions=True)
            raise
        self._served = served
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        served, self._served = self._running(), None
        await asyncio.gather(*(one.stop() for one in served))


async def _serve_until_stopped(host: str, anythingllm_port: int, librechat_port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
            loop.add_signal_handler(sig, stop.set)
    async with SimulatorServers(
        host=host, anythingllm_port=anythingllm_port, librechat_port=librechat_port
    ) as servers:
        logger.info("simulated AnythingLLM at %s", servers.anythingllm_url)
        logger.info("simulated LibreChat at %s", servers.librechat_url)
        await stop.wait()
    logger.info("simulators stopped")


def run_simulators(host: str, anythingllm_port: int, librechat_port: int) -> None:
    """Serve both simulated upstreams on these ports until Ctrl-C or SIGTERM."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(host, anythingllm_port, librechat_port))
