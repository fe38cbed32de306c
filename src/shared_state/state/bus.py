"""The in-process event bus: fan-out to subscribers without ever blocking the publisher.

Each subscriber has a bounded queue. A subscriber whose queue is full is dropped (its
iterator raises `SubscriptionDropped`) rather than growing memory or stalling a sync.
`close()` ends every subscription, which is how streams end on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from types import TracebackType

from shared_state.domain.events import ChangedEvent, SnapshotEvent
from shared_state.errors import SubscriptionDropped

log = logging.getLogger(__name__)

Event = ChangedEvent | SnapshotEvent

DEFAULT_QUEUE_SIZE = 256


class _Closed:
    """Queue sentinel: the bus closed, the iteration ends."""


class _Dropped:
    """Queue sentinel: the subscriber fell behind and was dropped."""


_CLOSED = _Closed()
_DROPPED = _Dropped()
_Item = Event | _Closed | _Dropped


class Subscription(AsyncIterator[Event]):
    """One subscriber's view of the bus: `async for event in subscription`.

    Also an async context manager, which unsubscribes on exit. A subscription that is
    simply dropped (garbage-collected) unsubscribes too.
    """

    def __init__(self, bus: EventBus, queue: asyncio.Queue[_Item]) -> None:
        self._bus = bus
        self._queue = queue
        self._finished = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, _Dropped):
            self._finished = True
            raise SubscriptionDropped("This subscriber fell behind and was dropped.")
        return item

    def close(self) -> None:
        """Unsubscribe; a pending `__anext__` ends the iteration."""
        self._bus._remove(self._queue)
        _put_sentinel(self._queue, _CLOSED)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    """Publishes events to every subscriber's bounded queue; never awaits."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._queues: set[asyncio.Queue[_Item]] = set()
        self._closed = False
        self.dropped_count = 0
        """Subscribers dropped for falling behind, since start (a metric)."""

    @property
    def subscriber_count(self) -> int:
        return len(self._queues)

    def subscribe(self, *, first: Event | None = None) -> Subscription:
        """A new subscription; `first`, when given, is the first event it yields."""
        queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=self._queue_size + 1)
        subscription = Subscription(self, queue)
        if first is not None:
            queue.put_nowait(first)
        if self._closed:
            queue.put_nowait(_CLOSED)
            return subscription
        self._queues.add(queue)
        weakref.finalize(subscription, self._remove, queue)
        return subscription

    def publish(self, event: Event) -> None:
        """Queue `event` for every subscriber; drop those whose queue is full."""
        for queue in list(self._queues):
            # One slot stays free for the sentinel, so a dropped subscriber is always told.
            if queue.qsize() >= self._queue_size:
                log.warning(
                    "dropping an event subscriber that fell %d events behind", queue.qsize()
                )
                self._remove(queue)
                self.dropped_count += 1
                _put_sentinel(queue, _DROPPED)
            else:
                queue.put_nowait(event)

    def close(self) -> None:
        """End every subscription (shutdown)."""
        self._closed = True
        for queue in list(self._queues):
            self._remove(queue)
            _put_sentinel(queue, _CLOSED)

    def _remove(self, queue: asyncio.Queue[_Item]) -> None:
        self._queues.discard(queue)


def _put_sentinel(queue: asyncio.Queue[_Item], sentinel: _Item) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # already told; nothing more to say
        queue.put_nowait(sentinel)
