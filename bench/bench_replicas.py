"""Replicas benchmark: what running two replicas on one Redis costs against one process.

Every server is a real `shared-state serve` subprocess on a loopback port, against the
packaged simulators (`shared-state simulate`, its own process, seeded with 1,000 more
LibreChat conversations: a state of about 270 kB, as in `bench_http.py`):

- `in-memory`: one process without `SHARED_STATE_REDIS_URL`, the baseline;
- `holder` and `follower`: two replicas on one `redis-server` (Debian's, started as the
  test suite starts it: `tests/redis_server.py`), `SHARED_STATE_LEASE_TTL_S=2`.

It measures, each against a baseline taken in the same run (on a shared 2-core machine
absolute figures swing by 2x between runs, ratios much less):

1. read throughput per replica (`GET /api/shared-state`, c=32, `bench_http.py`'s load
   generator in another process, runs interleaved) against the in-memory process;
2. change to delivery across replicas: (a) a workspace created in the simulated
   AnythingLLM, then `POST /sync` on the holder, and (b) a write on the follower
   (forwarded to the holder), until each replica's event stream has the `changed` event;
   the follower's stream against the holder's own;
3. takeover: SIGKILL (and SIGTERM) the holder, the time until the other replica's
   `/status` says `store.holding` and until it has published a new version, with the TTL.

It also prints what the upstreams saw (no upstream request while the replicas serve reads)
and what Redis holds (bytes per key), the figures behind the README's sizing. It prints
figures and asserts nothing; without `redis-server` it says so in one line and exits 0.
`BENCH_RUNS`, `BENCH_DURATION_S`, `BENCH_CHANGES` and `BENCH_TAKEOVERS` change the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from shared_state.simulator import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH_HTTP = Path(__file__).resolve().parent / "bench_http.py"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "1.5"))
CHANGES = int(os.environ.get("BENCH_CHANGES", "30"))
TAKEOVERS = int(os.environ.get("BENCH_TAKEOVERS", "3"))
CONCURRENCY = 32
CONVERSATIONS = 1_000
LEASE_TTL_S = 2.0
STATE = "/api/shared-state"
START_TIMEOUT_S = 60.0
"""Generous: a loaded 2-core machine may take a while to start a Python process."""
EVENT_TIMEOUT_S = 30.0
ENV_BASE = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the processes ---------------------------------------------------------------------


@dataclass
class Server:
    """A subprocess listening on a loopback port; its output goes to `log`."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


@dataclass
class Fleet:
    """Every process the bench started, so that all of them are stopped on the way out."""

    workdir: Path
    servers: list[Server] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    async def start(
        self, name: str, arguments: list[str], env: dict[str, str], port: int
    ) -> Server:
        """`shared-state ARGUMENTS` in its own process; `port` is where it will listen."""
        log = self.workdir / f"{name}.log"
        handle = log.open("ab")
        self._logs.append(handle)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shared_state",
            *arguments,
            env={**ENV_BASE, **env},
            cwd=self.workdir,  # no `.env` of the checkout is read
            stdout=handle,
            stderr=handle,
        )
        server = Server(name, process, port, log)
        self.servers.append(server)
        return server

    async def serve(self, name: str, env: dict[str, str]) -> Server:
        """`shared-state serve` on a free port, returned once `/readyz` is 200."""
        port = _free_port()
        server = await self.start(name, ["serve", "--port", str(port)], env, port)
        await _wait_for(server, "/readyz")
        return server

    async def close(self) -> None:
        for server in self.servers:
            if server.process.returncode is None:
                server.process.terminate()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.process.wait(), 15)
            except TimeoutError:
                server.process.kill()
                await server.process.wait()
        for handle in self._logs:
            handle.close()


async def _wait_for(server: Server, path: str, port: int | None = None) -> None:
    """Poll `path` until it answers 200 (another process: only HTTP can tell)."""
    url = f"http://127.0.0.1:{port or server.port}{path}"
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{server.name}: {path} not 200 in {START_TIMEOUT_S:g} s")


@dataclass
class Simulators:
    """`shared-state simulate` in its own process, and its two upstreams' URLs."""

    server: Server
    anythingllm: str
    librechat: str


async def start_simulators(fleet: Fleet) -> Simulators:
    """The native simulators, ready, with `CONVERSATIONS` more LibreChat conversations."""
    allm, lc = _free_port(), _free_port()
    arguments = ["simulate", "--host", "127.0.0.1", "--anythingllm-port", str(allm)]
    server = await fleet.start("simulator", [*arguments, "--librechat-port", str(lc)], {}, allm)
    for port in (allm, lc):
        await _wait_for(server, "/_sim/state", port)
    sims = Simulators(server, f"http://127.0.0.1:{allm}", f"http://127.0.0.1:{lc}")
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"{sims.librechat}/_sim/conversations/bulk", json={"count": CONVERSATIONS}
        )
        answer.raise_for_status()
    return sims


def service_env(sims: Simulators, **extra: str) -> dict[str, str]:
    """The native simulators' credentials; no scheduled sync during the bench (every
    version it measures is one it made)."""
    return {
        "ANYTHINGLLM_BASE_URL": sims.anythingllm,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "LIBRECHAT_BASE_URL": sims.librechat,
        "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
        "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        "SHARED_STATE_SYNC_INTERVAL_S": "3600",
        **extra,
    }


# --- reading a replica -------------------------------------------------------------------


async def get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    answer = await client.get(url)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


async def store_of(client: httpx.AsyncClient, server: Server) -> dict[str, Any]:
    status = await get_json(client, f"{server.url}{STATE}/status")
    store = status.get("store")
    if not isinstance(store, dict):
        raise RuntimeError(
            f"{server.name}'s /status has no `store` object: this build does not run replicas"
        )
    return {**store, "version": status["version"]}


async def roles(
    client: httpx.AsyncClient, replicas: list[Server], deadline_s: float = START_TIMEOUT_S
) -> tuple[Server, Server]:
    """(holder, follower), once exactly one holds the lease and the other knows it."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        stores = [await store_of(client, replica) for replica in replicas]
        holding = [r for r, s in zip(replicas, stores, strict=True) if s["holding"]]
        holder_ids = {s["leaseHolder"] for s in stores}
        if len(holding) == 1 and len(holder_ids) == 1 and None not in holder_ids:
            follower = next(r for r in replicas if r is not holding[0])
            return holding[0], follower
        await asyncio.sleep(0.05)
    raise RuntimeError("no single lease holder that both replicas agree on")


# --- 1. reads ------------------------------------------------------------------------------


async def run_load(port: int) -> dict[str, float]:
    """`bench_http.py load`: a keep-alive load from another process; rps, p50, errors."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, str(BENCH_HTTP), "load", str(port), STATE),
        *(str(CONCURRENCY), str(DURATION_S), "", ""),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    result: dict[str, float] = json.loads(output)
    return result


def _spread(values: list[float], unit: str, digits: int = 0) -> str:
    median = statistics.median(values)
    return (
        f"{median:,.{digits}f} {unit} (min {min(values):,.{digits}f} to {max(values):,.{digits}f})"
    )


async def measure_reads(
    client: httpx.AsyncClient, servers: dict[str, Server], sims: Simulators
) -> None:
    holder, follower = servers["holder"], servers["follower"]
    answers = [await client.get(f"{s.url}{STATE}") for s in (holder, follower)]
    same = answers[0].content == answers[1].content
    etags = {a.headers.get("etag") for a in answers}
    print(
        f"holder and follower answer the same bytes: {same}, the same ETag: "
        f"{len(etags) == 1} ({', '.join(sorted(str(e) for e in etags))})"
    )
    await _clear_stats(client, sims)
    size = len((await client.get(f"{servers['in-memory'].url}{STATE}")).content)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for _ in range(RUNS):
        for name, server in servers.items():
            results[name].append(await run_load(server.port))
    print(
        f"\nGET {STATE} ({size:,} bytes), c={CONCURRENCY}, {RUNS} runs x {DURATION_S:g} s "
        "per figure, interleaved, one server at a time"
    )
    base_rps = statistics.median(r["rps"] for r in results["in-memory"])
    base_p50 = statistics.median(r["p50_ms"] for r in results["in-memory"])
    for name in servers:
        rps = [r["rps"] for r in results[name]]
        p50 = [r["p50_ms"] for r in results[name]]
        line = f"  {name:<10} {_spread(rps, 'req/s')}; p50 {_spread(p50, 'ms', 3)}"
        if name != "in-memory":
            line += (
                f"; req/s ratio {statistics.median(rps) / base_rps:.2f}, "
                f"p50 ratio {statistics.median(p50) / base_p50:.2f}"
            )
        errors = sum(int(r["errors"]) for r in results[name])
        if errors:
            line += f"; {errors} non-200 answers"
        print(line)
    served = sum(r["rps"] * DURATION_S for name in servers for r in results[name])
    asked = await _upstream_requests(client, sims)
    print(
        f"  (a GET is answered from the replica's own copy: the upstreams were asked "
        f"{asked} times during these {served:,.0f} GETs)"
    )


async def _clear_stats(client: httpx.AsyncClient, sims: Simulators) -> None:
    for url in (sims.anythingllm, sims.librechat):
        (await client.delete(f"{url}/_sim/stats")).raise_for_status()


async def _upstream_requests(client: httpx.AsyncClient, sims: Simulators) -> int:
    total = 0
    for url in (sims.anythingllm, sims.librechat):
        total += sum((await get_json(client, f"{url}/_sim/stats"))["paths"].values())
    return total


# --- 2. change to delivery ------------------------------------------------------------------


@dataclass
class StreamWatch:
    """One replica's event stream, read in this process: stamps (perf_counter) the arrival
    of the `changed` events that the bench is waiting for, by a key made from the event."""

    server: Server
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    versions: list[int] = field(default_factory=list)

    def expect(self, key: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    async def run(self) -> None:
        url = f"{self.server.url}{STATE}/events"
        async with (
            httpx.AsyncClient(timeout=None) as client,  # noqa: S113 (an endless stream)
            client.stream("GET", url) as response,
        ):
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                arrived = time.perf_counter()
                event = json.loads(line[6:])
                self.connected.set()
                if event.get("type") != "changed":
                    continue
                self.versions.append(int(event["version"]))
                for key in event_keys(event):
                    future = self.waiting.pop(key, None)
                    if future is not None and not future.done():
                        future.set_result(arrived)


def event_keys(event: dict[str, Any]) -> list[str]:
    """What a `changed` event says happened, as the bench names its changes."""
    changes = event.get("changes", {})
    keys = [
        f"workspace:{item.get('name')}" for item in changes.get("workspaces", {}).get("added", [])
    ]
    temperature = changes.get("settings", {}).get("llm", {}).get("temperature")
    if isinstance(temperature, int | float):
        keys.append(f"temperature:{round(float(temperature), 2)}")
    return keys


def _temperature(n: int) -> float:
    """The n-th write's temperature: a new value each time (the demo's 0.7 is never one)."""
    return round(0.01 * (n + 1), 2)


def _p90(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
    )


def _delivery_line(label: str, values: list[float]) -> str:
    return (
        f"  {label:<24} median {statistics.median(values):7.1f} ms, p90 {_p90(values):7.1f} ms "
        f"(min {min(values):.1f} to {max(values):.1f})"
    )


async def measure_delivery(
    client: httpx.AsyncClient, holder: Server, follower: Server, sims: Simulators
) -> None:
    watches = {"holder": StreamWatch(holder), "follower": StreamWatch(follower)}
    tasks = [asyncio.create_task(watch.run()) for watch in watches.values()]
    try:
        for watch in watches.values():
            await asyncio.wait_for(watch.connected.wait(), EVENT_TIMEOUT_S)
        run = os.getpid()

        async def create_workspace_then_sync(n: int) -> None:
            created = await client.post(
                f"{sims.anythingllm}/_sim/workspaces", json={"name": f"bench-{run}-{n}"}
            )
            created.raise_for_status()
            (await client.post(f"{holder.url}{STATE}/sync")).raise_for_status()

        async def write_on_follower(n: int) -> None:
            answer = await client.post(
                f"{follower.url}{STATE}/llm-settings",
                json={"temperature": _temperature(n)},
                headers={"Idempotency-Key": f"bench-{run}-{n}"},
            )
            answer.raise_for_status()

        scenarios: list[tuple[str, Callable[[int], str], Callable[[int], Awaitable[None]]]] = [
            (
                "a workspace created in the simulated AnythingLLM, then POST /sync on the holder",
                lambda n: f"workspace:bench-{run}-{n}",
                create_workspace_then_sync,
            ),
            (
                "a write on the follower (POST /llm-settings, carried out by the holder)",
                lambda n: f"temperature:{_temperature(n)}",
                write_on_follower,
            ),
        ]
        print(
            f"\nChange to delivery, {CHANGES} changes each (+1 warm-up), the event streams read "
            "in this process; times from the start of the change"
        )
        for title, key_of, change in scenarios:
            times: dict[str, list[float]] = {name: [] for name in watches}
            answered: list[float] = []
            for n in range(CHANGES + 1):
                futures = {name: watch.expect(key_of(n)) for name, watch in watches.items()}
                started = time.perf_counter()
                await change(n)
                done = time.perf_counter()
                arrivals = {
                    name: await asyncio.wait_for(future, EVENT_TIMEOUT_S)
                    for name, future in futures.items()
                }
                if n == 0:
                    continue  # warm-up
                answered.append((done - started) * 1000)
                for name, arrival in arrivals.items():
                    times[name].append((arrival - started) * 1000)
            print(f" {title}:")
            print(_delivery_line("answered", answered))
            print(_delivery_line("holder's stream", times["holder"]))
            ratio = statistics.median(times["follower"]) / statistics.median(times["holder"])
            print(_delivery_line("follower's stream", times["follower"]) + f"; ratio {ratio:.2f}x")
            gaps = [f - h for f, h in zip(times["follower"], times["holder"], strict=True)]
            print(
                f"  follower - holder, per change: median {statistics.median(gaps):+.1f} ms, "
                f"p90 {_p90(gaps):+.1f} ms (min {min(gaps):+.1f} to {max(gaps):+.1f})"
            )
        seen = {name: watch.versions for name, watch in watches.items()}
        consecutive = all(v == list(range(v[0], v[0] + len(v))) for v in seen.values() if v)
        print(
            f"  both streams: {len(seen['holder'])} and {len(seen['follower'])} changed events, "
            f"the same versions: {seen['holder'] == seen['follower']}, in order with no gap: "
            f"{consecutive}"
        )
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task


# --- 3. takeover -----------------------------------------------------------------------------


@dataclass
class Takeover:
    """One round: seconds from the signal to `holding` and to the next version."""

    signal_name: str
    holding_s: float
    published_s: float
    before: int
    after: int


async def take_over(
    client: httpx.AsyncClient,
    fleet: Fleet,
    replicas: list[Server],
    sims: Simulators,
    env: dict[str, str],
    number: int,
    how: signal.Signals,
) -> Takeover:
    """Stop the holder with `how`; time the follower's takeover; start a fresh replica in
    the stopped one's place (so that every round starts with two)."""
    holder, follower = await roles(client, replicas)
    before = (await store_of(client, follower))["version"]
    # A change only the next sync can see: the new holder's first sync publishes it.
    name = f"takeover-{os.getpid()}-{number}"
    (
        await client.post(f"{sims.anythingllm}/_sim/workspaces", json={"name": name})
    ).raise_for_status()
    started = time.perf_counter()
    holder.process.send_signal(how)
    holding_at: float | None = None
    published_at: float | None = None
    after = before
    deadline = started + 10 * LEASE_TTL_S + START_TIMEOUT_S
    while (holding_at is None or published_at is None) and time.perf_counter() < deadline:
        store = await store_of(client, follower)
        now = time.perf_counter()
        if holding_at is None and store["holding"]:
            holding_at = now
        if published_at is None and store["version"] > before:
            published_at, after = now, int(store["version"])
        await asyncio.sleep(0.01)
    await holder.process.wait()
    if holding_at is None or published_at is None:
        raise RuntimeError(f"no takeover within {deadline - started:.0f} s:\n{follower.log_tail()}")
    replicas.remove(holder)
    replicas.append(await fleet.serve(f"replica-{number + 3}", env))
    await roles(client, replicas)
    return Takeover(how.name, holding_at - started, published_at - started, before, after)


async def measure_takeovers(
    client: httpx.AsyncClient,
    fleet: Fleet,
    replicas: list[Server],
    sims: Simulators,
    env: dict[str, str],
) -> None:
    await _clear_stats(client, sims)
    plan = [signal.SIGKILL] * TAKEOVERS + [signal.SIGTERM]
    rounds = [
        await take_over(client, fleet, replicas, sims, env, n, how) for n, how in enumerate(plan)
    ]
    print(
        f"\nTakeover, SHARED_STATE_LEASE_TTL_S={LEASE_TTL_S:g}: the holder stopped, the time "
        "until the other replica holds the lease and has published a new version"
    )
    for name in ("SIGKILL", "SIGTERM"):
        chosen = [r for r in rounds if r.signal_name == name]
        if not chosen:
            continue
        holding = [r.holding_s for r in chosen]
        published = [r.published_s for r in chosen]
        steps = ", ".join(f"{r.before}->{r.after}" for r in chosen)
        note = "lease left to expire" if name == "SIGKILL" else "lease released at shutdown"
        print(f"  {name} ({note}), {len(chosen)} round{'s' * (len(chosen) > 1)}:")
        in_ttl = statistics.median(holding) / LEASE_TTL_S
        print(f"    holding after    {_spread(holding, 's', 2)} = {in_ttl:.2f} TTL")
        print(f"    published after  {_spread(published, 's', 2)}; versions {steps}")
    logins = (await get_json(client, f"{sims.librechat}/_sim/stats"))["logins"]
    print(
        f"  LibreChat logins during the takeovers: {logins} (one per new holder: "
        f"{len(rounds)}; a follower never logs in)"
    )


# --- 4. what Redis holds ---------------------------------------------------------------------


async def report_redis(url: str, prefix: str, empty_bytes: int, state_bytes: int) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        used = int((await client.info("memory"))["used_memory"])
        sizes: dict[str, int] = {}
        async for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
            key = raw.decode()
            kind = key.removeprefix(f"{prefix}:").split(":", 1)[0]
            sizes[kind] = sizes.get(kind, 0) + int(await client.memory_usage(key) or 0)
        entries = int(await client.xlen(f"{prefix}:log"))
        idempotency = sum([1 async for _ in client.scan_iter(match=f"{prefix}:idempotency:*")])
    finally:
        await client.aclose()
    print(f"\nWhat Redis holds now (prefix `{prefix}`; the state's JSON is {state_bytes:,} bytes):")
    for kind, size in sorted(sizes.items(), key=lambda item: -item[1]):
        detail = {"log": f" ({entries} entries)", "idempotency": f" ({idempotency} keys)"}
        print(f"  {prefix}:{kind:<16} {size:>10,} bytes{detail.get(kind, '')}")
    print(
        f"  used_memory {used / 2**20:.1f} MiB, {(used - empty_bytes) / 2**20:.1f} MiB above the "
        f"empty server's {empty_bytes / 2**20:.1f} MiB"
    )


# --- the conductor ---------------------------------------------------------------------------


def _redis_server() -> tuple[Any, str] | None:
    """The test suite's `RedisServer` class and Debian's `redis-server`, or None."""
    sys.path.insert(0, str(ROOT))
    from tests.redis_server import RedisServer, find_redis_server

    executable = find_redis_server()
    return None if executable is None else (RedisServer, executable)


@contextlib.asynccontextmanager
async def fleet_in(workdir: Path) -> AsyncIterator[Fleet]:
    fleet = Fleet(workdir)
    try:
        yield fleet
    finally:
        await fleet.close()


async def empty_memory(url: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        return int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()


async def main() -> None:
    print(
        f"bench_replicas: 2 replicas on one redis-server against 1 in-memory process, "
        f"`shared-state serve` each, against the simulators (+{CONVERSATIONS} conversations); "
        f"{os.cpu_count()} CPUs (shared with whatever else runs: figures are noisy)"
    )
    found = _redis_server()
    if found is None:
        print("  skipped: no `redis-server` found (Debian: apt-get install redis-server)")
        return
    redis_server_class, executable = found
    prefix = f"bench-{os.getpid()}"
    with (
        tempfile.TemporaryDirectory(prefix="bench-replicas-") as workdir,
        redis_server_class(executable) as redis_server,
    ):
        empty_bytes = await empty_memory(redis_server.url)
        async with fleet_in(Path(workdir)) as fleet, httpx.AsyncClient(timeout=60) as client:
            sims = await start_simulators(fleet)
            memory = await fleet.serve("in-memory", service_env(sims))
            replica_env = service_env(
                sims,
                SHARED_STATE_REDIS_URL=redis_server.url,
                SHARED_STATE_REDIS_PREFIX=prefix,
                SHARED_STATE_LEASE_TTL_S=f"{LEASE_TTL_S:g}",
            )
            await _clear_stats(client, sims)
            replicas = [await fleet.serve("replica-1", replica_env)]
            replicas.append(await fleet.serve("replica-2", replica_env))
            holder, follower = await roles(client, replicas)
            logins = (await get_json(client, f"{sims.librechat}/_sim/stats"))["logins"]
            print(f"LibreChat logins while both replicas started: {logins}")
            servers = {"in-memory": memory, "holder": holder, "follower": follower}
            await measure_reads(client, servers, sims)
            await measure_delivery(client, holder, follower, sims)
            state_bytes = len((await client.get(f"{holder.url}{STATE}")).content)
            await report_redis(redis_server.url, prefix, empty_bytes, state_bytes)
            await measure_takeovers(client, fleet, replicas, sims, replica_env)


if __name__ == "__main__":
    asyncio.run(main())
