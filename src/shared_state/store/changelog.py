"""`MirroredChangeLog`: the `ChangeLog` a replica serves from, kept equal to Redis's.

The `ChangeLog` protocol (`state/changelog.py`) is synchronous: the state manager
appends under its lock and the event route asks `since` on every reconnection, neither
of which may wait on the network. So each replica keeps the log in memory as before
(an `InMemoryChangeLog`, the same bound), and Redis is where it comes from: `load` at
start-up (every event the stream holds), `apply` for each `Update` a follower reads
(`SharedStateStore.follow`), and, on the holder, `append` after its `publish` was taken.
A cursor given to one replica is thus answered the same by any other once it has
caught up (within the follower's `XREAD BLOCK` round trip), and a replica that cannot
reach Redis still answers from what it holds.
"""

from __future__ import annotations

from shared_state.domain.events import ChangedEvent
from shared_state.state.changelog import DEFAULT_REPLAY_VERSIONS, InMemoryChangeLog
from shared_state.store.shared_state import SharedStateStore, Update


class MirroredChangeLog:
    """A `ChangeLog` held in memory and fed from the shared change log in Redis."""

    def __init__(self, max_versions: int = DEFAULT_REPLAY_VERSIONS, *, version: int = 0) -> None:
        self._log = InMemoryChangeLog(max_versions, version=version)

    @property
    def version(self) -> int:
        return self._log.version

    def reset(self, version: int) -> None:
        self._log.reset(version)

    def append(self, event: ChangedEvent) -> None:
        self._log.append(event)

    def since(self, version: int) -> list[ChangedEvent] | None:
        return self._log.since(version)

    def apply(self, update: Update) -> None:
        """Take what a follower read: the events after this log's version, or, for a gap,
        a start over at the shared state's version."""
        if update.events is None:
            self._log.reset(update.state.version)
            return
        for event in update.events:
            self._log.append(event)  # a gap between them resets the ring (its own check)
        if self._log.version != update.state.version:
            self._log.reset(update.state.version)

    async def load(self, store: SharedStateStore) -> bool:
        """Start from what Redis holds (its state's version and every event held);
        False, and nothing changed, when Redis holds no state."""
        held = await store.held()
        if held is None:
            return False
        state, events = held
        self._log.reset(events[0].previous_version if events else state.version)
        for event in events:
            self._log.append(event)
        if self._log.version != state.version:
            self._log.reset(state.version)
        return True
