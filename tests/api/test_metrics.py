"""`GET /metrics`: Prometheus text with the contract's metrics (§8 "Operations"), route
templates (never raw paths) as labels, upstream requests by outcome, and the state's
gauges read when scraped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import TypeAdapter

from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.api import SharedStateEdge
from shared_state.errors import UpstreamStatusError, UpstreamUnavailable
from shared_state.metrics import Metrics
from shared_state.state.bus import EventBus
from shared_state.state.manager import StateManager
from tests.api.conftest import Service, make_settings, start_service

CONTRACT_METRICS = {
    "shared_state_http_requests",
    "shared_state_http_request_duration_seconds",
    "shared_state_upstream_requests",
    "shared_state_upstream_request_duration_seconds",
    "shared_state_sync_duration_seconds",
    "shared_state_state_version",
    "shared_state_source_last_success_timestamp_seconds",
    "shared_state_event_subscribers",
    "shared_state_event_subscribers_dropped",
}
"""Family names as the parser gives them (a counter's without its `_total`)."""


def samples(text: str, name: str) -> list[Sample]:
    """Every sample called `name` in the exposition `text`."""
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The one sample `name` with exactly `labels`."""
    [found] = [s.value for s in samples(text, name) if s.labels == labels]
    return found


def requests_total(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in samples(text, "shared_state_http_requests_total")
    }


async def scrape(service: Service) -> str:
    response = await service.client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_metrics_need_no_token_and_hold_every_contract_metric() -> None:
    """With an API token and allowed hosts configured, `/metrics` still answers (to a
    scraper that sends the pod's IP as `Host`), in Prometheus text, with every metric
    the contract names; the sync that ran was timed."""
    settings = make_settings(
        SHARED_STATE_API_TOKEN="s3cret-token", SHARED_STATE_ALLOWED_HOSTS="sidecar.example.com"
    )
    async with start_service(settings) as service:
        response = await service.client.get("/metrics", headers={"Host": "10.0.0.7:8080"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= CONTRACT_METRICS
    assert value(response.text, "shared_state_sync_duration_seconds_count") >= 1
    assert "s3cret-token" not in response.text


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    service: Service,
) -> None:
    """Fast-path GETs, a routed item GET (its template, not the id asked for), a 404
    item, an unknown path and an unknown method: each under a bounded label."""
    client = service.client
    assert (await client.get("/api/shared-state/workspaces")).status_code == 200
    assert (await client.get("/api/shared-state/workspaces")).status_code == 200
    assert (await client.get("/api/shared-state/workspaces/research")).status_code == 200
    assert (await client.get("/api/shared-state/workspaces/no-such-one")).status_code == 404
    assert (await client.get("/no/such/path/4711")).status_code == 404
    assert (await client.request("BREW", "/api/shared-state/status")).status_code == 405

    text = await scrape(service)
    counts = requests_total(text)
    item = "/api/shared-state/workspaces/{workspace_id}"
    assert counts[("/api/shared-state/workspaces", "GET", "200")] == 2
    assert counts[(item, "GET", "200")] == 1
    assert counts[(item, "GET", "404")] == 1
    assert counts[("unmatched", "GET", "404")] == 1
    assert counts[("/api/shared-state/status", "other", "405")] == 1
    routes = {route for route, _, _ in counts}
    assert not any("research" in r or "no-such-one" in r or "4711" in r for r in routes)
    assert (
        value(
            text,
            "shared_state_http_request_duration_seconds_count",
            route="/api/shared-state/workspaces",
            method="GET",
        )
        == 2
    )


async def test_refused_requests_are_counted_unmatched() -> None:
    """A request the edge refuses (no token) never reached a route: `unmatched`, 401."""
    async with start_service(make_settings(SHARED_STATE_API_TOKEN="s3cret-token")) as service:
        assert (await service.client.get("/api/shared-state/workspaces/x")).status_code == 401
        text = await scrape(service)

    assert requests_total(text)[("unmatched", "GET", "401")] == 1


async def test_state_gauges_follow_the_state(service: Service) -> None:
    """The version served, each source's last success and the subscribers connected."""
    manager = service.runtime.manager
    subscription = manager.subscribe()
    try:
        text = await scrape(service)
    finally:
        subscription.close()
    after = await scrape(service)

    assert value(text, "shared_state_state_version") == manager.state.version
    for source in ("anythingllm", "librechat"):
        last_success = manager.state.sources[source].last_success_at
        assert last_success is not None
        assert value(
            text, "shared_state_source_last_success_timestamp_seconds", source=source
        ) == pytest.approx(last_success.timestamp())
    assert value(text, "shared_state_event_subscribers") == 1
    assert value(after, "shared_state_event_subscribers") == 0


async def test_a_dropped_subscriber_is_counted() -> None:
    """A subscriber that falls behind its queue is dropped, and counted once."""
    metrics = Metrics()
    manager = StateManager(configured=[], bus=EventBus(queue_size=1))
    metrics.watch(manager)
    subscription = manager.subscribe()
    now = datetime.now(UTC)
    await manager.record_write("ui", {}, {"theme": "dark"}, now)
    await manager.record_write("ui", {}, {"theme": "light"}, now)
    text = metrics.exposition().decode()
    subscription.close()

    assert value(text, "shared_state_event_subscribers_dropped_total") == 1
    assert value(text, "shared_state_event_subscribers") == 0


async def test_the_event_stream_is_counted_but_not_timed() -> None:
    """A request to the event stream's route is counted; its duration (a stream lasts as
    long as its client) is not observed."""
    metrics = Metrics()
    app = FastAPI()

    @app.get("/api/shared-state/events")
    async def events() -> PlainTextResponse:
        return PlainTextResponse(": stream\n\n")

    app.add_middleware(SharedStateEdge, settings=make_settings(), metrics=metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/api/shared-state/events")).status_code == 200
    text = metrics.exposition().decode()

    assert requests_total(text)[("/api/shared-state/events", "GET", "200")] == 1
    assert not [
        s
        for s in samples(text, "shared_state_http_request_duration_seconds_count")
        if s.labels.get("route") == "/api/shared-state/events"
    ]


async def test_upstream_requests_are_counted_by_outcome() -> None:
    """Through `JsonApi`: a 200 is `ok`, a 500 `error`, a refused connection `error`, a
    timeout `timeout`; each request is timed under its upstream."""
    answers: Iterator[httpx.Response | Exception] = iter(
        [
            httpx.Response(200, json={"ok": True}),
            httpx.Response(500, json={}),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    metrics = Metrics()
    shape = TypeAdapter(dict[str, bool])
    no_retry = RetryPolicy(attempts=1)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), base_url="http://upstream"
    ) as client:
        api = JsonApi(client, source="librechat", retry=no_retry, recorder=metrics.record_upstream)
        assert await api.get("/a", shape) == {"ok": True}
        with pytest.raises(UpstreamStatusError):
            await api.get("/b", shape)
        with pytest.raises(UpstreamUnavailable):
            await api.get("/c", shape)
        with pytest.raises(UpstreamUnavailable):
            await api.get("/d", shape)
    text = metrics.exposition().decode()

    total = "shared_state_upstream_requests_total"
    assert value(text, total, upstream="librechat", outcome="ok") == 1
    assert value(text, total, upstream="librechat", outcome="error") == 2
    assert value(text, total, upstream="librechat", outcome="timeout") == 1
    count = "shared_state_upstream_request_duration_seconds_count"
    assert value(text, count, upstream="librechat") == 4


def test_apps_have_registries_of_their_own() -> None:
    """Two apps in one process do not share (or clash on) their metrics."""
    first, second = Metrics(), Metrics()
    first.http_requests.labels("/healthz", "GET", "200").inc()
    second_text = second.exposition().decode()

    assert not samples(second_text, "shared_state_http_requests_total")
