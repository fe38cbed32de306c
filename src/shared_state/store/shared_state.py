"""The shared state in Redis: the current state with its version, and the change log
as a Redis Stream, published together by the lease holder and read by every replica.

`<prefix>:state` is a hash of `version`, `json` (the state rendered as
`GET /api/shared-state` serves it), `fence` (the token of the tenure that wrote it) and,
optionally, `snapshot` (what a new holder needs to carry on: the snapshot file's
content, upstream data with secrets already removed, local settings, propagation
memory). `<prefix>:log` is a stream with one entry per version, its id `<version>-0`,
capped at `SHARED_STATE_REPLAY_VERSIONS` entries (`XADD MAXLEN`): `kind` `changed` with
the event's JSON, or `kind` `reset` where the log starts over (a restore, a gap, a Redis
that came back empty): no replay ever reaches across a reset.

`publish` does all of it in one Lua script, so a state, its version and its log entry
are never seen apart, and the script first checks the fencing token: it must be the
fence counter's current value (`store.lease`), so a holder that lost its lease, even
one that does not know it yet, publishes nothing. Followers wait on the stream with
`XREAD BLOCK` and read the state and the entries after their version in one
`MULTI`/`EXEC`, so what they hold is always a state with exactly the events that led
to it (or a gap, for which their subscribers get a `snapshot`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared_state.domain.events import ChangedEvent, changed_json
from shared_state.store.codec import parse_changed
from shared_state.store.keys import StoreKeys

# KEYS: fence, state, log. ARGV: fence, version, previous version, state JSON, event JSON
# ('' = none: the log starts over), log length, snapshot ('' = none).
_PUBLISH = """
local fence = tonumber(ARGV[1])
local current_fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence ~= current_fence then
    return {0, 'stale_fence', current_fence}
end
local version = tonumber(ARGV[2])
local stored = tonumber(redis.call('HGET', KEYS[2], 'version') or '-1')
if version <= stored then
    return {0, 'version_not_newer', stored}
end
redis.call('HSET', KEYS[2], 'version', ARGV[2], 'json', ARGV[4], 'fence', ARGV[1])
if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[2], 'snapshot', ARGV[7])
else
    redis.call('HDEL', KEYS[2], 'snapshot')
end
local id = ARGV[2] .. '-0'
if ARGV[5] == '' or tonumber(ARGV[3]) ~= stored then
    redis.call('DEL', KEYS[3])
    redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[6], id, 'kind', 'reset')
else
    redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[6], id, 'kind', 'changed', 'event', ARGV[5])
end
return {1, 'ok', version}
"""


class PublishRefused(Exception):
    """Redis did not take a publish; nothing was changed."""

    def __init__(self, reason: str, current: int) -> None:
        super().__init__(f"{reason} (current {current})")
        self.reason = reason
        self.current = current


class StaleFence(PublishRefused):
    """The publisher's fencing token is not the current tenure's: it lost the lease."""


class VersionNotNewer(PublishRefused):
    """The version is not above the shared state's: versions never go backwards."""


@dataclass(frozen=True)
class StoredState:
    """The shared state as Redis holds it."""

    version: int
    json: bytes
    fence: int
    snapshot: bytes | None = None


@dataclass(frozen=True)
class Update:
    """What a follower reads at once: the current state and the events after the
    version it asked from (oldest first), or `events` None when they are not all held
    (a reset, a cap, a version ahead of the state's): then it starts over from `state`."""

    state: StoredState
    events: list[ChangedEvent] | None


class SharedStateStore:
    """The shared state and its change log in Redis, for the holder (`publish`) and for
    every replica (`current`, `since`, `changes_after`, `follow`)."""

    def __init__(self, redis: Redis, keys: StoreKeys, *, replay_versions: int) -> None:
        if replay_versions < 0:
            raise ValueError("replay_versions must not be negative")
        self._redis = redis
        self._keys = keys
        self.replay_versions = replay_versions
        # A stream of at least one entry: followers wait on it even when nothing is
        # replayed (SHARED_STATE_REPLAY_VERSIONS=0); `since` honours the setting itself.
        self._stream_length = max(1, replay_versions)
        self._publish = redis.register_script(_PUBLISH)

    async def publish(
        self,
        *,
        fence: int,
        version: int,
        state_json: bytes,
        event: ChangedEvent | None,
        snapshot: bytes | None = None,
    ) -> None:
        """Make `state_json` the shared state at `version`, with `event` (which led to it
        from the current shared version) in the log, or, with no event or one from
        another version, a log that starts over. `StaleFence` when `fence` is not the
        current tenure's, `VersionNotNewer` when `version` is not above the shared one;
        then nothing changed."""
        if event is not None and event.version != version:
            raise ValueError("the event must be the one of `version`")
        if version < 1:
            raise ValueError("versions start at 1")
        event_json = changed_json(event) if event is not None else b""
        previous = event.previous_version if event is not None else -1
        taken, reason, current = await self._publish(
            keys=[self._keys.fence, self._keys.state, self._keys.log],
            args=[
                fence,
                version,
                previous,
                state_json,
                event_json or b"",
                self._stream_length,
                snapshot or b"",
            ],
        )
        if not taken:
            refused = StaleFence if _text(reason) == "stale_fence" else VersionNotNewer
            raise refused(_text(reason), int(current))

    async def current(self) -> StoredState | None:
        """The shared state, or None when Redis holds none (new, or back empty)."""
        return _stored(await self._redis.hgetall(self._keys.state))

    async def changes_after(self, version: int) -> Update | None:
        """The current state and the events after `version`, read together; None when
        Redis holds no state."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys.state)
            pipe.xrange(self._keys.log, min=f"{version + 1}-0")
            fields, entries = await pipe.execute()
        state = _stored(fields)
        if state is None:
            return None
        return Update(state, self._replayable(version, state.version, entries))

    async def held(self) -> tuple[StoredState, list[ChangedEvent]] | None:
        """The current state and every event the log holds that leads to it without a
        gap (oldest first; empty after a reset), read together: what a starting replica
        loads. None when Redis holds no state."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys.state)
            pipe.xrange(self._keys.log)
            fields, entries = await pipe.execute()
        state = _stored(fields)
        if state is None:
            return None
        events: list[ChangedEvent] = []
        for _, entry in entries:
            if entry.get(b"kind") != b"changed":
                events.clear()  # nothing before a reset leads to the current state
                continue
            events.append(parse_changed(entry[b"event"]))
        return state, events[len(events) - min(len(events), self.replay_versions) :]

    async def since(self, version: int) -> list[ChangedEvent] | None:
        """`ChangeLog.since` against Redis: the events after `version`, oldest first
        (empty when it is current), or None when not all of them are held or `version`
        is ahead of the current one (or Redis holds no state)."""
        update = await self.changes_after(version)
        return None if update is None else update.events

    async def follow(self, after: int, *, block_ms: int = 1000) -> AsyncGenerator[Update, None]:
        """Every change after version `after`, as it is published: an `Update` per batch
        (`XREAD BLOCK`, `block_ms` at a time; keep it below the client's socket timeout).
        Starts with an `Update` at once when the shared state is already past `after`.
        Stop it with `aclose()` between updates (or a short `block_ms`): a task cancelled
        while redis-py waits in `XREAD` was seen to hang in a test on redis-py 8.1."""
        update = await self.changes_after(after)
        if update is not None and update.state.version != after:
            yield update
            after = update.state.version
        while True:
            arrived = await self._redis.xread({self._keys.log: f"{after}-0"}, block=block_ms)
            if not arrived:
                continue
            update = await self.changes_after(after)
            if update is None or update.state.version == after:
                continue  # emptied, or an entry trimmed away under us: wait for the next
            yield update
            after = update.state.version

    def _replayable(
        self, version: int, current: int, entries: list[tuple[Any, dict[Any, Any]]]
    ) -> list[ChangedEvent] | None:
        if version > current:
            return None
        if version == current:
            return []
        if current - version > self.replay_versions or len(entries) != current - version:
            return None
        events = []
        for entry_id, fields in entries:
            if fields.get(b"kind") != b"changed":
                return None
            event = parse_changed(fields[b"event"])
            if f"{event.version}-0" != _text(entry_id):
                return None
            events.append(event)
        return events


def _stored(fields: dict[Any, Any]) -> StoredState | None:
    if not fields or b"version" not in fields:
        return None
    return StoredState(
        version=int(fields[b"version"]),
        json=bytes(fields[b"json"]),
        fence=int(fields[b"fence"]),
        snapshot=fields.get(b"snapshot"),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
