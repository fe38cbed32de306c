"""Benchmarks: what a GET of a large state costs, what a sync of it costs, and its memory.

Prints figures and ratios; it asserts nothing (targets live here, not in unit tests).
Run with `make bench`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Response

from shared_state import Settings, create_app
from shared_state.domain.models import (
    LlmValues,
    SourceName,
    UiValues,
    UpstreamSnapshot,
    WritableSection,
)
from shared_state.state.manager import StateManager

CONVERSATIONS = 10_000
WORKSPACES = 200
REQUESTS = 300


def _conversations(n: int, *, title_suffix: str = "") -> list[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "conversationId": f"c-{i:05d}",
            "id": f"c-{i:05d}",
            "title": f"Conversation number {i}{title_suffix}",
            "endpoint": "openAI",
            "model": "gpt-4o",
            "createdAt": (start + timedelta(minutes=i)).isoformat(),
            "updatedAt": (start + timedelta(minutes=i, seconds=30)).isoformat(),
        }
        for i in range(n)
    ]


class _StaticUpstream:
    """An upstream that answers from memory at once (the benchmark measures the sidecar)."""

    def __init__(self, name: SourceName, snapshot: UpstreamSnapshot) -> None:
        self.name: SourceName = name
        self.snapshot = snapshot
        self.stored_fields: Mapping[WritableSection, frozenset[str]] = {}

    async def fetch(self) -> UpstreamSnapshot:
        return self.snapshot

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError


def _snapshots() -> tuple[UpstreamSnapshot, UpstreamSnapshot]:
    anythingllm = UpstreamSnapshot(
        user={"id": 1, "username": "ada"},
        llm=LlmValues(provider="openai", model="gpt-4o"),
        workspaces=[
            {"id": i, "name": f"Workspace {i}", "slug": f"ws-{i}"} for i in range(WORKSPACES)
        ],
    )
    librechat = UpstreamSnapshot(
        user={"id": "665f", "username": "ada"},
        llm=LlmValues(temperature=0.3),
        ui=UiValues(theme="dark"),
        conversations=_conversations(CONVERSATIONS),
    )
    return anythingllm, librechat


async def _time_requests(client: httpx.AsyncClient, path: str) -> tuple[float, int]:
    """Median milliseconds per GET of `path`, and the body size."""
    size = len((await client.get(path)).content)
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), size


async def bench_get() -> None:
    anythingllm, librechat = _snapshots()
    app = create_app(
        Settings(_env_file=None, SHARED_STATE_SYNC_INTERVAL_S=3600),
        upstreams=[
            _StaticUpstream("anythingllm", anythingllm),
            _StaticUpstream("librechat", librechat),
        ],
    )
    async with app.router.lifespan_context(app):
        runtime = app.state.shared_state
        await runtime.synchronizer.sync()
        body = runtime.manager.render("state")
        state = runtime.manager.state

        # Baselines: the same bytes as a constant, and the state serialised on every request.
        baseline = FastAPI()

        @baseline.get("/constant")
        async def constant() -> Response:
            return Response(body, media_type="application/json")

        @baseline.get("/uncached")
        async def uncached() -> Response:
            return Response(state.model_dump_json(by_alias=True), media_type="application/json")

        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=baseline), base_url="http://bench"
            ) as base,
        ):
            ours, size = await _time_requests(client, "/api/shared-state")
            const, _ = await _time_requests(base, "/constant")
            fresh, _ = await _time_requests(base, "/uncached")
            one, _ = await _time_requests(client, "/api/shared-state/conversations/c-05000")
            health, _ = await _time_requests(client, "/healthz")

    print(f"GET /api/shared-state ({CONVERSATIONS} conversations, {size / 1e6:.1f} MB)")
    print(
        f"  median {ours:.2f} ms; constant bytes of that size {const:.2f} ms"
        f" -> ratio {ours / const:.2f} (target <= 2: routing and the token check)"
    )
    print(f"  serialising per request would take {fresh:.2f} ms -> {fresh / ours:.1f}x slower")
    print(f"GET /conversations/{{id}} median {one:.3f} ms; GET /healthz {health:.3f} ms")


async def _time(label: str, step: Callable[[], Awaitable[object]], runs: int = 20) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(f"  {label}: median {median:.1f} ms")
    return median


async def bench_sync() -> None:
    anythingllm, librechat = _snapshots()
    manager = StateManager(configured=["anythingllm", "librechat"])
    now = datetime.now(UTC)
    await manager.record_sync({"anythingllm": anythingllm, "librechat": librechat}, now)
    changed = librechat.model_copy(
        update={"conversations": _conversations(CONVERSATIONS, title_suffix=" (edited)")}
    )
    flip = [librechat, changed]

    async def unchanged() -> object:
        return await manager.record_sync({"anythingllm": anythingllm, "librechat": librechat}, now)

    async def all_changed() -> object:
        flip.reverse()
        return await manager.record_sync({"anythingllm": anythingllm, "librechat": flip[0]}, now)

    print(f"Recording a sync of {CONVERSATIONS} conversations + {WORKSPACES} workspaces")
    await _time("nothing changed (merge + diff)", unchanged)
    await _time("every conversation changed (merge + diff + event)", all_changed)


def bench_memory() -> None:
    tracemalloc.start()
    anythingllm, librechat = _snapshots()
    manager = StateManager(configured=["anythingllm", "librechat"])
    asyncio.run(
        manager.record_sync({"anythingllm": anythingllm, "librechat": librechat}, datetime.now(UTC))
    )
    manager.render("state")
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"Memory for the state with {CONVERSATIONS} conversations (snapshots, merged state,")
    print(f"  rendered JSON): {current / 1e6:.1f} MB held, {peak / 1e6:.1f} MB peak")


def main() -> None:
    asyncio.run(bench_get())
    asyncio.run(bench_sync())
    bench_memory()


if __name__ == "__main__":
    main()
