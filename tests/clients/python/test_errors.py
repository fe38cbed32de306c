"""Every failure of a call is a `SharedStateClientError` that says what went wrong, with
the service's own status, code, detail and results, and never the token."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from shared_state.client import AsyncSharedStateClient, SharedStateClient, SharedStateClientError
from tests.clients.python.wire import BASE, SETTINGS, TOKEN, Recorder, json_answer


def _error(*answers: httpx.Response | Exception, **options: Any) -> SharedStateClientError:
    service = Recorder(*answers)
    with (
        SharedStateClient(BASE, TOKEN, transport=service.transport, **options) as client,
        pytest.raises(SharedStateClientError) as caught,
    ):
        client.get_settings()
    return caught.value


def _write_error(answer: httpx.Response) -> SharedStateClientError:
    service = Recorder(answer)
    with (
        SharedStateClient(BASE, TOKEN, transport=service.transport) as client,
        pytest.raises(SharedStateClientError) as caught,
    ):
        client.update_llm_settings(model="gpt-4o")
    return caught.value


def test_404_not_found_keeps_the_services_detail() -> None:
    service = Recorder(
        json_answer({"detail": "No workspace with id 'nope'.", "code": "not_found"}, 404)
    )
    with (
        SharedStateClient(BASE, transport=service.transport) as client,
        pytest.raises(SharedStateClientError) as caught,
    ):
        client.get_workspace("nope")
    error = caught.value
    assert (error.status, error.code, error.results) == (404, "not_found", None)
    assert str(error) == error.detail == "No workspace with id 'nope'."


def test_412_version_mismatch() -> None:
    detail = "The state changed since that ETag was read (If-Match); nothing was written."
    error = _write_error(json_answer({"detail": detail, "code": "version_mismatch"}, 412))
    assert (error.status, error.code, str(error)) == (412, "version_mismatch", detail)


def test_422_with_fastapis_list_is_one_sentence_and_keeps_the_list() -> None:
    errors = [
        {
            "type": "less_than_equal",
            "loc": ["body", "temperature"],
            "msg": "Input should be less than or equal to 2",
            "input": 3,
        }
    ]
    error = _write_error(json_answer({"detail": errors}, 422))
    assert (error.status, error.code) == (422, "invalid_request")
    assert (
        str(error) == "Invalid request: body.temperature: Input should be less than or equal to 2."
    )
    assert error.errors == errors


def test_422_with_a_code_keeps_it() -> None:
    body = {"detail": "This Idempotency-Key was already used.", "code": "idempotency_key_reused"}
    error = _write_error(json_answer(body, 422))
    assert (error.code, error.errors) == ("idempotency_key_reused", None)


def test_502_carries_each_upstreams_result() -> None:
    body = {
        "detail": "The write failed on librechat; the state was not changed.",
        "code": "upstream_write_failed",
        "results": {"anythingllm": "rolled_back", "librechat": "failed"},
    }
    error = _write_error(json_answer(body, 502))
    assert (error.status, error.code) == (502, "upstream_write_failed")
    assert error.results == {"anythingllm": "rolled_back", "librechat": "failed"}
    assert str(error).startswith("The write failed on librechat")


def test_an_html_error_page_is_a_bad_response_with_its_status() -> None:
    page = httpx.Response(
        502, text="<html><h1>Bad Gateway</h1></html>", headers={"content-type": "text/html"}
    )
    error = _error(page)
    assert (error.status, error.code) == (502, "bad_response")
    assert str(error) == (
        "The service answered GET /api/shared-state/settings with 502 Bad Gateway and an "
        "HTML page, not a JSON error."
    )


def test_an_html_page_with_200_is_a_bad_response() -> None:
    """A proxy's login page, or a base URL that points at another application."""
    page = httpx.Response(
        200, text="<!doctype html><p>Sign in</p>", headers={"content-type": "text/html"}
    )
    error = _error(page)
    assert (error.status, error.code) == (200, "bad_response")
    assert "text/html, not JSON" in str(error)


def test_json_of_the_wrong_shape_is_a_bad_response() -> None:
    error = _error(json_answer({**SETTINGS, "llm": {"temperature": "hot"}}))
    assert error.code == "bad_response"
    assert "llm.temperature" in str(error)
    assert "hot" not in str(error)  # the answer's values are not echoed


def test_malformed_json_is_a_bad_response() -> None:
    error = _error(
        httpx.Response(200, content=b'{"llm": ', headers={"content-type": "application/json"})
    )
    assert error.code == "bad_response"


def test_a_redirect_is_not_followed() -> None:
    error = _error(httpx.Response(302, headers={"location": "http://elsewhere.test/login"}))
    assert (error.status, error.code) == (302, "bad_response")


def test_an_answer_larger_than_the_limit_is_refused() -> None:
    big = json_answer({**SETTINGS, "vectorDb": {"provider": "x" * 5000, "settings": {}}})
    error = _error(big, max_answer_bytes=1000)
    assert error.code == "answer_too_large"


def test_an_answer_larger_than_the_limit_without_a_length_is_refused() -> None:
    def chunks() -> Any:
        yield b'{"llm": "'
        for _ in range(100):
            yield b"x" * 100

    error = _error(
        httpx.Response(200, content=chunks(), headers={"content-type": "application/json"}),
        max_answer_bytes=1000,
    )
    assert error.code == "answer_too_large"


def test_a_refused_connection_names_the_url_and_no_token() -> None:
    """A real refusal: a loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with (
        SharedStateClient(url, TOKEN, retries=0) as client,
        pytest.raises(SharedStateClientError) as caught,
    ):
        client.get_state()
    error = caught.value
    assert (error.status, error.code) == (None, "network_error")
    assert str(error) == (
        f"Could not reach the service at {url} for GET /api/shared-state: "
        "connection refused or unreachable."
    )
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_a_timeout_is_a_network_error() -> None:
    error = _error(httpx.ReadTimeout("slow"), retries=0)
    assert error.code == "network_error"
    assert "no answer in time" in str(error)


def test_the_token_is_never_in_a_repr_or_an_error() -> None:
    """Not in the client's repr, nor in any error's str or repr, nor in the URL shown."""
    client = SharedStateClient(f"http://user:{TOKEN}@service.test", TOKEN)
    shown = repr(client) + client.base_url
    client.close()
    errors = [
        _error(httpx.ConnectError(f"refused {TOKEN}"), retries=0),
        _error(httpx.Response(500, text=f"oops {TOKEN}")),
        _error(
            json_answer({"detail": "Missing or invalid API token.", "code": "unauthorized"}, 401)
        ),
    ]
    shown += "".join(str(e) + repr(e) for e in errors)
    assert TOKEN not in shown
    assert "token=<set>" in repr(client)


async def test_the_async_client_maps_errors_alike() -> None:
    service = Recorder(
        json_answer({"detail": "No conversation with id 'x'.", "code": "not_found"}, 404),
        httpx.ConnectError("refused"),
    )
    async with AsyncSharedStateClient(
        BASE, TOKEN, transport=service.transport, retries=0
    ) as client:
        with pytest.raises(SharedStateClientError) as not_found:
            await client.get_conversation("x")
        with pytest.raises(SharedStateClientError) as refused:
            await client.sync()
    assert (not_found.value.status, not_found.value.code) == (404, "not_found")
    assert refused.value.code == "network_error"
    assert "POST /api/shared-state/sync" in str(refused.value)
