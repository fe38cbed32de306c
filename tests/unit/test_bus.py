"""The event bus: fan-out in order, dropping slow subscribers, and ending on close."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime

import pytest

from shared_state.domain.events import ChangedEvent, SnapshotEvent
from shared_state.domain.models import SharedState
from shared_state.errors import SubscriptionDropped
from shared_state.state.bus import Event, EventBus, Subscription

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TIMEOUT_S = 1.0  # a guard against hangs, never a wait for something to happen


def changed(version: int) -> ChangedEvent:
    """A `changed` event for `version`, with no sections."""
    return ChangedEvent(version=version, previous_version=version - 1, timestamp=NOW, changes={})


async def next_event(subscription: Subscription) -> Event:
    """The subscription's next event, failing instead of hanging."""
    return await asyncio.wait_for(anext(subscription), TIMEOUT_S)


async def drain(subscription: Subscription) -> list[Event]:
    """Every event until the subscription ends, failing instead of hanging."""

    async def collect() -> list[Event]:
        return [event async for event in subscription]

    return await asyncio.wait_for(collect(), TIMEOUT_S)


def versions(events: list[Event]) -> list[int]:
    return [event.version for event in events]


async def test_every_subscriber_gets_every_event_in_order() -> None:
    """Each subscriber receives all published events, in publication order."""
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()

    for version in range(1, 6):
        bus.publish(changed(version))
    bus.close()

    assert versions(await drain(first)) == [1, 2, 3, 4, 5]
    assert versions(await drain(second)) == [1, 2, 3, 4, 5]


async def test_subscriber_gets_only_events_published_after_it_subscribed() -> None:
    """A new subscriber does not see events published before it joined."""
    bus = EventBus()
    bus.publish(changed(1))
    subscription = bus.subscribe()
    bus.publish(changed(2))
    bus.close()

    assert versions(await drain(subscription)) == [2]


async def test_first_event_is_yielded_before_published_ones() -> None:
    """An event passed as `first` is the subscription's first event."""
    bus = EventBus()
    snapshot = SnapshotEvent(version=7, timestamp=NOW, state=SharedState(version=7))
    subscription = bus.subscribe(first=snapshot)
    bus.publish(changed(8))
    bus.close()

    assert await drain(subscription) == [snapshot, changed(8)]


async def test_full_subscriber_is_dropped_and_the_others_get_everything() -> None:
    """A subscriber that stops reading is dropped; one that keeps up still gets every event."""
    bus = EventBus(queue_size=2)
    fast, slow = bus.subscribe(), bus.subscribe()
    received: list[Event] = []

    for version in range(1, 11):
        bus.publish(changed(version))  # synchronous: publishing never waits on a reader
        received.append(await next_event(fast))

    assert versions(received) == list(range(1, 11))
    assert bus.subscriber_count == 1
    assert versions([await next_event(slow), await next_event(slow)]) == [1, 2]
    with pytest.raises(SubscriptionDropped):
        await next_event(slow)


async def test_dropped_subscription_stays_finished() -> None:
    """After `SubscriptionDropped`, iterating the subscription again ends at once."""
    bus = EventBus(queue_size=1)
    subscription = bus.subscribe()
    bus.publish(changed(1))
    bus.publish(changed(2))

    assert versions([await next_event(subscription)]) == [1]
    with pytest.raises(SubscriptionDropped):
        await next_event(subscription)
    assert await drain(subscription) == []


async def test_publishing_to_subscribers_that_never_read_drops_them_all() -> None:
    """Publishing many events to tiny queues returns and drops every subscriber."""
    bus = EventBus(queue_size=1)
    subscriptions = [bus.subscribe() for _ in range(3)]

    for version in range(1, 1001):
        bus.publish(changed(version))

    assert bus.subscriber_count == 0
    for subscription in subscriptions:
        assert versions([await next_event(subscription)]) == [1]
        with pytest.raises(SubscriptionDropped):
            await next_event(subscription)


async def test_close_ends_every_subscription_after_its_pending_events() -> None:
    """`close()` lets each subscriber read what it had, then ends its `async for`."""
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    bus.publish(changed(1))

    bus.close()

    assert versions(await drain(first)) == [1]
    assert versions(await drain(second)) == [1]
    assert bus.subscriber_count == 0


async def test_close_wakes_a_subscriber_waiting_for_an_event() -> None:
    """A subscriber blocked on its next event finishes its `async for` when the bus closes."""
    bus = EventBus()
    subscription = bus.subscribe()
    got_first = asyncio.Event()

    async def consume() -> list[Event]:
        events = []
        async for event in subscription:
            events.append(event)
            got_first.set()
        return events

    consumer = asyncio.create_task(consume())
    bus.publish(changed(1))
    await asyncio.wait_for(got_first.wait(), TIMEOUT_S)  # the consumer now waits for more
    bus.close()

    assert versions(await asyncio.wait_for(consumer, TIMEOUT_S)) == [1]


async def test_subscribing_after_close_ends_at_once() -> None:
    """A subscription taken after `close()` yields nothing and is not counted."""
    bus = EventBus()
    bus.close()

    subscription = bus.subscribe()
    bus.publish(changed(1))

    assert await drain(subscription) == []
    assert bus.subscriber_count == 0


async def test_closing_a_subscription_unsubscribes_it() -> None:
    """`Subscription.close()` removes it from the bus and ends its iteration."""
    bus = EventBus()
    subscription, other = bus.subscribe(), bus.subscribe()
    assert bus.subscriber_count == 2

    subscription.close()
    bus.publish(changed(1))

    assert bus.subscriber_count == 1
    assert await drain(subscription) == []
    assert versions([await next_event(other)]) == [1]


async def test_subscription_as_context_manager_unsubscribes_on_exit() -> None:
    """Leaving `async with subscription` unsubscribes it."""
    bus = EventBus()

    async with bus.subscribe() as subscription:
        assert bus.subscriber_count == 1
        bus.publish(changed(1))
        assert versions([await next_event(subscription)]) == [1]

    assert bus.subscriber_count == 0


async def test_garbage_collected_subscription_unsubscribes() -> None:
    """A subscription that is dropped without closing stops counting once collected."""
    bus = EventBus()
    subscription = bus.subscribe()
    kept = bus.subscribe()
    assert bus.subscriber_count == 2

    del subscription
    gc.collect()

    assert bus.subscriber_count == 1
    bus.publish(changed(1))
    assert versions([await next_event(kept)]) == [1]
