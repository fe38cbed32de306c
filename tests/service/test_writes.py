"""Tests of the SettingsWriter: write-through, rollback, skipped upstreams, local fields."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from shared_state.domain.models import (
    LlmSettings,
    LlmValues,
    UiSettings,
    UiValues,
    UpstreamSnapshot,
    WritableSection,
)
from shared_state.errors import UpstreamUnavailable, UpstreamWriteFailed
from shared_state.service.sync import Synchronizer
from shared_state.service.writes import SettingsWriter
from shared_state.state.manager import StateManager
from tests.fakes import FakeUpstream, GatedUpstream, make_snapshot

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALLM_FIELDS: dict[WritableSection, frozenset[str]] = {
    "llm": frozenset({"provider", "model", "temperature", "max_tokens"})
}
LC_FIELDS: dict[WritableSection, frozenset[str]] = {
    "llm": frozenset({"model", "temperature"}),
    "ui": frozenset({"theme", "font_size"}),
}
OLD_LLM = LlmValues(provider="openai", model="gpt-4o", temperature=0.7, max_tokens=4096)
NEW_LLM = {"provider": "anthropic", "model": "claude-3", "temperature": 0.2, "max_tokens": 8000}


class Service:
    """A StateManager with a Synchronizer and a SettingsWriter over the same upstreams."""

    def __init__(self, *upstreams: FakeUpstream) -> None:
        lock = asyncio.Lock()
        self.manager = StateManager(configured=[u.name for u in upstreams])
        self.synchronizer = Synchronizer(
            upstreams, self.manager, upstream_lock=lock, clock=lambda: NOW
        )
        self.writer = SettingsWriter(upstreams, self.manager, upstream_lock=lock, clock=lambda: NOW)


def make_anythingllm() -> FakeUpstream:
    return FakeUpstream("anythingllm", make_snapshot(llm=OLD_LLM), stored_fields=ALLM_FIELDS)


def make_librechat() -> FakeUpstream:
    return FakeUpstream(
        "librechat",
        UpstreamSnapshot(
            llm=LlmValues(model="gpt-4o", temperature=0.7),
            ui=UiValues(theme="dark", font_size="medium"),
        ),
        stored_fields=LC_FIELDS,
    )


async def synced(*upstreams: FakeUpstream) -> Service:
    """A Service over `upstreams` after one sync."""
    service = Service(*upstreams)
    await service.synchronizer.sync()
    return service


async def test_write_accepted_by_all_takes_the_new_values_at_once() -> None:
    """When every upstream accepts, the state has the new values and a version one higher."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    service = await synced(anythingllm, librechat)
    version = service.manager.state.version

    state = await service.writer.write("llm", NEW_LLM)

    assert state.settings.llm == LlmSettings(
        provider="anthropic", model="claude-3", temperature=0.2, max_tokens=8000
    )
    assert state.version == version + 1
    assert service.manager.state is state


async def test_write_sends_each_upstream_only_the_fields_it_stores() -> None:
    """Each upstream is written only the fields it stores."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    service = await synced(anythingllm, librechat)

    await service.writer.write("llm", NEW_LLM)

    assert anythingllm.writes == [NEW_LLM]
    assert librechat.writes == [{"model": "claude-3", "temperature": 0.2}]
    assert librechat.snapshot.llm == LlmValues(model="claude-3", temperature=0.2)


async def test_failed_write_rolls_back_the_upstreams_that_accepted() -> None:
    """One failing upstream: the accepting one gets its old values back, the state stays."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    librechat.fail_writes = UpstreamUnavailable("librechat", "timeout")
    service = await synced(anythingllm, librechat)
    before = service.manager.state

    with pytest.raises(UpstreamWriteFailed) as failure:
        await service.writer.write("llm", NEW_LLM)

    assert failure.value.results == {"anythingllm": "rolled_back", "librechat": "failed"}
    assert anythingllm.snapshot.llm == OLD_LLM
    assert anythingllm.writes == [
        NEW_LLM,
        {"provider": "openai", "model": "gpt-4o", "temperature": 0.7, "max_tokens": 4096},
    ]
    assert service.manager.state is before
    assert str(failure.value) == "The write failed on librechat; the state was not changed."


async def test_failed_rollback_is_reported_as_rollback_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An accepting upstream that refuses the rollback is `rollback_failed`, logged as a
    warning."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    anythingllm.fail_rollbacks = True
    librechat.fail_writes = UpstreamUnavailable("librechat", "timeout")
    service = await synced(anythingllm, librechat)
    version = service.manager.state.version

    with pytest.raises(UpstreamWriteFailed) as failure:
        await service.writer.write("llm", NEW_LLM)

    assert failure.value.results == {"anythingllm": "rollback_failed", "librechat": "failed"}
    assert service.manager.state.version == version
    assert service.manager.state.settings.llm.provider == "openai"
    rollback_warnings = [
        record.getMessage()
        for record in caplog.records
        if record.levelname == "WARNING" and record.getMessage().startswith("rollback")
    ]
    assert rollback_warnings == [
        "rollback of llm settings on anythingllm failed; the next sync shows what it holds"
    ]


async def test_upstream_that_stores_none_of_the_fields_is_skipped() -> None:
    """An upstream that stores none of the fields is not asked and reported `skipped`."""
    anythingllm = make_anythingllm()
    anythingllm.fail_writes = UpstreamUnavailable("anythingllm", "timeout")
    librechat = FakeUpstream(
        "librechat", UpstreamSnapshot(), stored_fields={"ui": frozenset({"theme", "font_size"})}
    )
    service = await synced(anythingllm, librechat)

    with pytest.raises(UpstreamWriteFailed) as failure:
        await service.writer.write("llm", {"provider": "anthropic"})

    assert failure.value.results == {"anythingllm": "failed", "librechat": "skipped"}
    assert librechat.writes == []


async def test_successful_write_does_not_call_an_upstream_without_those_fields() -> None:
    """A UI write reaches LibreChat only, when AnythingLLM stores no UI fields."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    service = await synced(anythingllm, librechat)

    state = await service.writer.write("ui", {"theme": "light"})

    assert anythingllm.writes == []
    assert librechat.writes == [{"theme": "light"}]
    assert state.settings.ui == UiSettings(theme="light", font_size="medium")


async def test_field_no_upstream_stores_is_kept_by_the_service() -> None:
    """A UI field that no configured upstream stores is kept in the service's own state."""
    anythingllm = make_anythingllm()
    service = await synced(anythingllm)
    version = service.manager.state.version

    state = await service.writer.write("ui", {"theme": "dark", "font_size": "large"})

    assert anythingllm.writes == []
    assert state.settings.ui == UiSettings(theme="dark", font_size="large")
    assert state.version == version + 1
    assert service.manager.local_settings.ui == UiValues(theme="dark", font_size="large")


async def test_locally_kept_field_survives_the_next_sync() -> None:
    """A field the service keeps itself is still in the state after the next sync."""
    anythingllm = make_anythingllm()
    service = await synced(anythingllm)
    await service.writer.write("ui", {"theme": "dark"})

    await service.synchronizer.sync()

    assert service.manager.state.settings.ui.theme == "dark"


class RecordingUpstream(GatedUpstream):
    """A gated fake that logs, in order, each read it finished and each write it got."""

    def __init__(self) -> None:
        super().__init__(
            "anythingllm", make_snapshot(llm=OLD_LLM), stored_fields=ALLM_FIELDS, is_open=False
        )
        self.log: list[str] = []

    async def fetch(self) -> UpstreamSnapshot:
        snapshot = await super().fetch()
        self.log.append("read")
        return snapshot

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.log.append("write")
        return await super().write_settings(section, values)


async def test_write_waits_for_a_running_sync() -> None:
    """A write that arrives during a sync reaches the upstream only after the sync read it."""
    anythingllm = RecordingUpstream()
    service = Service(anythingllm)

    syncing = asyncio.create_task(service.synchronizer.sync())
    await anythingllm.fetch_started.wait()
    writing = asyncio.create_task(service.writer.write("llm", {"temperature": 0.1}))
    anythingllm.gate.set()
    report = await syncing
    state = await writing

    assert anythingllm.log == ["read", "write"]
    assert report.version == 1
    assert state.settings.llm.temperature == 0.1
    assert state.version == 2


async def test_write_no_upstream_stores_does_not_wait_for_a_hung_sync() -> None:
    """A UI write with only AnythingLLM configured (it stores no UI fields) is kept by the
    service at once, while a sync waits on an AnythingLLM that never answers."""
    anythingllm = GatedUpstream(
        "anythingllm", make_snapshot(llm=OLD_LLM), stored_fields=ALLM_FIELDS, is_open=False
    )
    service = Service(anythingllm)
    sync = asyncio.create_task(service.synchronizer.sync())
    await anythingllm.fetch_started.wait()

    async with asyncio.timeout(10):  # generous: without the fix it waits for the sync forever
        state = await service.writer.write("ui", {"theme": "light"})

    assert state.settings.ui.theme == "light"
    assert not sync.done()
    assert anythingllm.writes == []
    anythingllm.gate.set()
    await sync
    assert service.manager.state.settings.ui.theme == "light"
