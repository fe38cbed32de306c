"""The shared state in Redis: the current state with its version, and the change log
as a Redis Stream, published together by the lease holder and read by every replica.

`<prefix>:state` is a hash of `version`, `fence` (the token of the tenure that wrote it),
`snapshot` (and `touch`, `highest`, below): `snapshot` is everything a replica needs to
serve that state and a new holder needs to carry on from it
(`StateManager.replica_snapshot`: what each upstream last answered, with secrets removed
when it arrived, the settings the service keeps, propagation's memory, the ETag epoch
and when each section last changed). Each replica merges it itself, so
every replica renders the same bytes, and nothing is stored twice; `touch` counts the
renewals of a version's timestamps (a sync that changed no data, `touch`); `highest` is
the highest version published, or reported by a replica that holds a newer version
than a Redis that lost its data (`report`), which the holder then publishes above.

`<prefix>:log` is a stream with one entry per version, its id `<version>-0`, capped at
`SHARED_STATE_REPLAY_VERSIONS` entries (`XADD MAXLEN`): `kind` `changed` with the
event's JSON, or `kind` `reset` where the log starts over (a restore, a gap, a Redis
that came back empty): no replay ever reaches across a reset.

`publish` does all of it in one Lua script, so a state, its version and its log entry
are never seen apart, and the script first checks the tenure: the lease must still name
the publisher and its fencing token must be the fence counter's current value
(`store.lease`), so a holder that lost its lease, even one that does not know it yet,
publishes nothing (the holder check also covers a Redis that restarted and counts its
fences from 1 again). Followers wait on the stream with
`XREAD BLOCK` (`wait_for_change`) and read the state and the entries after their
version in one `MULTI`/`EXEC` (`changes_after`), so what they hold is always a state
with exactly the events that led to it (or a gap, for which their subscribers get a
`snapshot`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared_state.domain.events import ChangedEvent, changed_json
from shared_state.store.codec import parse_changed
from shared_state.store.keys import StoreKeys

# KEYS: lease, fence, state, log. ARGV: holder, fence, version, previous version,
# snapshot, event JSON ('' = none: the log starts over), log length.
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {0, 'stale_fence', tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local fence = tonumber(ARGV[2])
local current_fence = tonumber(redis.call('GET', KEYS[2]) or '0')
if fence ~= current_fence then
    return {0, 'stale_fence', current_fence}
end
local version = tonumber(ARGV[3])
local stored = tonumber(redis.call('HGET', KEYS[3], 'version') or '-1')
if version <= stored then
    return {0, 'version_not_newer', stored}
end
redis.call('HSET', KEYS[3], 'version', ARGV[3], 'fence', ARGV[2], 'snapshot', ARGV[5], 'touch', 0)
if version > tonumber(redis.call('HGET', KEYS[3], 'highest') or '0') then
    redis.call('HSET', KEYS[3], 'highest', ARGV[3])
end
local id = ARGV[3] .. '-0'
if ARGV[6] == '' or tonumber(ARGV[4]) ~= stored then
    redis.call('DEL', KEYS[4])
    redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[7], id, 'kind', 'reset')
else
    redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[7], id, 'kind', 'changed', 'event', ARGV[6])
end
return {1, 'ok', version}
"""
# KEYS: state. ARGV: version. A replica that holds a newer version than Redis (which
# lost data) says so; -> the highest version any replica reported.
_REPORT = """
local highest = tonumber(redis.call('HGET', KEYS[1], 'highest') or '0')
if tonumber(ARGV[1]) > highest then
    redis.call('HSET', KEYS[1], 'highest', ARGV[1])
    return tonumber(ARGV[1])
end
return highest
"""
# KEYS: lease, fence, state. ARGV: holder, fence, version, snapshot. The same version with
# new timestamps: no log entry; `touch` counts them, for followers to notice.
_TOUCH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {0, 'stale_fence', tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local current_fence = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) ~= current_fence then
    return {0, 'stale_fence', current_fence}
end
local stored = tonumber(redis.call('HGET', KEYS[3], 'version') or '-1')
if tonumber(ARGV[3]) ~= stored then
    return {0, 'version_not_newer', stored}
end
redis.call('HSET', KEYS[3], 'snapshot', ARGV[4])
return {1, 'ok', redis.call('HINCRBY', KEYS[3], 'touch', 1)}
"""


class PublishRefused(Exception):
    """Redis did not take a publish; nothing was changed."""

    def __init__(self, reason: str, current: int) -> None:
        super().__init__(f"{reason} (current {current})")
        self.reason = reason
        self.current = current


class StaleFence(PublishRefused):
    """The publisher no longer holds the lease (another tenure's token is current)."""


class VersionNotNewer(PublishRefused):
    """The version is not above the shared state's: versions never go backwards."""


@dataclass(frozen=True)
class StoredState:
    """The shared state as Redis holds it."""

    version: int
    fence: int
    snapshot: bytes
    touch: int = 0
    """How many times this version's timestamps were renewed (`touch`)."""
    highest: int = 0
    """The highest version published or reported (`report`) since Redis last started."""


@dataclass(frozen=True)
class Update:
    """What a follower reads at once: the current state and the events after the
    version it asked from (oldest first), or `events` None when they are not all held
    (a reset, a cap, a version ahead of the state's): then it starts over from `state`."""

    state: StoredState
    events: list[ChangedEvent] | None


class SharedStateStore:
    """The shared state and its change log in Redis, for the holder (`publish`) and for
    every replica (`current`, `since`, `changes_after`, `held`, `wait_for_change`).

    `blocking` is the client `wait_for_change` waits on: its socket timeout must be
    longer than the wait (the default client's is short, so that a Redis that stops
    answering is noticed at once)."""

    def __init__(
        self,
        redis: Redis,
        keys: StoreKeys,
        *,
        replay_versions: int,
        blocking: Redis | None = None,
    ) -> None:
        if replay_versions < 0:
            raise ValueError("replay_versions must not be negative")
        self._redis = redis
        self._blocking = blocking or redis
        self._keys = keys
        self.replay_versions = replay_versions
        # A stream of at least one entry: followers wait on it even when nothing is
        # replayed (SHARED_STATE_REPLAY_VERSIONS=0); `since` honours the setting itself.
        self._stream_length = max(1, replay_versions)
        self._publish = redis.register_script(_PUBLISH)
        self._touch = redis.register_script(_TOUCH)
        self._report = redis.register_script(_REPORT)

    async def publish(
        self,
        *,
        holder: str,
        fence: int,
        version: int,
        snapshot: bytes,
        event: ChangedEvent | None,
    ) -> None:
        """Make `snapshot` the shared state at `version`, with `event` (which led to it
        from the current shared version) in the log, or, with no event or one from
        another version, a log that starts over. `StaleFence` when `holder` no longer
        holds the lease or `fence` is not its current token, `VersionNotNewer` when
        `version` is not above the shared one; then nothing changed."""
        if event is not None and event.version != version:
            raise ValueError("the event must be the one of `version`")
        if version < 1:
            raise ValueError("versions start at 1")
        event_json = changed_json(event) if event is not None else b""
        previous = event.previous_version if event is not None else -1
        taken, reason, current = await self._publish(
            keys=[self._keys.lease, self._keys.fence, self._keys.state, self._keys.log],
            args=[
                holder,
                fence,
                version,
                previous,
                snapshot,
                event_json or b"",
                self._stream_length,
            ],
        )
        if not taken:
            refused = StaleFence if _text(reason) == "stale_fence" else VersionNotNewer
            raise refused(_text(reason), int(current))

    async def touch(self, *, holder: str, fence: int, version: int, snapshot: bytes) -> int:
        """Replace the shared state's snapshot at the same `version` (new timestamps
        only: the sync changed no data): the version's `touch` count now. Refused as
        `publish` is, and `VersionNotNewer` when the shared version is not `version`."""
        taken, reason, current = await self._touch(
            keys=[self._keys.lease, self._keys.fence, self._keys.state],
            args=[holder, fence, version, snapshot],
        )
        if not taken:
            refused = StaleFence if _text(reason) == "stale_fence" else VersionNotNewer
            raise refused(_text(reason), int(current))
        return int(current)

    async def touched(self) -> tuple[int, int, int] | None:
        """The shared version, how many times it was touched, and the highest version
        any replica reported (`report`), or None when Redis holds no state: what a
        follower compares, cheaply, while nothing is published."""
        version, touch, highest = await self._redis.hmget(
            self._keys.state, ["version", "touch", "highest"]
        )
        if version is None:
            return None
        return int(version), int(touch or 0), int(highest or 0)

    async def report(self, version: int) -> int:
        """Say that a replica holds `version` while Redis has an older one (or none):
        the holder then publishes above it, so that no two states share a version even
        when Redis lost the newest ones. The highest version reported."""
        return int(await self._report(keys=[self._keys.state], args=[version]))

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

    async def wait_for_change(self, after: int, *, block_ms: int = 1000) -> bool:
        """Wait (`XREAD BLOCK`, at most `block_ms`) for a log entry after version
        `after`; True when one is there. Keep `block_ms` below the blocking client's
        socket timeout."""
        arrived = await self._blocking.xread({self._keys.log: f"{after}-0"}, block=block_ms)
        return bool(arrived)

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
        fence=int(fields[b"fence"]),
        snapshot=bytes(fields.get(b"snapshot", b"")),
        touch=int(fields.get(b"touch", 0)),
        highest=int(fields.get(b"highest", 0)),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
