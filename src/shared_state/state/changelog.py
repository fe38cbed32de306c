"""The change log: the latest version and the last `changed` events, for resuming streams.

An event stream that reconnects with `Last-Event-ID: N` is sent exactly the events after
N when they are all still held, or a `snapshot` when they are not. `ChangeLog` is the
small interface that answers that (the next step keeps it in Redis, shared by replicas);
`InMemoryChangeLog` is the one-process implementation, bounded by
`SHARED_STATE_REPLAY_VERSIONS`.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Protocol

from shared_state.domain.events import ChangedEvent

DEFAULT_REPLAY_VERSIONS = 1000


class ChangeLog(Protocol):
    """The version counter and the replay log behind it, kept together so that they can
    never disagree: `version` is the newest event's version (or where `reset` put it)."""

    @property
    def version(self) -> int:
        """The current version."""
        ...

    def reset(self, version: int) -> None:
        """The state is now at `version` with no event held (a restore): forget the rest."""
        ...

    def append(self, event: ChangedEvent) -> None:
        """Record the event of a new version (`event.previous_version` is `version`)."""
        ...

    def since(self, version: int) -> list[ChangedEvent] | None:
        """The events after `version`, oldest first (empty when it is current), or None
        when some of them are no longer held or `version` is ahead of the current one."""
        ...


class InMemoryChangeLog:
    """A `ChangeLog` holding the last `max_versions` events in a ring."""

    def __init__(self, max_versions: int = DEFAULT_REPLAY_VERSIONS, *, version: int = 0) -> None:
        if max_versions < 0:
            raise ValueError("max_versions must not be negative")
        self._events: deque[ChangedEvent] = deque(maxlen=max_versions)
        self._version = version

    @property
    def version(self) -> int:
        return self._version

    def reset(self, version: int) -> None:
        self._events.clear()
        self._version = version

    def append(self, event: ChangedEvent) -> None:
        if event.previous_version != self._version:
            # A gap would let a resumed stream skip versions silently: start over instead.
            self._events.clear()
        self._version = event.version
        if self._events.maxlen:
            self._events.append(event)

    def since(self, version: int) -> list[ChangedEvent] | None:
        if version > self._version:
            return None
        if version == self._version:
            return []
        oldest = self._events[0].previous_version if self._events else self._version
        if version < oldest:
            return None
        return list(islice(self._events, version - oldest, None))
