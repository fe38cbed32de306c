"""Tests of the propagation engine with fake upstreams: what it writes after a sync, what
it remembers, lists and counts (contract §10)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared_state.domain.models import LlmValues, SourceName, UpstreamSnapshot, WritableSection
from shared_state.domain.propagation import ConflictPolicy, Group
from shared_state.errors import UpstreamUnavailable
from shared_state.metrics import Metrics
from shared_state.service.propagation import Propagator
from shared_state.service.sync import Synchronizer
from shared_state.service.writes import SettingsWriter
from shared_state.state.manager import StateManager
from shared_state.state.snapshot import SnapshotStore
from tests.fakes import FakeUpstream

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LLM_FIELDS: dict[WritableSection, frozenset[str]] = {
    "llm": frozenset({"provider", "model", "temperature", "max_tokens"})
}
GPT_4O = LlmValues(provider="openai", model="gpt-4o", temperature=0.7, max_tokens=4096)


class PickyUpstream(FakeUpstream):
    """A fake that, like the native adapters, cannot store some providers."""

    def unwritable_reason(self, section: WritableSection, values: Mapping[str, Any]) -> str | None:
        if values.get("provider") == "ollama":
            return "no endpoint for ollama"
        return None


class Service:
    """Manager, propagator, synchronizer and writer over two fake upstreams."""

    def __init__(
        self,
        anythingllm: FakeUpstream,
        librechat: FakeUpstream,
        *,
        groups: list[Group] | None = None,
        policy: ConflictPolicy = "anythingllm",
        snapshot_path: Path | None = None,
    ) -> None:
        self.anythingllm, self.librechat = anythingllm, librechat
        upstreams = [anythingllm, librechat]
        self.manager = StateManager(
            configured=["anythingllm", "librechat"],
            store=SnapshotStore(snapshot_path) if snapshot_path else None,
        )
        self.manager.restore()
        self.metrics = Metrics()
        self.propagator = Propagator(
            upstreams,
            self.manager,
            groups=["llm"] if groups is None else groups,
            policy=policy,
            metrics=self.metrics,
            clock=lambda: NOW,
        )
        lock = asyncio.Lock()
        self.synchronizer = Synchronizer(
            upstreams,
            self.manager,
            upstream_lock=lock,
            clock=lambda: NOW,
            after_sync=self.propagator.after_sync,
        )
        self.writer = SettingsWriter(
            upstreams,
            self.manager,
            upstream_lock=lock,
            clock=lambda: NOW,
            on_written=self.propagator.written,
        )

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels or {})


def upstream(
    name: SourceName, llm: LlmValues = GPT_4O, cls: type[FakeUpstream] = FakeUpstream
) -> FakeUpstream:
    """A fake upstream storing every LLM field, holding `llm`."""
    return cls(name, UpstreamSnapshot(llm=llm), stored_fields=LLM_FIELDS)


def change(fake: FakeUpstream, **values: Any) -> None:
    """Change the upstream's own settings, as its own UI would."""
    fake.snapshot = fake.snapshot.model_copy(
        update={"llm": fake.snapshot.llm.model_copy(update=values)}
    )


async def agreed_service(**kwargs: Any) -> Service:
    """Both upstreams on gpt-4o, after a first sync that set the bases."""
    service = Service(upstream("anythingllm"), upstream("librechat"), **kwargs)
    await service.synchronizer.sync()
    return service


async def test_a_change_in_one_upstream_reaches_the_other_and_then_nothing_is_written() -> None:
    """A one-sided change is written to the other upstream once; the next sync writes nothing."""
    service = await agreed_service()
    change(service.anythingllm, model="gpt-4.1", temperature=0.2)

    report = await service.synchronizer.sync()

    assert service.librechat.writes == [
        {"provider": "openai", "model": "gpt-4.1", "temperature": 0.2}
    ]
    assert service.anythingllm.writes == []
    assert "settings" in report.changed
    assert service.manager.state.settings.llm.model == "gpt-4.1"
    assert report.version == service.manager.state.version
    last = service.propagator.status()["lastPropagation"]
    assert (last["from"], last["to"]) == ("anythingllm", "librechat")

    await service.synchronizer.sync()
    await service.synchronizer.sync()
    assert len(service.librechat.writes) == 1
    assert service.anythingllm.writes == []


async def test_the_reverse_direction_propagates_too() -> None:
    """A change made in LibreChat is written to AnythingLLM."""
    service = await agreed_service()
    change(service.librechat, provider="anthropic", model="claude-3")

    await service.synchronizer.sync()

    assert service.anythingllm.writes == [{"provider": "anthropic", "model": "claude-3"}]
    assert service.librechat.writes == []


async def test_both_changed_alike_moves_the_base_without_writing() -> None:
    """Both upstreams changed to the same value: nothing is written, the base moves."""
    service = await agreed_service()
    change(service.anythingllm, model="gpt-4.1")
    change(service.librechat, model="gpt-4.1")

    await service.synchronizer.sync()

    assert service.anythingllm.writes == service.librechat.writes == []
    assert service.manager.propagation_memory.bases["provider+model"] == {
        "provider": "openai",
        "model": "gpt-4.1",
    }


@pytest.mark.parametrize(
    ("policy", "winner", "loser", "model"),
    [
        ("anythingllm", "anythingllm", "librechat", "a-model"),
        ("librechat", "librechat", "anythingllm", "l-model"),
    ],
)
async def test_a_conflict_is_settled_by_a_winning_policy(
    policy: ConflictPolicy, winner: str, loser: str, model: str
) -> None:
    """Both changed differently: the policy's side is written to the other, once."""
    service = await agreed_service(policy=policy)
    change(service.anythingllm, model="a-model")
    change(service.librechat, model="l-model")

    await service.synchronizer.sync()
    await service.synchronizer.sync()

    fakes = {"anythingllm": service.anythingllm, "librechat": service.librechat}
    assert fakes[loser].writes == [{"provider": "openai", "model": model}]
    assert fakes[winner].writes == []
    assert service.propagator.status()["conflicts"] == []


async def test_a_manual_conflict_writes_nothing_until_an_api_write_settles_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under `manual` the conflict is listed, counted and logged once; a write settles it."""
    service = await agreed_service(policy="manual")
    change(service.anythingllm, model="a-model")
    change(service.librechat, model="l-model")

    with caplog.at_level(logging.WARNING, logger="shared_state.service.propagation"):
        await service.synchronizer.sync()
        await service.synchronizer.sync()

    assert service.anythingllm.writes == service.librechat.writes == []
    [conflict] = service.propagator.status()["conflicts"]
    assert conflict == {
        "field": "provider+model",
        "values": {
            "anythingllm": {"provider": "openai", "model": "a-model"},
            "librechat": {"provider": "openai", "model": "l-model"},
        },
        "base": {"provider": "openai", "model": "gpt-4o"},
        "since": "2026-11-21T12:00:00.000Z",
    }
    assert service.metric("shared_state_propagation_conflicts") == 1
    assert len([r for r in caplog.records if "conflict on" in r.message]) == 1

    await service.writer.write("llm", {"model": "settled"})
    await service.synchronizer.sync()

    assert service.propagator.status()["conflicts"] == []
    assert service.metric("shared_state_propagation_conflicts") == 0
    assert service.anythingllm.writes == [{"model": "settled"}]
    assert service.librechat.writes == [{"model": "settled"}]


async def test_upstreams_that_disagree_with_no_base_are_a_conflict() -> None:
    """A first sync with upstreams that already disagree goes by the policy, not by luck."""
    service = Service(
        upstream("anythingllm"),
        upstream("librechat", GPT_4O.model_copy(update={"model": "other"})),
        policy="librechat",
    )

    await service.synchronizer.sync()

    assert service.anythingllm.writes == [{"provider": "openai", "model": "other"}]


async def test_a_failed_propagation_write_is_retried_at_the_next_sync() -> None:
    """A failing write does not move the base and is not undone in the source; it lands later."""
    service = await agreed_service()
    change(service.anythingllm, model="gpt-4.1")
    service.librechat.fail_writes = UpstreamUnavailable("librechat", "refused")

    await service.synchronizer.sync()

    assert service.anythingllm.snapshot.llm.model == "gpt-4.1"
    assert service.anythingllm.writes == []
    assert service.manager.propagation_memory.bases["provider+model"]["model"] == "gpt-4o"
    failed = {"field": "provider+model", "from": "anythingllm", "to": "librechat"}
    assert service.metric("shared_state_propagations_total", {**failed, "outcome": "failed"}) == 1

    service.librechat.fail_writes = None
    await service.synchronizer.sync()

    assert service.librechat.writes == [{"provider": "openai", "model": "gpt-4.1"}]
    assert service.metric("shared_state_propagations_total", {**failed, "outcome": "ok"}) == 1


async def test_a_source_whose_read_failed_never_propagates() -> None:
    """A stale source's last good data is not a change, nor is the other side's change
    written while one side could not be read."""
    service = await agreed_service()
    change(service.anythingllm, model="gpt-4.1")
    service.librechat.fail_reads = UpstreamUnavailable("librechat", "down")

    await service.synchronizer.sync()

    assert service.librechat.writes == service.anythingllm.writes == []


async def test_a_value_the_other_side_cannot_express_is_listed_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither half of an unwritable pair is written; it is in `unwritable`, logged once."""
    service = Service(upstream("anythingllm"), upstream("librechat", cls=PickyUpstream))
    await service.synchronizer.sync()
    change(service.anythingllm, provider="ollama", model="llama3")

    with caplog.at_level(logging.WARNING, logger="shared_state.service.propagation"):
        await service.synchronizer.sync()
        await service.synchronizer.sync()

    assert service.librechat.writes == []
    assert service.propagator.status()["unwritable"] == [
        {
            "field": "provider+model",
            "from": "anythingllm",
            "value": {"provider": "ollama", "model": "llama3"},
        }
    ]
    assert len([r for r in caplog.records if "not propagated" in r.message]) == 1


async def test_without_groups_nothing_is_written_and_status_says_so() -> None:
    """`SHARED_STATE_PROPAGATE` empty: today's behaviour, `groups` empty."""
    service = await agreed_service(groups=[])
    change(service.anythingllm, model="gpt-4.1")

    await service.synchronizer.sync()

    assert service.librechat.writes == []
    status = service.propagator.status()
    assert (status["groups"], status["fields"], status["conflicts"]) == ([], [], [])


async def test_ui_propagates_nothing_when_only_one_upstream_stores_it() -> None:
    """With `ui` on and only LibreChat storing theme and font size, no field propagates."""
    librechat = FakeUpstream(
        "librechat", stored_fields={**LLM_FIELDS, "ui": frozenset({"theme", "font_size"})}
    )
    service = Service(upstream("anythingllm"), librechat, groups=["ui"])
    assert service.propagator.status()["fields"] == []


async def test_the_base_and_conflicts_survive_a_restart(tmp_path: Path) -> None:
    """The snapshot file keeps the bases: a change made while down propagates after a
    restart, and an open conflict stays open (not settled by whoever answered first)."""
    path = tmp_path / "snapshot.json"
    first = await agreed_service(snapshot_path=path, policy="manual")
    change(first.anythingllm, temperature=0.1)
    change(first.librechat, temperature=0.9)
    await first.synchronizer.sync()
    assert (
        json.loads(path.read_bytes())["propagation"]["bases"]["provider+model"]["model"] == "gpt-4o"
    )

    anythingllm, librechat = first.anythingllm, first.librechat
    anythingllm.writes.clear()
    change(anythingllm, model="while-down")  # changed while the service was down
    second = Service(anythingllm, librechat, snapshot_path=path, policy="manual", groups=["llm"])
    await second.synchronizer.sync()

    assert librechat.writes == [{"provider": "openai", "model": "while-down"}]
    assert [c["field"] for c in second.propagator.status()["conflicts"]] == ["temperature"]
    assert anythingllm.writes == []


def test_an_old_snapshot_without_propagation_loads(tmp_path: Path) -> None:
    """A snapshot file written before propagation existed still restores, with no bases."""
    path = tmp_path / "snapshot.json"
    path.write_text(
        json.dumps(
            {
                "format": 1,
                "version": 7,
                "syncTimestamp": None,
                "sources": {"anythingllm": {"status": {"status": "ok"}, "data": None}},
                "local": {"llm": {}, "ui": {}},
            }
        )
    )
    manager = StateManager(configured=["anythingllm"], store=SnapshotStore(path))
    manager.restore()
    assert manager.state.version == 8
    assert manager.propagation_memory.bases == {}
