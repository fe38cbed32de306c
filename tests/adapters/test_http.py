"""Wire behaviour of `JsonApi` (JSON only, retried reads, never-retried writes, errors
without bodies) and of `gather_reads` (order, cancellation, the first failure as is)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx
from pydantic import BaseModel, TypeAdapter

from shared_state.adapters.http import JsonApi, gather_reads
from shared_state.errors import (
    UpstreamResponseInvalid,
    UpstreamStatusError,
    UpstreamUnavailable,
)

CANARY = "CANARY-body-7f3a"


class Thing(BaseModel):
    id: int
    name: str


THING = TypeAdapter(Thing)
GOOD = {"id": 7, "name": "seven"}


# --- reads --------------------------------------------------------------------------------


async def test_get_returns_the_validated_json_answer(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A 200 JSON answer comes back validated against the shape."""
    api_wire.get("/thing").respond(200, json=GOOD)

    thing = await api.get("/thing", THING)

    assert thing == Thing(id=7, name="seven")


async def test_get_sends_the_clients_headers_and_the_query(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """The upstream sees the client's Authorization header and the keyword params as query."""
    route = api_wire.get("/thing").respond(200, json=GOOD)

    await api.get("/thing", THING, page=2)

    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer k"
    assert request.url.params["page"] == "2"


async def test_get_accepts_json_with_a_charset(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """`application/json; charset=utf-8` is JSON."""
    api_wire.get("/thing").respond(
        200,
        content=b'{"id": 7, "name": "seven"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert await api.get("/thing", THING) == Thing(id=7, name="seven")


async def test_server_error_is_retried_then_raised_with_its_status(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A persistent 500 is tried three times, then raised as `UpstreamStatusError(500)`."""
    route = api_wire.get("/thing").respond(500, json={"error": CANARY})

    with pytest.raises(UpstreamStatusError) as caught:
        await api.get("/thing", THING)

    assert route.call_count == 3
    assert caught.value.status == 500
    assert caught.value.source == "anythingllm"
    assert str(caught.value) == "anythingllm: GET /thing answered HTTP 500"
    assert CANARY not in str(caught.value)


async def test_not_found_is_not_retried(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """A 404 is final: one call, `UpstreamStatusError(404)`."""
    route = api_wire.get("/thing").respond(404, json={"error": CANARY})

    with pytest.raises(UpstreamStatusError) as caught:
        await api.get("/thing", THING)

    assert route.call_count == 1
    assert caught.value.status == 404
    assert "GET /thing" in str(caught.value)
    assert CANARY not in str(caught.value)


async def test_too_many_requests_is_retried(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """A 429 is transient: the next attempt's answer is returned."""
    route = api_wire.get("/thing")
    route.side_effect = [httpx.Response(429), httpx.Response(200, json=GOOD)]

    thing = await api.get("/thing", THING)

    assert route.call_count == 2
    assert thing.id == 7


async def test_transient_server_error_then_success_returns_the_data(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """One 500 followed by a 200 costs one retry and returns the data."""
    route = api_wire.get("/thing")
    route.side_effect = [httpx.Response(500), httpx.Response(200, json=GOOD)]

    thing = await api.get("/thing", THING)

    assert route.call_count == 2
    assert thing == Thing(id=7, name="seven")


async def test_timeout_is_retried_then_raised_as_unavailable(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A read timeout on every attempt becomes `UpstreamUnavailable` after three tries."""
    route = api_wire.get("/thing").mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(UpstreamUnavailable) as caught:
        await api.get("/thing", THING)

    assert route.call_count == 3
    assert str(caught.value) == "anythingllm: GET /thing timed out"
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_connection_error_is_raised_as_unavailable(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A refused connection becomes `UpstreamUnavailable` naming the transport error."""
    route = api_wire.get("/thing").mock(side_effect=httpx.ConnectError)

    with pytest.raises(UpstreamUnavailable) as caught:
        await api.get("/thing", THING)

    assert route.call_count == 3
    assert str(caught.value) == "anythingllm: GET /thing failed: ConnectError"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_html_answer_is_invalid_not_data(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """A 200 HTML page is `UpstreamResponseInvalid` saying text/html, tried once."""
    route = api_wire.get("/thing").respond(
        200,
        html=f"<!doctype html><html><body>{CANARY}</body></html>",
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await api.get("/thing", THING)

    assert route.call_count == 1
    assert str(caught.value) == "anythingllm: GET /thing answered text/html, not JSON"
    assert CANARY not in str(caught.value)


async def test_answer_without_content_type_is_invalid(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A body without a content type is not taken for JSON."""
    api_wire.get("/thing").respond(200, content=b'{"id": 7, "name": "seven"}')

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await api.get("/thing", THING)

    assert str(caught.value) == "anythingllm: GET /thing answered no content type, not JSON"


async def test_malformed_json_is_invalid(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """A truncated JSON body under `application/json` is `UpstreamResponseInvalid`."""
    api_wire.get("/thing").respond(
        200,
        content=f'{{"id": 7, "name": "{CANARY}'.encode(),
        headers={"Content-Type": "application/json"},
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await api.get("/thing", THING)

    assert str(caught.value) == "anythingllm: GET /thing answered malformed JSON"
    assert CANARY not in str(caught.value)


async def test_wrong_shape_names_the_field_but_not_the_value(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A field of the wrong type is `UpstreamResponseInvalid` naming the field, not its value."""
    api_wire.get("/thing").respond(200, json={"id": CANARY, "name": "seven"})

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await api.get("/thing", THING)

    assert str(caught.value) == (
        "anythingllm: GET /thing answered an unexpected shape (id: int_parsing)"
    )
    assert CANARY not in str(caught.value)


async def test_json_string_where_an_object_is_expected_is_invalid(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A bare JSON string is the wrong shape for an object, and its text is not shown."""
    api_wire.get("/thing").respond(200, json=CANARY)

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await api.get("/thing", THING)

    assert str(caught.value) == (
        "anythingllm: GET /thing answered an unexpected shape (body: model_type)"
    )


# --- writes -------------------------------------------------------------------------------


async def test_post_sends_the_body_as_json_and_returns_the_answer(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A POST carries the JSON body and the client's headers, and returns the validated answer."""
    route = api_wire.post("/thing").respond(200, json=GOOD)

    thing = await api.post("/thing", {"name": "seven", "weight": 0.5}, THING)

    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer k"
    assert request.read() == b'{"name":"seven","weight":0.5}'
    assert thing == Thing(id=7, name="seven")


async def test_post_is_never_retried_on_server_error(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A 503 on a POST is raised after exactly one call."""
    route = api_wire.post("/thing").respond(503, json={"error": CANARY})

    with pytest.raises(UpstreamStatusError) as caught:
        await api.post("/thing", {"name": "seven"}, THING)

    assert route.call_count == 1
    assert caught.value.status == 503
    assert str(caught.value) == "anythingllm: POST /thing answered HTTP 503"


async def test_post_is_never_retried_on_timeout(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """A timed-out POST may have landed, so it is raised after exactly one call."""
    route = api_wire.post("/thing").mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(UpstreamUnavailable) as caught:
        await api.post("/thing", {"name": "seven"}, THING)

    assert route.call_count == 1
    assert str(caught.value) == "anythingllm: POST /thing timed out"


# --- gather_reads -------------------------------------------------------------------------


async def test_gather_reads_returns_results_in_argument_order() -> None:
    """Results follow the order of the reads, not the order in which they finish."""
    first_may_finish = asyncio.Event()

    async def slow_first() -> str:
        await first_may_finish.wait()
        return "first"

    async def quick_second() -> str:
        first_may_finish.set()
        return "second"

    async def third() -> int:
        return 3

    results = await gather_reads(slow_first(), quick_second(), third())

    assert results == ["first", "second", 3]


async def test_gather_reads_raises_the_first_failure_itself_and_cancels_the_others() -> None:
    """A failing read cancels the pending ones and is raised as is, not as an ExceptionGroup."""
    failure = UpstreamUnavailable("librechat", "GET /api/user/me timed out")
    cancelled: list[str] = []

    async def pending() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("pending")
            raise

    async def failing() -> None:
        raise failure

    with pytest.raises(UpstreamUnavailable) as caught:
        await gather_reads(pending(), failing())

    assert caught.value is failure
    assert cancelled == ["pending"]


async def test_gather_reads_keeps_the_transport_cause_of_the_failure(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """The raised failure still carries its httpx cause, so a log with exc_info shows it."""
    api_wire.get("/thing").respond(200, json=GOOD)
    api_wire.get("/down").mock(side_effect=httpx.ConnectError)

    with pytest.raises(UpstreamUnavailable) as caught:
        await gather_reads(api.get("/thing", THING), api.get("/down", THING))

    assert str(caught.value) == "anythingllm: GET /down failed: ConnectError"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
