"""Propagation's engine (contract §10): after each sync, keep the propagated fields equal
in both upstreams, through the same adapters and mappings as a write through the API.

It runs inside the sync, under the upstream lock, so no write through the API runs at the
same time. A field is decided only when both upstreams were read fresh and well in this
sync: a source whose read failed, that was not asked (backed off), or whose data came
from the snapshot file is not a change. The pure decision is `domain.propagation`; this
module carries it out, remembers the bases (in the snapshot file, through the
StateManager), lists conflicts and unwritable values, and counts what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from shared_state.adapters.base import Upstream
from shared_state.domain.models import (
    SourceName,
    UpstreamSnapshot,
    WritableSection,
)
from shared_state.domain.propagation import (
    NO_BASE,
    Conflict,
    ConflictPolicy,
    Group,
    LastPropagation,
    Nothing,
    OpenConflict,
    PropagatedField,
    PropagationMemory,
    Write,
    decide,
    propagated_fields,
    settle,
)
from shared_state.errors import UpstreamError
from shared_state.metrics import Metrics
from shared_state.service.sync import Clock, utc_now
from shared_state.state.manager import StateManager

log = logging.getLogger(__name__)


@runtime_checkable
class ChecksWrites(Protocol):
    """An upstream that can tell, before writing, that it cannot store some values (a
    provider with no LibreChat endpoint). Upstreams without it store whatever they get."""

    def unwritable_reason(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> str | None: ...


@dataclass(frozen=True)
class Unwritable:
    """A value one upstream holds that the other cannot express; listed in `/status`."""

    field: str
    source: SourceName
    value: Any
    reason: str


@dataclass
class _Planned:
    field: PropagatedField
    write: Write


class Propagator:
    """Runs the decision for every propagated field after each sync, and settles fields
    written through the API."""

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        manager: StateManager,
        *,
        groups: Collection[Group],
        policy: ConflictPolicy,
        metrics: Metrics | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._upstreams = {u.name: u for u in upstreams}
        self._manager = manager
        self.groups: list[Group] = [g for g in ("llm", "ui") if g in groups]
        self.policy: ConflictPolicy = policy
        self._metrics = metrics
        self._clock = clock
        self.fields = (
            propagated_fields(
                self.groups, {name: u.stored_fields for name, u in self._upstreams.items()}
            )
            if self.groups
            else ()
        )
        self._unwritable: dict[str, Unwritable] = {}
        self._report_conflicts()

    @property
    def memory(self) -> PropagationMemory:
        """Bases, open conflicts and the last propagation: held by the StateManager, which
        writes them to the snapshot file with the state."""
        return self._manager.propagation_memory

    # --- after a sync ------------------------------------------------------------------

    async def after_sync(
        self, results: Mapping[SourceName, UpstreamSnapshot | UpstreamError]
    ) -> bool:
        """Decide and carry out every field; True when the state changed (a write landed).
        Called by the sync under the upstream lock, right after it recorded `results`."""
        if not self.fields:
            return False
        anythingllm, librechat = results.get("anythingllm"), results.get("librechat")
        if not isinstance(anythingllm, UpstreamSnapshot) or not isinstance(
            librechat, UpstreamSnapshot
        ):
            return False  # a failed, skipped or restored source is not a change
        before = self.memory
        now = self._clock()
        bases = dict(before.bases)
        conflicts = {c.field: c for c in before.conflicts}
        planned: list[_Planned] = []
        for field in self.fields:
            values: dict[SourceName, Any] = {
                "anythingllm": field.value_of(anythingllm),
                "librechat": field.value_of(librechat),
            }
            decision = decide(
                before.base_of(field.name), values["anythingllm"], values["librechat"]
            )
            if isinstance(decision, Conflict):
                settled = settle(decision, self.policy)
                if isinstance(settled, Conflict):
                    self._open_conflict(conflicts, field, decision, now)
                    self._unwritable.pop(field.name, None)
                    continue
                log.info(
                    "%s: both upstreams changed it (%s); policy %s: written to %s",
                    field.name,
                    _describe(values),
                    self.policy,
                    settled.target,
                )
                decision = settled
            conflicts.pop(field.name, None)
            if isinstance(decision, Nothing):
                bases[field.name] = decision.base
                self._unwritable.pop(field.name, None)
            else:
                if self._is_writable(field, decision):
                    planned.append(_Planned(field, decision))
        memory = before.model_copy(update={"bases": bases, "conflicts": list(conflicts.values())})
        self._manager.remember_propagation(memory)
        changed = await self._carry_out(planned, now)
        self._report_conflicts()
        if not changed and self.memory != before:
            await self._manager.keep_propagation_memory()  # a base moved without a new version
        return changed

    def _open_conflict(
        self,
        conflicts: dict[str, OpenConflict],
        field: PropagatedField,
        conflict: Conflict,
        now: datetime,
    ) -> None:
        values = dict(conflict.values)
        base = None if conflict.base is NO_BASE else conflict.base
        known = conflicts.get(field.name)
        if known is not None:
            if known.values != values:
                conflicts[field.name] = known.model_copy(update={"values": values})
            return
        conflicts[field.name] = OpenConflict(field=field.name, values=values, base=base, since=now)
        log.warning(
            "conflict on %s: %s, base %s; policy manual: nothing is written until a write "
            "through the API settles it",
            field.name,
            _describe(values),
            "none" if conflict.base is NO_BASE else _show(base),
        )

    def _is_writable(self, field: PropagatedField, write: Write) -> bool:
        """Whether `write` can be carried out; if not, it is listed (and logged once)."""
        target = self._upstreams[write.target]
        reason = None
        if not field.is_complete(write.value):
            reason = "nothing complete to write (the value is missing or half of the pair)"
        elif isinstance(target, ChecksWrites):
            reason = target.unwritable_reason(field.section, field.as_write(write.value))
        if reason is None:
            self._unwritable.pop(field.name, None)
            return True
        known = self._unwritable.get(field.name)
        entry = Unwritable(field.name, write.source, write.value, reason)
        if known != entry:
            log.warning(
                "%s %s of %s is not propagated to %s: %s",
                field.name,
                _show(write.value),
                write.source,
                write.target,
                reason,
            )
            self._count(field.name, write, "unwritable")
        self._unwritable[field.name] = entry
        return False

    async def _carry_out(self, planned: list[_Planned], now: datetime) -> bool:
        """One write per target and section, with every field it needs; the base moves
        (and the state takes the values) only for a write that landed."""
        batches: dict[tuple[SourceName, WritableSection], list[_Planned]] = {}
        for plan in planned:
            batches.setdefault((plan.write.target, plan.field.section), []).append(plan)
        changed = False
        for (target_name, section), plans in batches.items():
            values: dict[str, Any] = {}
            for plan in plans:
                values.update(plan.field.as_write(plan.write.value))
            try:
                await self._upstreams[target_name].write_settings(section, values)
            except UpstreamError as exc:
                for plan in plans:
                    self._count(plan.field.name, plan.write, "failed")
                    log.warning(
                        "propagating %s %s from %s to %s failed (retried at the next sync): %s",
                        plan.field.name,
                        _show(plan.write.value),
                        plan.write.source,
                        target_name,
                        exc.reason,
                    )
                continue
            memory = self.memory
            bases = dict(memory.bases)
            last = memory.last_propagation
            for plan in plans:
                bases[plan.field.name] = plan.write.value
                last = LastPropagation(
                    at=now,
                    field=plan.field.name,
                    from_=plan.write.source,
                    to=target_name,
                    value=plan.write.value,
                )
                self._count(plan.field.name, plan.write, "ok")
                log.info(
                    "propagated %s %s from %s to %s",
                    plan.field.name,
                    _show(plan.write.value),
                    plan.write.source,
                    target_name,
                )
            self._manager.remember_propagation(
                memory.model_copy(update={"bases": bases, "last_propagation": last})
            )
            commit = await self._manager.record_write(section, {target_name: values}, {}, now)
            changed = changed or commit.event is not None
        return changed

    # --- a write through the API ---------------------------------------------------------

    def written(self, section: WritableSection, values: Mapping[str, Any]) -> None:
        """A write through the API is about to be recorded (every upstream accepted it):
        the base of each field it wrote is its new value, and their conflicts are settled."""
        touched = [
            f for f in self.fields if f.section == section and not set(f.parts).isdisjoint(values)
        ]
        if not touched:
            return
        current = getattr(self._manager.state.settings, section)
        memory = self.memory
        bases = dict(memory.bases)
        for field in touched:
            parts = {part: values.get(part, getattr(current, part)) for part in field.parts}
            bases[field.name] = parts[field.parts[0]] if len(field.parts) == 1 else parts
            self._unwritable.pop(field.name, None)
        names = {f.name for f in touched}
        settled = [c for c in memory.conflicts if c.field in names]
        for conflict in settled:
            log.info("conflict on %s settled by a write through the API", conflict.field)
        self._manager.remember_propagation(
            memory.model_copy(
                update={
                    "bases": bases,
                    "conflicts": [c for c in memory.conflicts if c.field not in names],
                }
            )
        )
        self._report_conflicts()

    # --- reporting -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """`/status`'s `propagation` object (contract §10), plus `fields`: what the groups
        propagate with the upstreams configured (`ui` propagates nothing today)."""
        memory = self.memory
        last = memory.last_propagation
        return {
            "groups": list(self.groups),
            "policy": self.policy,
            "fields": [f.name for f in self.fields],
            "lastPropagation": last.model_dump(mode="json", by_alias=True) if last else None,
            "conflicts": [
                c.model_dump(mode="json", by_alias=True)
                for c in memory.conflicts
                if self.fields and c.field in {f.name for f in self.fields}
            ],
            "unwritable": [
                {"field": u.field, "from": u.source, "value": u.value}
                for u in self._unwritable.values()
            ],
        }

    def _report_conflicts(self) -> None:
        if self._metrics is not None:
            names = {f.name for f in self.fields}
            count = sum(1 for c in self.memory.conflicts if c.field in names)
            self._metrics.propagation_conflicts.set(count)

    def _count(self, field: str, write: Write, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.propagations.labels(field, write.source, write.target, outcome).inc()


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(str(v) for v in value.values())
    return repr(value)


def _describe(values: Mapping[SourceName, Any]) -> str:
    return ", ".join(f"{name} has {_show(value)}" for name, value in values.items())
