"""Serve both simulated upstreams over real HTTP with uvicorn, in the current event loop.

`SimulatorServers` is for tests and the demo; `run_simulators` blocks, for a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

from shared_state import embedded
from shared_state.simulator.anythingllm import create_anythingllm_app
from shared_state.simulator.control import release_slow_reads
from shared_state.simulator.librechat import create_librechat_app
from shared_state.simulator.world import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SIM_LIBRECHAT_TOKEN,
    Flavour,
    World,
)

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 1  # seconds a stop waits for answers still in flight
KEEP_ALIVE_S = 5  # seconds an idle connection stays open: uvicorn's default and Node's


class _Served:
    """One app served on one bound socket."""

    def __init__(self, app: FastAPI, host: str, port: int, keep_alive_s: int) -> None:
        self.app = app
        self.sock = embedded.bind(host, port)
        self.url = embedded.url_of(self.sock)
        config = uvicorn.Config(
            app,
            host=host,
            port=self.sock.getsockname()[1],
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            timeout_keep_alive=keep_alive_s,
        )
        self.server = embedded.EmbeddedServer(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = await embedded.start(self.server, self.sock)

    async def stop(self) -> None:
        release_slow_reads(self.app)
        self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.sock.close()


class SimulatorServers:
    """An async context manager serving simulated AnythingLLM and LibreChat on loopback.

    Port 0 (the default) picks a free port; the URLs are known once the context is entered.
    `flavour` picks both upstreams' API: "native" (the real ones, the default) or "bizzy".
    `keep_alive_s` is how long an idle client connection stays open (5 s, as in Node).
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        anythingllm_port: int = 0,
        librechat_port: int = 0,
        flavour: Flavour = "native",
        keep_alive_s: int = KEEP_ALIVE_S,
    ) -> None:
        self.world = world if world is not None else World.seed()
        self.host = host
        self.flavour: Flavour = flavour
        self._ports = (anythingllm_port, librechat_port)
        self._keep_alive_s = keep_alive_s
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
            create_anythingllm_app(self.world.anythingllm, flavour=self.flavour),
            self.host,
            self._ports[0],
            self._keep_alive_s,
        )
        try:
            librechat = _Served(
                create_librechat_app(self.world.librechat, flavour=self.flavour),
                self.host,
                self._ports[1],
                self._keep_alive_s,
            )
        except OSError:
            anythingllm.sock.close()
            raise
        served = (anythingllm, librechat)
        try:
            await asyncio.gather(*(one.start() for one in served))
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


def simulator_credentials(flavour: Flavour) -> str:
    """The settings that let the sidecar in, as `NAME=value` pairs (fixed test values)."""
    values = {"ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY}
    if flavour == "native":
        values |= {
            "ANYTHINGLLM_USERNAME": SIM_ANYTHINGLLM_USERNAME,
            "ANYTHINGLLM_PASSWORD": SIM_ANYTHINGLLM_PASSWORD,
            "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
            "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        }
    else:
        values["LIBRECHAT_TOKEN"] = SIM_LIBRECHAT_TOKEN
    return " ".join(f"{name}={value}" for name, value in values.items())


async def _serve_until_stopped(
    host: str, anythingllm_port: int, librechat_port: int, flavour: Flavour
) -> None:
    async with SimulatorServers(
        host=host,
        anythingllm_port=anythingllm_port,
        librechat_port=librechat_port,
        flavour=flavour,
    ) as servers:
        with embedded.stop_signals() as stop:
            logger.info("simulated AnythingLLM (%s API) at %s", flavour, servers.anythingllm_url)
            logger.info("simulated LibreChat (%s API) at %s", flavour, servers.librechat_url)
            # Fixed, public test credentials (not secrets): the README's quick start uses them.
            logger.info("they accept: %s", simulator_credentials(flavour))
            await stop.wait()
    logger.info("simulators stopped")


def run_simulators(
    host: str, anythingllm_port: int, librechat_port: int, flavour: Flavour = "native"
) -> None:
    """Serve both simulated upstreams on these ports until Ctrl-C or SIGTERM."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(host, anythingllm_port, librechat_port, flavour))
