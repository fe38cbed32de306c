"""The StateManager: the only owner of the merged state.

It records what each sync and each write brings, merges, diffs under one lock, bumps the
version only when data (or a source's status) changed, and publishes one `changed`
event per new version after releasing the lock: a slow subscriber must not stall
writers. It renders each state to JSON once, so GETs cost what constant bytes cost.

With several replicas (contract §11) one manager, the lease holder's, makes the states
and hands each one to its `Replication` before it is served (`publish`: a state no
other replica can see is never served, and a refused publish changes nothing); every
other replica's manager takes them with `adopt`, and merges the same data into the same
bytes, at the same version, with the same ETags.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import TypeAdapter

from shared_state.domain.events import ChangedEvent, SnapshotEvent, describe_changes
from shared_state.domain.items import REDACTED_CONTEXT, ItemList
from shared_state.domain.merge import merge
from shared_state.domain.models import (
    SECTIONS,
    SOURCE_NAMES,
    DomainModel,
    Item,
    LocalSettings,
    Section,
    SharedState,
    SourceName,
    SourceStatus,
    StateSettings,
    Timestamp,
    UpstreamSnapshot,
    User,
    WritableSection,
)
from shared_state.domain.propagation import PropagationMemory
from shared_state.errors import NotFound, UpstreamError
from shared_state.state.bus import EventBus, Subscription
from shared_state.state.changelog import ChangeLog, InMemoryChangeLog
from shared_state.state.snapshot import SnapshotStore, SourceRecord, StoredState

log = logging.getLogger(__name__)

ListSection = Literal["workspaces", "conversations"]
RenderTarget = Literal["state", "user", "settings", "workspaces", "conversations"]


class Replication(Protocol):
    """Where the holder's states go before they are served (`store.replica`): raises
    to refuse one (the lease was lost, the store is unreachable), and then nothing
    changed."""

    async def publish(self, version: int, snapshot: bytes, event: ChangedEvent) -> None:
        """A new version, with the event that led to it."""

    async def touch(self, version: int, snapshot: bytes) -> None:
        """The same version with new timestamps (a sync that changed no data)."""

    async def restart(self, version: int, snapshot: bytes) -> None:
        """A version with no event: the change log starts over there (`advance`)."""


class ReplicaSnapshot(DomainModel):
    """What replicas share per state (`replica_snapshot`, `adopt`): the snapshot file's
    content, and what makes every replica's ETags the same."""

    epoch: str
    changed_at: dict[Section, int]
    stored: StoredState


@dataclass(frozen=True)
class Commit:
    """What one recorded sync or write did to the state."""

    state: SharedState
    changed: list[Section]
    event: ChangedEvent | None


class StateManager:
    """Holds the state; every change goes through `record_sync` or `record_write`."""

    def __init__(
        self,
        *,
        configured: Collection[SourceName],
        bus: EventBus | None = None,
        store: SnapshotStore | None = None,
        changelog: ChangeLog | None = None,
    ) -> None:
        self._bus = bus or EventBus()
        self._changelog = changelog if changelog is not None else InMemoryChangeLog()
        self._store = store
        self._lock = asyncio.Lock()
        self._records: dict[SourceName, SourceRecord] = {
            name: SourceRecord(
                status=SourceStatus(status="pending" if name in configured else "disabled")
            )
            for name in SOURCE_NAMES
        }
        self._local = LocalSettings()
        self._propagation = PropagationMemory()
        self._state = self._build(version=0, sync_timestamp=None)
        self._rendered: dict[RenderTarget, bytes] = {}
        # ETags (contract §8): the state's follows `version`, a section's the version at
        # which that section last changed. Without a snapshot file the version starts
        # over at each start, so a tag also names this counter's run (`etag_epoch`): a
        # client's `W/"1"` from before a restart must not match another state at 1.
        self._etag_epoch = secrets.token_hex(4)
        self._changed_at: dict[Section, int] = dict.fromkeys(SECTIONS, 0)
        self._etags: dict[RenderTarget, bytes] = {}
        self.is_ready = False
        self.replication: Replication | None = None
        """Set on a replica (contract §11): every commit is published there first."""
        self._published_propagation = self._propagation  # what the replicas last got

    # --- reading ---------------------------------------------------------------------

    @property
    def state(self) -> SharedState:
        return self._state

    @property
    def local_settings(self) -> LocalSettings:
        return self._local

    @property
    def propagation_memory(self) -> PropagationMemory:
        """Propagation's bases and open conflicts, kept in the snapshot file with the state."""
        return self._propagation

    def remember_propagation(self, memory: PropagationMemory) -> None:
        """Replace propagation's memory; the next save of the snapshot file holds it."""
        self._propagation = memory

    def upstream_data(self, source: SourceName) -> UpstreamSnapshot | None:
        """What `source` last answered, or None."""
        return self._records[source].data

    def render(self, target: RenderTarget = "state") -> bytes:
        """The state (or one section) as JSON. Lists are held as JSON already; the small
        sections are rendered once per change; the state is their concatenation."""
        cached = self._rendered.get(target)
        if cached is None:
            cached = self._render(target)
            self._rendered[target] = cached
        return cached

    def etag(self, target: RenderTarget = "state") -> bytes:
        """The weak ETag of `render(target)` (also of each item of a list section), as
        header bytes; computed once per state, like the rendering."""
        cached = self._etags.get(target)
        if cached is None:
            if target == "state":
                cached = b'W/"%s-%d"' % (self._etag_epoch.encode(), self._state.version)
            else:
                cached = b'W/"%s-%s-%d"' % (
                    self._etag_epoch.encode(),
                    target.encode(),
                    self._changed_at[target],
                )
            self._etags[target] = cached
        return cached

    def is_current(self, tags: str, targets: Collection[RenderTarget]) -> bool:
        """Whether an `If-Match` / `If-None-Match` value (`*` or a list of tags) names
        the current ETag of one of `targets`; tags compare weakly (RFC 9110 §8.8.3.2)."""
        return etag_matches(tags.encode(), [self.etag(target) for target in targets])

    def _render(self, target: RenderTarget) -> bytes:
        state = self._state
        if target in ("workspaces", "conversations"):
            items: ItemList = getattr(state, target)
            return items.json
        if target != "state":
            return _dump_section(state, target)
        return b"".join(
            (
                b'{"version":%d,"syncTimestamp":' % state.version,
                _TIMESTAMP.dump_json(state.sync_timestamp),
                b',"user":',
                self.render("user"),
                b',"settings":',
                self.render("settings"),
                b',"workspaces":',
                state.workspaces.json,
                b',"conversations":',
                state.conversations.json,
                b',"sources":',
                _SOURCES.dump_json(state.sources, by_alias=True),
                b"}",
            )
        )

    def find(self, section: ListSection, key: str) -> Item:
        """One workspace or conversation by `id` (or a workspace's `slug`)."""
        return json.loads(self.render_item(section, key))  # type: ignore[no-any-return]

    def render_item(self, section: ListSection, key: str) -> bytes:
        """One workspace or conversation as JSON, by `id` (or a workspace's `slug`)."""
        items: ItemList = getattr(self._state, section)
        found = items.find(key, aliases=_ALIASES.get(section, ()))
        if found is None:
            noun = section.removesuffix("s")
            raise NotFound(f"No {noun} with id {key!r}.")
        return found

    def subscribe(self, *, with_snapshot: bool = False) -> Subscription:
        """Change events from now on; with `with_snapshot`, a `snapshot` event first."""
        first = None
        if with_snapshot:
            first = SnapshotEvent(
                version=self._state.version, timestamp=datetime.now(UTC), state=self._state
            )
        return self._bus.subscribe(first=first)

    def changes_since(self, version: int) -> list[ChangedEvent] | None:
        """The `changed` events after `version`, oldest first, or None when the change log
        no longer holds them all (or `version` is ahead). Subscribe first, then ask: an
        event published in between is then both here and in the subscription."""
        return self._changelog.since(version)

    @property
    def subscriber_count(self) -> int:
        return self._bus.subscriber_count

    @property
    def subscribers_dropped(self) -> int:
        return self._bus.dropped_count

    # --- changing --------------------------------------------------------------------

    def restore(self) -> bool:
        """Load the snapshot file, if any: its data is served (sources `stale`) until the
        first sync, and the version continues from it. True when something was restored."""
        stored = self._store.load() if self._store else None
        if stored is None:
            return False
        for name, record in stored.sources.items():
            if self._records[name].status.status == "disabled" or record.data is None:
                continue
            self._records[name] = SourceRecord(
                status=record.status.model_copy(update={"status": "stale"}), data=record.data
            )
        self._local = stored.local
        self._propagation = stored.propagation
        # The restored state differs from the saved one (sources are stale now): a new version.
        self._replace(self._build(stored.version + 1, stored.sync_timestamp))
        self._changelog.reset(self._state.version)  # nothing before it can be replayed
        self._changed_at = dict.fromkeys(SECTIONS, stored.version + 1)
        # Only data makes a restore ready: a version that survived alone serves nothing yet.
        has_data = any(record.data is not None for record in self._records.values())
        self.is_ready = has_data
        log.info(
            "restored state version %d from %s%s",
            stored.version,
            self._store and self._store.path,
            "" if has_data else " (no data survived: ready after the first sync)",
        )
        return has_data

    async def record_sync(
        self, results: Mapping[SourceName, UpstreamSnapshot | UpstreamError], now: datetime
    ) -> Commit:
        """Record one sync: a snapshot per upstream that answered, an error per one that
        failed (its last good data stays). Upstreams not in `results` were not asked."""
        async with self._changing():
            answered = is_new_data = False
            for name, result in results.items():
                previous = self._records[name]
                if isinstance(result, UpstreamSnapshot):
                    answered = True
                    # Adapters hand back the very same snapshot when nothing changed.
                    is_new_data = is_new_data or result is not previous.data
                    status = SourceStatus(status="ok", last_success_at=now, last_attempt_at=now)
                    self._records[name] = SourceRecord(status=status, data=result)
                else:
                    status = previous.status.model_copy(
                        update={
                            "status": "stale",
                            "last_attempt_at": now,
                            "last_error": result.reason,
                        }
                    )
                    self._records[name] = SourceRecord(status=status, data=previous.data)
            sync_timestamp = now if answered else self._state.sync_timestamp
            commit = await self._commit(sync_timestamp, now, is_new_data=is_new_data)
            self.is_ready = True
        await self._after_commit(commit)
        return commit

    async def record_write(
        self,
        section: WritableSection,
        written: Mapping[SourceName, Mapping[str, Any]],
        kept_locally: Mapping[str, Any],
        now: datetime,
    ) -> Commit:
        """Record a write that every upstream in `written` accepted, and the fields that
        the service keeps itself; the state takes the new values at once."""
        async with self._changing():
            for name, values in written.items():
                record = self._records[name]
                data = record.data or UpstreamSnapshot()
                patched = getattr(data, section).model_copy(update=dict(values))
                self._records[name] = SourceRecord(
                    status=record.status, data=data.model_copy(update={section: patched})
                )
            if kept_locally:
                patched_local = getattr(self._local, section).model_copy(update=dict(kept_locally))
                self._local = self._local.model_copy(update={section: patched_local})
            commit = await self._commit(self._state.sync_timestamp, now)
        await self._after_commit(commit)
        return commit

    @contextlib.asynccontextmanager
    async def _changing(self) -> AsyncIterator[None]:
        """The lock every change holds; the records and local settings are put back when
        the change does not go through (a replica's publish was refused): nothing
        changed."""
        async with self._lock:
            records, local = dict(self._records), self._local
            try:
                yield
            except BaseException:
                self._records, self._local = records, local
                raise

    async def _commit(
        self, sync_timestamp: datetime | None, now: datetime, *, is_new_data: bool = True
    ) -> Commit:
        """Merge, diff, publish (on a replica) and replace the state; under the lock.
        Without new data only the bookkeeping (timestamps, statuses) is new: no merge."""
        old = self._state
        if is_new_data:
            new = self._build(old.version, sync_timestamp)
        else:
            new = old.model_copy(
                update={"sync_timestamp": sync_timestamp, "sources": self._statuses()}
            )
        changes = describe_changes(old, new)
        event = None
        changed_at = self._changed_at
        if changes:
            new = new.model_copy(update={"version": old.version + 1})
            changed_at = {**changed_at, **dict.fromkeys(changes, new.version)}
            event = ChangedEvent(
                version=new.version, previous_version=old.version, timestamp=now, changes=changes
            )
        memory_moved = self._propagation != self._published_propagation
        if self.replication is not None and (new != old or memory_moved):
            snapshot = self._replica_snapshot(new, changed_at)
            if event is not None:
                await self.replication.publish(new.version, snapshot, event)
            else:
                await self.replication.touch(new.version, snapshot)
            self._published_propagation = self._propagation
        self._changed_at = changed_at
        if event is not None:
            self._changelog.append(event)  # under the lock, with the state it describes
        self._replace(new)
        return Commit(state=new, changed=list(changes), event=event)

    async def keep_propagation_memory(self) -> None:
        """Propagation's memory moved without a new version (a base, a conflict): into
        the snapshot file and, on a replica, into the shared state (a touch), so that a
        new holder carries on from it."""
        if self.replication is not None and self._state.version > 0:
            async with self._changing():
                if self._propagation != self._published_propagation:
                    snapshot = self._replica_snapshot(self._state, self._changed_at)
                    await self.replication.touch(self._state.version, snapshot)
                    self._published_propagation = self._propagation
        await self.save_snapshot()

    # --- replicas (contract §11) -----------------------------------------------------

    def replica_snapshot(self) -> bytes:
        """The current state as replicas share it (a holder that finds the store empty
        gives it the state it has)."""
        return self._replica_snapshot(self._state, self._changed_at)

    def _replica_snapshot(self, state: SharedState, changed_at: Mapping[Section, int]) -> bytes:
        stored = StoredState(
            version=state.version,
            sync_timestamp=state.sync_timestamp,
            sources=dict(self._records),
            local=self._local,
            propagation=self._propagation,
        )
        return b'{"epoch":%s,"changedAt":%s,"stored":%s}' % (
            json.dumps(self._etag_epoch).encode(),
            json.dumps(dict(changed_at), separators=(",", ":")).encode(),
            render_stored(stored),
        )

    async def advance(self, version: int) -> None:
        """Go on at `version` with the same data (the holder, when a Redis that lost its
        data holds less than another replica has seen: no two states may share a
        version). Published first, as a start-over: subscribers get a `snapshot`."""
        async with self._changing():
            if version <= self._state.version:
                return
            new = self._state.model_copy(update={"version": version})
            changed_at = dict.fromkeys(SECTIONS, version)
            if self.replication is not None:
                await self.replication.restart(version, self._replica_snapshot(new, changed_at))
                self._published_propagation = self._propagation
            self._changed_at = changed_at
            self._changelog.reset(version)
            self._replace(new)
        self._bus.publish(SnapshotEvent(version=version, timestamp=datetime.now(UTC), state=new))
        await self.save_snapshot()

    async def adopt(self, snapshot: bytes, events: list[ChangedEvent] | None) -> bool:
        """Take a state another replica made (`replica_snapshot`), with the events that
        led to it from this manager's version (oldest first), or None when they are not
        all known (the change log starts over; subscribers get a `snapshot`). A state at
        this manager's version takes only its timestamps; an older one is not taken
        (versions never go backwards). True when the version moved."""
        # Made by the holder from data it had redacted on arrival: not redacted again.
        taken = ReplicaSnapshot.model_validate_json(snapshot, context={REDACTED_CONTEXT: True})
        stored = taken.stored
        async with self._lock:
            old = self._state
            if stored.version < old.version:
                log.warning(
                    "not taking the shared state at version %d: this replica is at %d",
                    stored.version,
                    old.version,
                )
                return False
            self._records = {
                name: stored.sources.get(name, self._records[name]) for name in SOURCE_NAMES
            }
            self._local = stored.local
            self._propagation = self._published_propagation = stored.propagation
            self._etag_epoch = taken.epoch
            self._changed_at = {**dict.fromkeys(SECTIONS, stored.version), **taken.changed_at}
            new = self._build(stored.version, stored.sync_timestamp)
            moved = new.version > old.version
            chain = _chain(events or [], after=old.version, to=new.version) if moved else []
            if chain and chain[0].previous_version != self._changelog.version:
                self._changelog.reset(chain[0].previous_version)
            for event in chain:
                self._changelog.append(event)
            if self._changelog.version != new.version:
                self._changelog.reset(new.version)  # nothing before it can be replayed
            self._replace(new)
            self.is_ready = self.is_ready or any(r.data is not None for r in self._records.values())
        if moved:
            if chain and chain[0].previous_version == old.version:
                for event in chain:
                    self._bus.publish(event)
            else:  # subscribers missed something: they start over from the state
                now = datetime.now(UTC)
                self._bus.publish(SnapshotEvent(version=new.version, timestamp=now, state=new))
            await self.save_snapshot()
        return moved

    async def _after_commit(self, commit: Commit) -> None:
        """Outside the lock: publish the event, then save the snapshot."""
        if commit.event is None:
            return
        self._bus.publish(commit.event)
        if self._store is not None:
            stored = StoredState(
                version=commit.state.version,
                sync_timestamp=commit.state.sync_timestamp,
                sources=dict(self._records),
                local=self._local,
                propagation=self._propagation,
            )
            await self._store.save(stored.version, render_stored(stored))

    def _build(self, version: int, sync_timestamp: datetime | None) -> SharedState:
        data = merge(
            self._records["anythingllm"].data, self._records["librechat"].data, self._local
        )
        return SharedState(
            version=version,
            sync_timestamp=sync_timestamp,
            user=data.user,
            settings=data.settings,
            workspaces=data.workspaces,
            conversations=data.conversations,
            sources=self._statuses(),
        )

    def _statuses(self) -> dict[SourceName, SourceStatus]:
        return {name: record.status for name, record in self._records.items()}

    def _replace(self, state: SharedState) -> None:
        old, self._state = self._state, state
        # Sections that did not change keep their rendering.
        self._rendered = {
            section: rendered
            for section, rendered in self._rendered.items()
            if section in ("user", "settings") and getattr(old, section) == getattr(state, section)
        }
        self._etags = {}

    def close(self) -> None:
        """End every subscription (shutdown)."""
        self._bus.close()

    async def save_snapshot(self) -> None:
        """Write the current state to the snapshot file, if there is one: the drain's last
        save on SIGTERM (a save in progress finishes first)."""
        if self._store is not None:
            stored = StoredState(
                version=self._state.version,
                sync_timestamp=self._state.sync_timestamp,
                sources=dict(self._records),
                local=self._local,
                propagation=self._propagation,
            )
            await self._store.save(stored.version, render_stored(stored))


def _chain(events: list[ChangedEvent], *, after: int, to: int) -> list[ChangedEvent]:
    """The events after version `after` when they lead, one version after another, to
    version `to`; none when they do not."""
    chain = [event for event in events if event.version > after]
    if not chain or chain[-1].version != to:
        return []
    for earlier, later in itertools.pairwise(chain):
        if later.previous_version != earlier.version:
            return []
    return chain


def etag_matches(header: bytes, current: Collection[bytes]) -> bool:
    """Whether a conditional header's value (`*`, or a comma-separated list of entity
    tags) names one of the `current` tags, compared weakly: `W/` does not count."""
    header = header.strip()
    if header == b"*":
        return True
    opaque = {_opaque(tag) for tag in current}
    return any(_opaque(tag) in opaque for tag in header.split(b","))


def _opaque(tag: bytes) -> bytes:
    tag = tag.strip()
    return tag[2:] if tag.startswith(b"W/") else tag


def render_stored(stored: StoredState) -> bytes:
    """The snapshot file's JSON, with each list spliced in as the JSON it is held as: a
    save at 10,000 conversations is one copy, not a serialisation."""
    head = stored.model_dump_json(by_alias=True, exclude={"sources", "local"}).encode()
    # `propagation` is in `head`: small, and ahead of the lists spliced in below.
    parts = [head[:-1], b',"sources":{']
    for number, (name, record) in enumerate(stored.sources.items()):
        status = record.status.model_dump_json(by_alias=True).encode()
        parts.append(b'%s"%s":{"status":%s,"data":' % (b"," * bool(number), name.encode(), status))
        if record.data is None:
            parts.append(b"null}")
            continue
        data = record.data.model_dump_json(by_alias=True, exclude=_LIST_FIELDS).encode()
        parts += [
            data[:-1],
            b',"workspaces":',
            _list_json(record.data.workspaces),
            b',"conversations":',
            _list_json(record.data.conversations),
            b"}}",
        ]
    parts += [b'},"local":', stored.local.model_dump_json(by_alias=True).encode(), b"}"]
    return b"".join(parts)


_LIST_FIELDS = {"workspaces", "conversations"}


def _list_json(items: ItemList | None) -> bytes:
    return b"null" if items is None else items.json


_ALIASES: dict[ListSection, tuple[str, ...]] = {"workspaces": ("slug",)}
"""Fields besides `id` that find an item: a workspace by its slug (contract §5)."""

_SECTION_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "user": TypeAdapter(User | None),
    "settings": TypeAdapter(StateSettings),
}
_TIMESTAMP: TypeAdapter[Timestamp | None] = TypeAdapter(Timestamp | None)
_SOURCES: TypeAdapter[dict[SourceName, SourceStatus]] = TypeAdapter(dict[SourceName, SourceStatus])


def _dump_section(state: SharedState, section: str) -> bytes:
    return _SECTION_ADAPTERS[section].dump_json(getattr(state, section), by_alias=True)
