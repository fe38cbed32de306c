"""Benchmarks of the sync path: what a sync costs against what reading the upstream costs,
the longest event-loop stall while syncing, and the state's memory against its JSON.

The real adapters (native AnythingLLM and LibreChat) read from an in-process upstream
(`httpx.MockTransport` answering bytes rendered before each timed sync, yielding to the
event loop once per request as a network round trip does), so what is timed
is the sidecar's own work: fetch, parse, compare, merge, render, snapshot. Prints figures
and ratios; asserts nothing (targets live here, not in unit tests). Run with `make bench`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from shared_state.adapters.anythingllm_native import AnythingLLMNative
from shared_state.adapters.base import Upstream
from shared_state.adapters.http import JsonApi
from shared_state.adapters.librechat_auth import StaticToken
from shared_state.adapters.librechat_native import LibreChatNative
from shared_state.service.sync import Synchronizer
from shared_state.state.manager import StateManager
from shared_state.state.snapshot import SnapshotStore

CONVERSATIONS = 10_000
WORKSPACES = 200
PAGE_SIZE = 100
RUNS = 7
START = datetime(2026, 1, 1, tzinfo=UTC)


class FakeUpstreams:
    """Native AnythingLLM and LibreChat answering from pre-rendered bytes."""

    def __init__(self, conversations: int) -> None:
        self.conversations: dict[str, dict[str, Any]] = {
            f"c-{i:05d}": {
                "_id": f"6601{i:020d}",
                "conversationId": f"c-{i:05d}",
                "title": f"Conversation number {i}",
                "user": "665f0c1a2b3c4d5e6f708192",
                "endpoint": "openAI",
                "model": "gpt-4o",
                "isArchived": False,
                "tags": [],
                "createdAt": _moment(i),
                "updatedAt": _moment(i, seconds=30),
            }
            for i in range(conversations)
        }
        workspaces = [
            {"id": i, "name": f"Workspace {i}", "slug": f"ws-{i}", "openAiTemp": 0.7, "threads": []}
            for i in range(WORKSPACES)
        ]
        self.fixed = {
            "/api/v1/auth": _json({"authenticated": True}),
            "/api/v1/system": _json(
                {"settings": {"LLMProvider": "openai", "OpenAiModelPref": "gpt-4o"}}
            ),
            "/api/v1/workspaces": _json({"workspaces": workspaces}),
            "/api/user": _json({"_id": "665f0c1a2b3c4d5e6f708192", "username": "ada"}),
            "/api/presets": _json(
                [{"presetId": "p1", "defaultPreset": True, "endpoint": "openAI", "model": "gpt-4o"}]
            ),
        }
        self.pages: dict[int, bytes] = {}
        self.render_pages()

    def render_pages(self) -> None:
        """Render every page now, so that the timed syncs measure the sidecar alone."""
        ordered = sorted(self.conversations.values(), key=lambda c: c["updatedAt"], reverse=True)
        self.pages = {}
        for start in range(0, max(len(ordered), 1), PAGE_SIZE):
            chunk = ordered[start : start + PAGE_SIZE]
            more = start + PAGE_SIZE < len(ordered)
            self.pages[start] = _json(
                {"conversations": chunk, "nextCursor": str(start + PAGE_SIZE) if more else None}
            )

    def touch(self, n: int, minutes: int) -> None:
        key = f"c-{n:05d}"
        self.conversations[key] = {
            **self.conversations[key],
            "title": f"Edited {minutes}",
            "updatedAt": _moment(CONVERSATIONS + minutes),
        }
        self.render_pages()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # a network round trip yields to the event loop; so does this
        path = request.url.path
        if path == "/api/convos":
            cursor = parse_qs(request.url.query.decode()).get("cursor", ["0"])[0]
            return _answer(self.pages[int(cursor)])
        return _answer(self.fixed[path])


def _moment(minutes: int, seconds: int = 0) -> str:
    moment = START + timedelta(minutes=minutes, seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _answer(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


class StallMonitor:
    """The longest time the event loop was kept from a 1 ms timer while `watched` ran."""

    def __init__(self) -> None:
        self.longest_s = 0.0

    async def watched(self, step: Callable[[], Awaitable[object]]) -> object:
        async def watch() -> None:
            while True:
                started = time.perf_counter()
                await asyncio.sleep(0.001)
                self.longest_s = max(self.longest_s, time.perf_counter() - started - 0.001)

        watcher = asyncio.get_running_loop().create_task(watch())
        await asyncio.sleep(0)
        try:
            return await step()
        finally:
            watcher.cancel()


@asynccontextmanager
async def sidecar(
    upstreams: FakeUpstreams, *, full_scan_every: int = 20, snapshot: Path | None = None
) -> Any:
    transport = httpx.MockTransport(upstreams.handle)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://anythingllm") as a_client,
        httpx.AsyncClient(transport=transport, base_url="http://librechat") as l_client,
    ):
        adapters: list[Upstream] = [
            AnythingLLMNative(JsonApi(a_client, source="anythingllm")),
            LibreChatNative(
                JsonApi(l_client, source="librechat", credentials=StaticToken("bench")),
                max_conversations=CONVERSATIONS,
                full_scan_every=full_scan_every,
                page_size=PAGE_SIZE,
            ),
        ]
        manager = StateManager(
            configured=["anythingllm", "librechat"],
            store=SnapshotStore(snapshot) if snapshot else None,
        )
        yield Synchronizer(adapters, manager, upstream_lock=asyncio.Lock()), manager


async def _timed(step: Callable[[], Awaitable[object]], runs: int = RUNS) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _figure(samples: list[float]) -> str:
    return f"{statistics.median(samples):7.2f} ms (min {min(samples):.2f}, max {max(samples):.2f})"


async def _read_list(upstreams: FakeUpstreams) -> None:
    """The baseline: one fetch and parse of the whole upstream list, nothing else."""
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(upstreams.handle), base_url="http://librechat"
    ) as client:
        cursor: str | None = "0"
        while cursor is not None:
            cursor = (await client.get("/api/convos", params={"cursor": cursor})).json()[
                "nextCursor"
            ]


async def _read_incremental(upstreams: FakeUpstreams) -> None:
    """The baseline of an incremental sync: fetch and parse what it reads (both upstreams'
    settings, the user, the workspaces, the first page of conversations), nothing else."""
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(upstreams.handle), base_url="http://upstream"
    ) as client:
        for path in ("/api/v1/system", "/api/v1/workspaces", "/api/user", "/api/presets"):
            (await client.get(path)).json()
        (await client.get("/api/convos")).json()


def _counter() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


async def bench_syncs() -> None:
    upstreams = FakeUpstreams(CONVERSATIONS)
    # The upstream's objects live in another process in real life: out of the collector's
    # sight here too, as `serve` puts its own start-up objects (`freeze_start_up_objects`).
    gc.collect()
    gc.freeze()
    print(
        f"Syncing {CONVERSATIONS} conversations ({CONVERSATIONS // PAGE_SIZE} pages) and "
        f"{WORKSPACES} workspaces through the native adapters"
    )
    whole_list = await _timed(lambda: _read_list(upstreams))
    its_reads = await _timed(lambda: _read_incremental(upstreams))
    print(f"  baseline A: fetch + parse the whole list  {_figure(whole_list)}")
    print("  baseline B: fetch + parse what an incremental sync reads (5 answers)")
    print(f"                                            {_figure(its_reads)}")
    edits = _counter()

    def one_change() -> None:
        n = next(edits)
        upstreams.touch(n * 37 % CONVERSATIONS, n)

    with tempfile.TemporaryDirectory() as tmp:
        for label, full_scan_every, snapshot in (
            ("incremental syncs", 20, None),
            (
                "incremental syncs, snapshot file on (a sync waits for its fsync)",
                20,
                Path(tmp) / "s.json",
            ),
            ("full scans (every LIBRECHAT_FULL_SCAN_EVERY-th sync)", 1, None),
        ):
            async with sidecar(upstreams, full_scan_every=full_scan_every, snapshot=snapshot) as (
                sync,
                _,
            ):
                cold, stall = StallMonitor(), StallMonitor()
                first = await _timed(partial(cold.watched, sync.sync_once), runs=1)
                unchanged = await _timed(partial(stall.watched, sync.sync_once))
                changed = []
                for _ in range(RUNS):
                    one_change()  # the upstream's work, outside what is timed
                    changed += await _timed(partial(stall.watched, sync.sync_once), runs=1)
            base, name = (
                (statistics.median(whole_list), "A")
                if full_scan_every == 1
                else (statistics.median(its_reads), "B")
            )
            whole = statistics.median(whole_list)
            print(f"  {label}:")
            print(f"    first sync (all new)                {_figure(first)}")
            for what, samples in (("nothing changed", unchanged), ("one changed", changed)):
                median = statistics.median(samples)
                print(
                    f"    {what:<36}{_figure(samples)}"
                    f" -> {median / whole:.2f}x A"
                    + (f", {median / base:.2f}x B" if name == "B" else "")
                )
            print(
                f"    longest event-loop stall {stall.longest_s * 1000:.1f} ms "
                f"(first sync {cold.longest_s * 1000:.1f} ms; target <= 10 ms)"
            )


async def bench_memory() -> None:
    upstreams = FakeUpstreams(CONVERSATIONS)
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    async with sidecar(upstreams) as (sync, manager):
        await sync.sync_once()
        state_json = manager.render("state")
        for section in ("user", "settings", "workspaces", "conversations"):
            manager.render(section)
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        held -= before
    size = len(state_json)
    print(
        f"State memory at {CONVERSATIONS} conversations: {held / 2**20:.1f} MiB held "
        f"(adapters, state, rendered JSON) for {size / 2**20:.1f} MiB of JSON "
        f"-> {held / size:.2f}x (target <= 3x); peak while syncing "
        f"{(peak - before) / 2**20:.1f} MiB"
    )


def main() -> None:
    asyncio.run(bench_syncs())
    asyncio.run(bench_memory())


if __name__ == "__main__":
    main()
