"""Fakes at the boundary: an in-memory upstream that meets the `Upstream` protocol, and
builders for the domain objects the tests need."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from shared_state.domain.models import (
    EmbeddingValues,
    LlmValues,
    SourceName,
    UiValues,
    UpstreamSnapshot,
    VectorDbValues,
    WritableSection,
)
from shared_state.errors import UpstreamError, UpstreamUnavailable


def make_snapshot(**overrides: Any) -> UpstreamSnapshot:
    """An AnythingLLM-like snapshot with every section filled; `overrides` replace fields."""
    fields: dict[str, Any] = {
        "user": {"id": 1, "username": "ada", "email": "ada@example.com", "role": "admin"},
        "llm": LlmValues(provider="openai", model="gpt-4o", temperature=0.7, max_tokens=4096),
        "ui": UiValues(),
        "embedding": EmbeddingValues(provider="openai", model="text-embedding-3-small"),
        "vector_db": VectorDbValues(provider="lancedb", settings={}),
        "workspaces": [{"id": 1, "name": "Research", "slug": "research"}],
        "conversations": None,
    }
    fields.update(overrides)
    return UpstreamSnapshot(**fields)


class FakeUpstream:
    """An upstream held in memory: tests set `snapshot`, `fail_reads`, `fail_writes`."""

    def __init__(
        self,
        name: SourceName,
        snapshot: UpstreamSnapshot | None = None,
        *,
        stored_fields: Mapping[WritableSection, frozenset[str]] | None = None,
    ) -> None:
        self.name: SourceName = name
        self.snapshot = snapshot or UpstreamSnapshot()
        self.stored_fields: Mapping[WritableSection, frozenset[str]] = stored_fields or {
            "llm": frozenset({"provider", "model", "temperature", "max_tokens"})
        }
        self.fail_reads: UpstreamError | None = None
        self.fail_writes: UpstreamError | None = None
        self.fail_rollbacks = False
        self.fetch_count = 0
        self.writes: list[dict[str, Any]] = []

    async def fetch(self) -> UpstreamSnapshot:
        self.fetch_count += 1
        if self.fail_reads is not None:
            raise self.fail_reads
        return self.snapshot

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        is_rollback = bool(self.writes)
        if self.fail_writes is not None or (is_rollback and self.fail_rollbacks):
            raise self.fail_writes or UpstreamUnavailable(self.name, "rollback refused")
        current = getattr(self.snapshot, section)
        previous = {field: getattr(current, field) for field in values}
        self.writes.append(dict(values))
        self.snapshot = self.snapshot.model_copy(
            update={section: current.model_copy(update=dict(values))}
        )
        return previous


class GatedUpstream(FakeUpstream):
    """A FakeUpstream whose reads wait for `gate` (open unless `is_open=False`), so a test
    can hold a sync in flight; `fetch_started` is set when a read begins."""

    def __init__(
        self,
        name: SourceName,
        snapshot: UpstreamSnapshot | None = None,
        *,
        stored_fields: Mapping[WritableSection, frozenset[str]] | None = None,
        is_open: bool = True,
    ) -> None:
        super().__init__(name, snapshot, stored_fields=stored_fields)
        self.gate = asyncio.Event()
        if is_open:
            self.gate.set()
        self.fetch_started = asyncio.Event()

    async def fetch(self) -> UpstreamSnapshot:
        self.fetch_started.set()
        await self.gate.wait()
        return await super().fetch()


class HeldWriteUpstream(GatedUpstream):
    """A GatedUpstream whose writes wait for `write_gate` (closed at first), so a test can
    hold a write in flight; `write_started` is set when a write begins."""

    def __init__(
        self,
        name: SourceName,
        snapshot: UpstreamSnapshot | None = None,
        *,
        stored_fields: Mapping[WritableSection, frozenset[str]] | None = None,
    ) -> None:
        super().__init__(name, snapshot, stored_fields=stored_fields)
        self.write_gate = asyncio.Event()
        self.write_started = asyncio.Event()

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.write_started.set()
        await self.write_gate.wait()
        return await super().write_settings(section, values)
