"""HTTP benchmark: GET throughput, latency and resident memory against bare FastAPI.

Every server runs in its own process under uvicorn (httptools, uvloop, access log off
for all of them, the bare one included), on a loopback port:

- `bare`: a bare FastAPI app, one route per path, each returning the same bytes as ours
  as a constant `Response`;
- `ours`: `create_app` with the default configuration and two upstreams that answer
  from memory a state of about 256 kB (1,000 conversations, 200 workspaces);
- `ours+token`: the same with `SHARED_STATE_API_TOKEN` set (the load sends it).

The load generator is another process: a small asyncio HTTP/1.1 keep-alive client on
raw sockets (`wrk` is not required). Runs are interleaved (bare, ours, ours+token, ...)
to cancel drift. It prints figures and asserts nothing. `BENCH_RUNS` and
`BENCH_DURATION_S` change the number and length of runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "1.5"))
CONVERSATIONS = 1_000
WORKSPACES = 200
TOKEN = "bench-token"  # noqa: S105 (a benchmark's own token)
PATHS = ["/api/shared-state", "/api/shared-state/settings", "/api/shared-state/conversations"]
CONCURRENCIES = [32, 1]
SERVERS = ["bare", "ours", "ours+token"]


# --- the servers (each run as `python bench_http.py serve KIND PORT [BODIES_DIR]`) -------


def _conversations(n: int) -> list[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "id": f"c-{i:05d}",
            "conversationId": f"c-{i:05d}",
            "_id": f"6601{i:020x}",
            "user": "665f0c1a2b3c4d5e6f708192",
            "title": f"Conversation number {i}",
            "endpoint": "openAI",
            "model": "gpt-4o",
            "createdAt": (start + timedelta(minutes=i)).isoformat(),
            "updatedAt": (start + timedelta(minutes=i, seconds=30)).isoformat(),
        }
        for i in range(n)
    ]


def _workspaces(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"Workspace {i}", "slug": f"workspace-{i}", "openAiTemp": 0.7}
        for i in range(n)
    ]


def _serve_ours(port: int, token: str | None) -> None:
    import uvicorn

    from shared_state import Settings, create_app
    from shared_state.domain.models import LlmValues, SourceName, UpstreamSnapshot, WritableSection

    class MemoryUpstream:
        """An upstream that answers from memory at once: the bench measures the sidecar."""

        def __init__(self, name: SourceName, snapshot: UpstreamSnapshot) -> None:
            self.name: SourceName = name
            self.snapshot = snapshot
            self.stored_fields: Mapping[WritableSection, frozenset[str]] = {}

        async def fetch(self) -> UpstreamSnapshot:
            return self.snapshot

        async def write_settings(
            self, section: WritableSection, values: Mapping[str, Any]
        ) -> dict[str, Any]:
            return {}

    user = {"id": 1, "username": "ada", "email": "ada@example.com", "role": "admin"}
    upstreams = [
        MemoryUpstream(
            "anythingllm",
            UpstreamSnapshot(
                user=user,
                llm=LlmValues(provider="openai", model="gpt-4o"),
                workspaces=_workspaces(WORKSPACES),
            ),
        ),
        MemoryUpstream(
            "librechat", UpstreamSnapshot(user=user, conversations=_conversations(CONVERSATIONS))
        ),
    ]
    from shared_state import embedded, serving

    settings = Settings(
        _env_file=None, SHARED_STATE_API_TOKEN=token, SHARED_STATE_MAX_CONNECTIONS=SUBSCRIBERS + 100
    )
    app = create_app(settings, upstreams=upstreams)
    # Served as `shared-state serve` serves it: its protocol (request deadline, connection
    # cap), uvloop, no access log, start-up objects frozen out of the collector.
    config = serving.service_config(app, settings)
    sock = embedded.bind("127.0.0.1", port)
    server = uvicorn.Server(config)
    serving.freeze_start_up_objects()
    server.run(sockets=[sock])


def _serve_bare(port: int, bodies_dir: Path) -> None:
    import uvicorn
    from fastapi import FastAPI, Response

    def route(body: bytes) -> Any:
        # An async endpoint returning constant bytes: the least a FastAPI route can do.
        async def endpoint() -> Response:
            return Response(content=body, media_type="application/json")

        return endpoint

    app = FastAPI()
    for index, path in enumerate(PATHS):
        app.add_api_route(path, route((bodies_dir / f"{index}.json").read_bytes()), methods=["GET"])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning")  # fmt: skip


# --- the load generator (run as `python bench_http.py load PORT PATH CONC SECONDS [TOKEN]`)


async def _load(
    port: int, path: str, concurrency: int, seconds: float, token: str, etag: str = ""
) -> None:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    auth += f"If-None-Match: {etag}\r\n" if etag else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()
    expected = b"HTTP/1.1 304" if etag else b"HTTP/1.1 200"
    latencies_ns: list[int] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clock = time.perf_counter_ns
        while time.perf_counter() < deadline:
            started = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if b"content-length: " in head:
                length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
            latencies_ns.append(clock() - started)
            if not head.startswith(expected):
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "rps": len(latencies_ns) / elapsed,
        "p50_ms": statistics.median(latencies_ns) / 1e6 if latencies_ns else float("nan"),
        "errors": errors,
    }))  # fmt: skip


# --- the conductor ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(kind: str, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    command = [sys.executable, __file__, "serve", kind, str(port), *extra]
    process = subprocess.Popen(command)  # noqa: S603 (this very file, with our own arguments)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    return process, port


def _get(port: int, path: str, token: str | None = None) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http, loopback)
        body: bytes = response.read()
        return body


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _get(port, "/readyz")
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the service did not become ready")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run_load(
    port: int, path: str, concurrency: int, token: str, etag: str = ""
) -> dict[str, float]:
    command = [sys.executable, __file__, "load", str(port), path, str(concurrency),
               str(DURATION_S), token, etag]  # fmt: skip
    run = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603 (same)
    output = run.stdout
    result: dict[str, float] = json.loads(output)
    return result


def _spread(values: list[float], unit: str, digits: int = 0) -> str:
    median = statistics.median(values)
    return (
        f"{median:,.{digits}f} {unit} (min {min(values):,.{digits}f} to {max(values):,.{digits}f})"
    )


def main() -> None:
    print(
        f"bench_http: {CONVERSATIONS} conversations + {WORKSPACES} workspaces; "
        f"{RUNS} runs x {DURATION_S:g} s per figure, interleaved; {os.cpu_count()} CPUs "
        "(shared with whatever else runs: figures are noisy)\n"
        "servers: uvicorn, httptools, uvloop, access log off for all three (bare included);"
        " dev-only modules (rich, pygments) kept out of all three, as in a production install"
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as bodies:
        try:
            processes["ours"], ports["ours"] = _start("ours")
            processes["ours+token"], ports["ours+token"] = _start("ours+token")
            for name in ("ours", "ours+token"):
                _wait_ready(ports[name])
            for index, path in enumerate(PATHS):
                Path(bodies, f"{index}.json").write_bytes(_get(ports["ours"], path))
            processes["bare"], ports["bare"] = _start("bare", bodies)
            sizes = {path: len(_get(ports["bare"], path)) for path in PATHS}
            same = all(_get(ports["bare"], path) == _get(ports["ours"], path) for path in PATHS)
            print(f"bare and ours answer the same bytes: {same}\n")
            _measure(ports, sizes)
            _report_memory(processes)
            _measure_not_modified(ports["ours"])
            _measure_delivery(ports["ours"])
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(timeout=10)


def _measure(ports: Mapping[str, int], sizes: Mapping[str, int]) -> None:
    for concurrency in CONCURRENCIES:
        for path in PATHS:
            results: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
            for _ in range(RUNS):
                for name in SERVERS:
                    token = TOKEN if name == "ours+token" else ""
                    results[name].append(_run_load(ports[name], path, concurrency, token))
            print(f"GET {path} ({sizes[path]:,} bytes), c={concurrency}")
            bare_rps = statistics.median(r["rps"] for r in results["bare"])
            bare_p50 = statistics.median(r["p50_ms"] for r in results["bare"])
            for name in SERVERS:
                rps = [r["rps"] for r in results[name]]
                p50 = [r["p50_ms"] for r in results[name]]
                errors = sum(int(r["errors"]) for r in results[name])
                line = f"  {name:<11} {_spread(rps, 'req/s')}; p50 {_spread(p50, 'ms', 3)}"
                if name != "bare":
                    ratio = statistics.median(rps) / bare_rps
                    p50_ratio = statistics.median(p50) / bare_p50
                    line += f"; req/s ratio {ratio:.2f}, p50 ratio {p50_ratio:.2f}"
                if errors:
                    line += f"; {errors} non-200 answers"
                print(line)
            target = (
                "target: req/s ratio >= 0.9 (stretch 1.0)"
                if concurrency > 1
                else "target: p50 ratio <= 1.2"
            )
            print(f"  ({target})")


def _measure_not_modified(port: int) -> None:
    """What a 304 costs against the 200 it saves, for the big and the small answer."""
    print("\nConditional GETs (ours, c=32): If-None-Match with the current ETag -> 304")
    for path in (PATHS[0], PATHS[1]):
        etag = _etag(port, path)
        full = [_run_load(port, path, 32, "")["rps"] for _ in range(RUNS)]
        fresh = [_run_load(port, path, 32, "", etag)["rps"] for _ in range(RUNS)]
        ratio = statistics.median(fresh) / statistics.median(full)
        print(
            f"  {path}: 200 {_spread(full, 'req/s')}; 304 {_spread(fresh, 'req/s')} "
            f"-> a 304 serves {ratio:.2f}x the requests"
        )


def _etag(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    return next(line.split(": ", 1)[1] for line in head.split("\r\n") if line.startswith("etag"))


SUBSCRIBERS = 1000
_CHANGED_ID = re.compile(rb"event: changed\n(?:[a-z]+: [^\n]*\n)*?id: ([0-9]+)\n")
CHANGES = 20


def _measure_delivery(port: int) -> None:
    """Change-to-delivery latency: 1,000 event streams open, a change written, the time
    until each stream has its `changed` event; from another process."""
    command = [sys.executable, __file__, "sse", str(port), str(SUBSCRIBERS), str(CHANGES)]
    run = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603 (same)
    result = json.loads(run.stdout)
    print(
        f"\nChange to delivery, {SUBSCRIBERS} event streams, {CHANGES} changes "
        f"({result['delivered']:,} deliveries, {result['missed']} missed):\n"
        f"  p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max "
        f"{result['max_ms']:.1f} ms (target: p99 <= 250 ms)"
    )


async def _subscribers(port: int, count: int, changes: int) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = (
        b"GET /api/shared-state/events?sections=settings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Accept: text/event-stream\r\n\r\n"
    )
    arrivals: dict[int, list[float]] = {}
    ready = 0
    all_ready = asyncio.Event()

    async def stream() -> None:
        # Chunks, not lines: the client must cost less than the server it measures.
        nonlocal ready
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        is_ready = False
        pending = b""
        try:
            while chunk := await reader.read(65536):
                arrived = time.perf_counter()
                pending += chunk
                done, _, pending = pending.rpartition(b"\n\n")  # whole events only
                if not is_ready and b"event: snapshot" in done:
                    is_ready = True
                    ready += 1
                    if ready == count:
                        all_ready.set()
                for match in _CHANGED_ID.finditer(done + b"\n"):
                    arrivals.setdefault(int(match[1]), []).append(arrived)
        finally:
            writer.close()

    tasks = [asyncio.create_task(stream()) for _ in range(count)]
    await asyncio.wait_for(all_ready.wait(), 60)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: dict[int, float] = {}
    for n in range(changes):
        theme = "dark" if n % 2 == 0 else "light"
        body = json.dumps({"theme": theme}).encode()
        started = time.perf_counter()
        writer.write(
            b"POST /api/shared-state/ui-settings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)
        status = await _status_version(port)
        sent[status] = started
        await asyncio.sleep(0.2)  # let every stream drain before the next change
    await asyncio.sleep(1)
    for task in tasks:
        task.cancel()
    latencies = sorted(
        (arrival - sent[version]) * 1000
        for version, times in arrivals.items()
        if version in sent
        for arrival in times
    )
    expected = count * len(sent)
    print(json.dumps({
        "delivered": len(latencies),
        "missed": expected - len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": latencies[-1],
    }))  # fmt: skip


async def _status_version(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/shared-state/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    return int(json.loads(answer.split(b"\r\n\r\n", 1)[1])["version"])


def _report_memory(processes: Mapping[str, subprocess.Popen[bytes]]) -> None:
    rss = {name: _rss_mib(process.pid) for name, process in processes.items()}
    print(f"\nRSS after the load ({CONVERSATIONS} conversations):")
    for name in SERVERS:
        print(f"  {name:<11} {rss[name]:.1f} MiB")
    print(f"  ours - bare: {rss['ours'] - rss['bare']:+.1f} MiB (target: within 10 MiB)")


DEV_ONLY_MODULES = ("rich", "pygments")
"""In this virtualenv only for the test tools (schemathesis, pytest); httpx imports rich
when it finds it (for its own command line), which costs 3 MiB that a production install,
without them, does not pay. The servers measured go without them, bare included."""


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        for name in DEV_ONLY_MODULES:
            sys.modules[name] = None  # type: ignore[assignment]  # an import then fails
        kind, port = sys.argv[2], int(sys.argv[3])
        if kind == "bare":
            _serve_bare(port, Path(sys.argv[4]))
        else:
            _serve_ours(port, TOKEN if kind == "ours+token" else None)
    elif len(sys.argv) > 1 and sys.argv[1] == "load":
        import uvloop

        port, path, concurrency, seconds = (
            int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
        )  # fmt: skip
        uvloop.run(_load(port, path, concurrency, seconds, *sys.argv[6:8]))
    elif len(sys.argv) > 1 and sys.argv[1] == "sse":
        import uvloop

        uvloop.run(_subscribers(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
    else:
        main()
