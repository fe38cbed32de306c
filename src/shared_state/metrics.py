"""The service's Prometheus metrics (contract §8 "Operations"): one registry per app.

`Metrics` holds a `CollectorRegistry` of its own, so that tests (and host applications)
can build many apps in one process without clashing on prometheus-client's global
registry. The composition root builds one and hands its parts out: the edge counts
HTTP requests, `JsonApi` reports upstream requests through `record_upstream`, the
synchronizer observes each sync's duration. What the state already knows (version,
last successes, subscribers) is read when scraped, not kept twice.

Label sets are bounded: `route` is a path template or `unmatched`, `method` one of
`METHODS` or `other`, `status` the status the service sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from shared_state.state.manager import StateManager

UNMATCHED: Final = "unmatched"
"""The `route` label of a request no route answered (unknown path, refused at the edge)."""

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as a label as they are; any other is `other` (a client picks the method)."""

UpstreamOutcome = Literal["ok", "error", "timeout"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class Metrics:
    """The registry and the metric objects the service records into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "shared_state_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "shared_state_http_request_duration_seconds",
            "Time to answer an HTTP request (not the event stream), by route template.",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.upstream_requests = Counter(
            "shared_state_upstream_requests",
            "Requests to an upstream, by outcome (ok, error: an error status or a failed "
            "transport, timeout).",
            ["upstream", "outcome"],
            registry=self.registry,
        )
        self.upstream_duration = Histogram(
            "shared_state_upstream_request_duration_seconds",
            "Time an upstream took to answer one request.",
            ["upstream"],
            registry=self.registry,
        )
        self.sync_duration = Histogram(
            "shared_state_sync_duration_seconds",
            "Time one sync of every upstream took.",
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.propagations = Counter(
            "shared_state_propagations",
            "Propagation writes of a field from one upstream to the other, by outcome "
            "(ok, failed: retried at the next sync, unwritable: the other side cannot "
            "express the value).",
            ["field", "from", "to", "outcome"],
            registry=self.registry,
        )
        self.propagation_conflicts = Gauge(
            "shared_state_propagation_conflicts",
            "Propagated fields in open conflict now (policy manual), as /status lists them.",
            registry=self.registry,
        )
        self._state = _StateCollector()
        self.registry.register(self._state)

    def watch(self, manager: StateManager) -> None:
        """Read the state's gauges from `manager` from now on (it is built after us)."""
        self._state.manager = manager

    def watch_store(self, status: Callable[[], dict[str, Any]]) -> None:
        """Read the store's gauges from `status` (`/status`'s `store`) from now on."""
        self._state.store_status = status

    def record_upstream(self, upstream: str, outcome: UpstreamOutcome, duration_s: float) -> None:
        """One request to `upstream` ended: `JsonApi`'s recorder."""
        self.upstream_requests.labels(upstream, outcome).inc()
        self.upstream_duration.labels(upstream).observe(duration_s)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in the registry."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read from the StateManager at scrape time."""

    def __init__(self) -> None:
        self.manager: StateManager | None = None
        self.store_status: Callable[[], dict[str, Any]] | None = None

    def collect(self) -> Iterator[Metric]:
        manager = self.manager
        state = manager.state if manager is not None else None
        yield GaugeMetricFamily(
            "shared_state_state_version",
            "The version of the state being served.",
            value=state.version if state is not None else 0,
        )
        successes = GaugeMetricFamily(
            "shared_state_source_last_success_timestamp_seconds",
            "When each upstream last answered a sync completely (Unix time).",
            labels=["source"],
        )
        for name, status in (state.sources if state is not None else {}).items():
            if status.last_success_at is not None:
                successes.add_metric([name], status.last_success_at.timestamp())
        yield successes
        yield GaugeMetricFamily(
            "shared_state_event_subscribers",
            "Event-stream subscribers connected now.",
            value=manager.subscriber_count if manager is not None else 0,
        )
        yield CounterMetricFamily(
            "shared_state_event_subscribers_dropped",
            "Event-stream subscribers dropped because they fell behind.",
            value=manager.subscribers_dropped if manager is not None else 0,
        )
        if self.store_status is not None:
            store = self.store_status()
            yield GaugeMetricFamily(
                "shared_state_store_up",
                "1 while the store answers (always, in memory); 0 while Redis does not.",
                value=1 if store["status"] == "ok" else 0,
            )
            yield GaugeMetricFamily(
                "shared_state_lease_held",
                "1 while this replica holds the sync lease (always, in memory).",
                value=1 if store["holding"] else 0,
            )
            yield CounterMetricFamily(
                "shared_state_lease_takeovers",
                "Times this replica took the sync lease.",
                value=store["takeovers"],
            )
