"""The harness for several replicas on one Redis (contract §11): real `shared-state serve`
subprocesses on loopback ports, one real `redis-server` per session, and the packaged
simulators of both upstreams (native flavour, LibreChat logging in with email and
password so that every login is counted).

Why subprocesses: a lease, a SIGKILL, a SIGSTOP past the TTL and a Redis that goes away
are only real between processes. `Cluster` starts replicas with the Redis environment
(a prefix of the test's own, a 2 s lease) and always kills them at the end, also when
the test fails; their stderr goes to files, printed at teardown (pytest shows it for a
failing test) and appended to every failed wait. `VersionLedger` records the
`(version, content)` pairs replicas serve, so that a test can assert that no version
was served with two contents and that no replica went back.

Without `redis-server` every test here is skipped with a loud reason and a warning in
the pytest summary; with `CI=true` that is an error, not a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from shared_state.simulator import (
    SimulatorServers,
)
from tests.doctor.conftest import healthy_env
from tests.e2e.test_events_e2e import EventReader
from tests.redis_server import RedisServer, free_port

T = TypeVar("T")

API = "/api/shared-state"
EVENTS = f"{API}/events"
LEASE_TTL_S = 2.0
"""The replicas' lease: short, so that a takeover costs the test seconds, not minutes."""
REQUEST_TIMEOUT_S = 3.0
"""`SHARED_STATE_REQUEST_TIMEOUT_S`: the bound on a write's 503 while Redis is away."""
START_TIMEOUT_S = 30.0
"""Generous: three interpreters importing FastAPI at once on a loaded 2-core machine."""
WAIT_S = 15.0
"""How long a condition may take to come true before the test fails (a guard, not a target)."""
POLL_S = 0.05
CONTENT_SECTIONS = ("user", "settings", "workspaces", "conversations")
"""What `version` counts (§4), with each source's `status`; `syncTimestamp` and the
sources' times may move without a new version."""

# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
async def sims() -> AsyncIterator[SimulatorServers]:
    """Both simulated upstreams, native flavour, fresh for each test."""
    async with SimulatorServers(flavour="native") as servers:
        yield servers


@pytest.fixture
async def cluster(
    redis_server: RedisServer, sims: SimulatorServers, tmp_path: Path
) -> AsyncIterator[Cluster]:
    """Replicas of one deployment (a key prefix of the test's own on the session's Redis);
    every replica still running at the end is killed, and its stderr printed."""
    redis_server.start()  # a test that stopped it and failed on the way leaves it stopped
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        running = Cluster(redis_server, sims, tmp_path, client)
        try:
            yield running
        finally:
            await running.close()
            print(running.logs())  # shown by pytest for a failing test only


# --- one replica ---------------------------------------------------------------------------


class Replica:
    """One `shared-state serve` subprocess: where it listens, its pid, signals, its stderr."""

    def __init__(self, name: str, url: str, process: asyncio.subprocess.Process, log: Path):
        self.name = name
        self.url = url
        self.process = process
        self.log = log
        self.is_paused = False

    def __repr__(self) -> str:
        return f"<replica {self.name} pid {self.pid} {self.url}>"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def is_running(self) -> bool:
        return self.process.returncode is None

    def api(self, path: str = "") -> str:
        """The absolute URL of `/api/shared-state<path>` on this replica."""
        return f"{self.url}{API}{path}"

    def stderr(self) -> str:
        """Everything it wrote to stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def kill(self) -> None:
        """SIGKILL (a crash: no lease released, nothing flushed) and reap it."""
        if self.is_running:
            self.process.kill()
        await self.process.wait()
        self.is_paused = False

    def pause(self) -> None:
        """SIGSTOP: the process hangs as a whole, its lease runs out while it does."""
        self.process.send_signal(signal.SIGSTOP)
        self.is_paused = True

    def resume(self) -> None:
        """SIGCONT: it goes on from where it stopped, unaware of the time that passed."""
        self.process.send_signal(signal.SIGCONT)
        self.is_paused = False

    async def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM (a clean shutdown, the lease released) and the exit code."""
        if self.is_paused:
            self.resume()
        if self.is_running:
            self.process.terminate()
        return await asyncio.wait_for(self.process.wait(), timeout_s)


async def start_replica(name: str, env: dict[str, str], workdir: Path) -> Replica:
    """`shared-state serve --host 127.0.0.1 --port P` with `env` only (no `.env` is read:
    its working directory is a fresh one); returns at once, see `Cluster.wait_ready`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "stderr.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "shared_state", "serve", "--host", "127.0.0.1", "--port", str(port)),
            env=env,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    return Replica(name, f"http://127.0.0.1:{port}", process, log)


# --- what replicas served ------------------------------------------------------------------


def content_of(state: dict[str, Any]) -> str:
    """The part of a state that `version` counts, as canonical JSON."""
    content = {section: state.get(section) for section in CONTENT_SECTIONS}
    content["sources"] = {name: s["status"] for name, s in state["sources"].items()}
    return json.dumps(content, sort_keys=True)


@dataclass
class VersionLedger:
    """Every `(version, content)` any replica served, and each replica's last version in
    the order it answered (only from requests sent one after another)."""

    contents: dict[int, str] = field(default_factory=dict)
    served_by: dict[int, str] = field(default_factory=dict)
    latest: dict[str, int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    answers: int = 0

    def record(self, replica: str, state: dict[str, Any], *, in_order: bool) -> None:
        version: int = state["version"]
        content = content_of(state)
        self.answers += 1
        first = self.contents.setdefault(version, content)
        self.served_by.setdefault(version, replica)
        if first != content:
            self.conflicts.append(
                f"version {version} served by {self.served_by[version]} as {first[:300]} "
                f"and by {replica} as {content[:300]}"
            )
        if in_order:
            previous = self.latest.get(replica)
            if previous is not None and version < previous:
                self.regressions.append(f"{replica} served {version} after {previous}")
            self.latest[replica] = max(version, previous or version)

    def assert_consistent(self) -> None:
        """No version with two contents, no replica going back."""
        assert not self.conflicts, "\n".join(self.conflicts)
        assert not self.regressions, "\n".join(self.regressions)


# --- the deployment ------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as `{"name{labels}": value}` (comments left out)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


class Cluster:
    """The replicas of one deployment, the simulators they sync from and the Redis they
    share, with the reads and waits the tests are made of."""

    def __init__(
        self,
        redis_server: RedisServer,
        sims: SimulatorServers,
        workdir: Path,
        client: httpx.AsyncClient,
    ) -> None:
        self.redis_server = redis_server
        self.sims = sims
        self.workdir = workdir
        self.client = client
        self.prefix = f"replicas-{uuid.uuid4().hex[:8]}"
        self.replicas: list[Replica] = []
        self.ledger = VersionLedger()

    # environment and processes

    def env(self, **overrides: str) -> dict[str, str]:
        """A replica's whole environment: both upstreams with logins, Redis, a 2 s lease,
        a schedule that stays out of the way unless a test asks for one."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",
            **healthy_env(self.sims),  # the native simulators, with both logins
            "SHARED_STATE_REDIS_URL": self.redis_server.url,
            "SHARED_STATE_REDIS_PREFIX": self.prefix,
            "SHARED_STATE_LEASE_TTL_S": str(LEASE_TTL_S),
            "SHARED_STATE_SYNC_INTERVAL_S": "3600",
            "SHARED_STATE_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "SHARED_STATE_SHUTDOWN_TIMEOUT_S": "3",
            **overrides,
        }

    async def start(self, count: int, **env: str) -> list[Replica]:
        """`count` more replicas, started together; returns once each answers `/readyz`."""
        started: list[Replica] = []
        for _ in range(count):
            name = f"r{len(self.replicas) + 1}"
            replica = await start_replica(name, self.env(**env), self.workdir / name)
            self.replicas.append(replica)  # known at once: killed at the end whatever happens
            started.append(replica)
        await asyncio.gather(*(self.wait_ready(replica) for replica in started))
        return started

    async def wait_ready(self, replica: Replica) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if not replica.is_running:
                raise AssertionError(f"{replica} exited while starting\n{self.logs()}")
            with contextlib.suppress(httpx.TransportError):
                if (await self.client.get(f"{replica.url}/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{replica} not ready in {START_TIMEOUT_S} s\n{self.logs()}")
            await asyncio.sleep(POLL_S)  # another process: only HTTP can tell it is up

    @property
    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.is_running and not r.is_paused]

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.kill()

    def logs(self) -> str:
        """Every replica's stderr, last lines first-class for a failure message."""
        parts = []
        for replica in self.replicas:
            tail = "\n".join(replica.stderr().splitlines()[-40:])
            parts.append(f"--- {replica} stderr (last 40 lines) ---\n{tail}")
        return "\n".join(parts)

    # waiting

    async def eventually(
        self, check: Callable[[], Awaitable[T]], what: str, timeout_s: float = WAIT_S
    ) -> T:
        """`check()`'s value once it stops failing (an AssertionError, or a replica not
        answering); fails with the last error and the replicas' stderr after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return await check()
            except (AssertionError, httpx.TransportError) as error:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{what}: not so after {timeout_s} s: {error!r}\n{self.logs()}"
                    ) from error
            await asyncio.sleep(POLL_S)

    # reads

    async def state(self, replica: Replica, path: str = "", **params: str) -> httpx.Response:
        """GET `/api/shared-state<path>` on `replica` (200 asserted); a whole state read
        goes into the ledger."""
        response = await self.client.get(replica.api(path), params=params)
        assert response.status_code == 200, f"{replica}: {response.status_code} {response.text}"
        if path == "":
            self.ledger.record(replica.name, response.json(), in_order=False)
        return response

    async def store(self, replica: Replica) -> dict[str, Any]:
        """`/status.store` of `replica`."""
        response = await self.client.get(replica.api("/status"))
        assert response.status_code == 200, f"{replica}: {response.status_code} {response.text}"
        store: dict[str, Any] = response.json()["store"]
        return store

    async def metrics(self, replica: Replica) -> dict[str, float]:
        response = await self.client.get(f"{replica.url}/metrics")
        assert response.status_code == 200
        return parse_metrics(response.text)

    async def holder(self, among: list[Replica] | None = None) -> Replica:
        """The one replica of `among` (default: all running, not paused) that holds the
        lease, once exactly one does and every one of them names it as the holder."""
        replicas = among if among is not None else self.alive

        async def agreed() -> Replica:
            stores = [await self.store(replica) for replica in replicas]
            holding = [r for r, s in zip(replicas, stores, strict=True) if s["holding"]]
            assert len(holding) == 1, f"holding: {holding}, stores: {stores}"
            (holder_store,) = [s for s in stores if s["holding"]]
            assert holder_store["replica"] is not None
            assert {s["leaseHolder"] for s in stores} == {holder_store["replica"]}, stores
            assert {s["status"] for s in stores} == {"ok"}, stores
            return holding[0]

        return await self.eventually(agreed, "exactly one replica holds the lease")

    async def versions(self, replicas: list[Replica] | None = None) -> dict[str, int]:
        """Each replica's current `version`."""
        return {
            r.name: (await self.state(r)).json()["version"]
            for r in (replicas if replicas is not None else self.alive)
        }

    async def converged(self, replicas: list[Replica] | None = None) -> httpx.Response:
        """Once every replica answers the same version, content and ETag: one answer."""
        targets = replicas if replicas is not None else self.alive

        async def same() -> httpx.Response:
            answers = [await self.state(r) for r in targets]
            assert len({a.json()["version"] for a in answers}) == 1, [
                (r.name, a.json()["version"]) for r, a in zip(targets, answers, strict=True)
            ]
            assert len({content_of(a.json()) for a in answers}) == 1
            assert len({a.headers["etag"] for a in answers}) == 1
            return answers[0]

        return await self.eventually(same, "every replica serves one state")

    @asynccontextmanager
    async def sampling(self, replicas: list[Replica]) -> AsyncIterator[VersionLedger]:
        """Each replica's whole state read over and over, one request after another, into
        the ledger, for as long as the block runs (a paused one simply stops answering)."""

        async def sample(replica: Replica) -> None:
            while replica.is_running:
                try:
                    response = await self.client.get(replica.api(), timeout=1.0)
                except httpx.TransportError:
                    pass
                else:
                    if response.status_code == 200:
                        self.ledger.record(replica.name, response.json(), in_order=True)
                await asyncio.sleep(0.1)  # a sampler, not a wait: 10 reads a second

        tasks = [asyncio.create_task(sample(r), name=f"sample-{r.name}") for r in replicas]
        try:
            yield self.ledger
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # the upstreams

    async def sim(self, upstream: str, method: str, path: str, **kwargs: Any) -> Any:
        """A `/_sim` control call on `anythingllm` or `librechat`; its JSON (None if empty)."""
        base = self.sims.anythingllm_url if upstream == "anythingllm" else self.sims.librechat_url
        response = await self.client.request(method, f"{base}{path}", **kwargs)
        assert response.is_success, f"{upstream} {method} {path}: {response.text}"
        return response.json() if response.content else None

    async def sim_stats(self) -> dict[str, dict[str, Any]]:
        return {u: await self.sim(u, "GET", "/_sim/stats") for u in ("anythingllm", "librechat")}

    async def sim_writes(self) -> dict[str, list[dict[str, Any]]]:
        return {u: await self.sim(u, "GET", "/_sim/writes") for u in ("anythingllm", "librechat")}


@asynccontextmanager
async def event_stream(
    client: httpx.AsyncClient, replica: Replica, **headers: str
) -> AsyncIterator[EventReader]:
    """`GET /api/shared-state/events` on `replica`, streaming; yields a reader past the
    opening `retry:` field."""
    async with client.stream("GET", replica.api("/events"), headers=headers) as response:
        assert response.status_code == 200, f"{replica}: {response.status_code}"
        reader = EventReader(response.aiter_lines())
        opening = await reader.message()
        assert opening.retry is not None, opening
        yield reader
