"""Tests of SHARED_STATE_API_TOKEN and SHARED_STATE_CORS_ORIGINS (contract §3)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Service, make_anythingllm, make_settings, start_service

BASE = "/api/shared-state"
TOKEN = "s3cret-token"
UNAUTHORIZED = {
    "detail": "Send the API token as 'Authorization: Bearer <token>'.",
    "code": "unauthorized",
}
PROTECTED = [
    ("GET", BASE, None),
    ("GET", BASE + "/user", None),
    ("GET", BASE + "/settings", None),
    ("GET", BASE + "/workspaces", None),
    ("GET", BASE + "/workspaces/1", None),
    ("GET", BASE + "/conversations", None),
    ("GET", BASE + "/status", None),
    ("POST", BASE + "/sync", None),
    ("POST", BASE + "/llm-settings", {"temperature": 0.5}),
    ("POST", BASE + "/ui-settings", {"theme": "light"}),
]
PREFLIGHT = {"access-control-request-method": "GET"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="token-with-suffix"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="basic-scheme"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_api_without_the_right_token_is_unauthorized(
    headers: dict[str, str], method: str, path: str, body: Any
) -> None:
    """With a token configured, a request without it (or with another) gets 401."""
    anythingllm = make_anythingllm()
    async with start_service(make_settings(SHARED_STATE_API_TOKEN=TOKEN), [anythingllm]) as svc:
        fetches = anythingllm.fetch_count
        response = await svc.client.request(method, path, json=body, headers=headers)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"] == "Bearer"
    assert anythingllm.writes == []
    assert anythingllm.fetch_count == fetches


async def test_invalid_write_without_a_token_is_unauthorized_not_invalid() -> None:
    """Without the token, an invalid body is answered 401 (not 422) and nothing is written."""
    anythingllm = make_anythingllm()
    async with start_service(make_settings(SHARED_STATE_API_TOKEN=TOKEN), [anythingllm]) as svc:
        response = await svc.client.post(BASE + "/llm-settings", json={"temperature": 9})

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert anythingllm.writes == []


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_api_with_the_right_token_is_served(method: str, path: str, body: Any) -> None:
    """With a token configured, `Authorization: Bearer <token>` is let through."""
    async with start_service(
        make_settings(SHARED_STATE_API_TOKEN=TOKEN), [make_anythingllm()]
    ) as service:
        response = await service.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )

    assert response.status_code == 200
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    ("path", "body"), [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})]
)
async def test_health_needs_no_token(path: str, body: dict[str, str]) -> None:
    """`/healthz` and `/readyz` answer without a token even when one is configured."""
    async with start_service(
        make_settings(SHARED_STATE_API_TOKEN=TOKEN), [make_anythingllm()]
    ) as service:
        response = await service.client.get(path)

    assert response.status_code == 200
    assert response.json() == body


async def test_without_a_configured_token_none_is_needed(service: Service) -> None:
    """Without SHARED_STATE_API_TOKEN, the API answers requests that carry no token."""
    state = await service.client.get(BASE)
    written = await service.client.post(BASE + "/ui-settings", json={"theme": "light"})

    assert state.status_code == 200
    assert state.json()["version"] == 1
    assert written.status_code == 200
    assert written.json() == {"theme": "light", "fontSize": "large"}


async def test_allowed_origin_gets_the_preflight_answer() -> None:
    """A preflight from an allowed origin is answered with that origin."""
    settings = make_settings(SHARED_STATE_CORS_ORIGINS="http://a.example,http://b.example")
    async with start_service(settings, [make_anythingllm()]) as service:
        first = await service.client.options(
            BASE, headers={"origin": "http://a.example", **PREFLIGHT}
        )
        second = await service.client.options(
            BASE + "/llm-settings",
            headers={
                "origin": "http://b.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )

    assert first.status_code == 200
    assert first.headers["access-control-allow-origin"] == "http://a.example"
    assert second.status_code == 200
    assert second.headers["access-control-allow-origin"] == "http://b.example"
    assert "POST" in second.headers["access-control-allow-methods"]


async def test_other_origin_gets_no_allow_origin() -> None:
    """A preflight from an origin not in the list gets no `access-control-allow-origin`."""
    settings = make_settings(SHARED_STATE_CORS_ORIGINS="http://a.example,http://b.example")
    async with start_service(settings, [make_anythingllm()]) as service:
        preflight = await service.client.options(
            BASE, headers={"origin": "http://evil.example", **PREFLIGHT}
        )
        simple = await service.client.get(BASE, headers={"origin": "http://evil.example"})

    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


async def test_allowed_origin_gets_the_header_on_a_simple_request() -> None:
    """A GET from an allowed origin carries `access-control-allow-origin` for it."""
    settings = make_settings(SHARED_STATE_CORS_ORIGINS="http://a.example,http://b.example")
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.get(BASE, headers={"origin": "http://b.example"})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://b.example"


async def test_unauthorized_answer_carries_cors_headers() -> None:
    """A 401 for an allowed origin carries `access-control-allow-origin`, so the page can
    read why it was refused."""
    settings = make_settings(
        SHARED_STATE_API_TOKEN=TOKEN, SHARED_STATE_CORS_ORIGINS="http://a.example"
    )
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.get(BASE, headers={"origin": "http://a.example"})

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["access-control-allow-origin"] == "http://a.example"


async def test_preflight_needs_no_token() -> None:
    """With a token and CORS configured, a browser's preflight is answered without a token."""
    settings = make_settings(
        SHARED_STATE_API_TOKEN=TOKEN, SHARED_STATE_CORS_ORIGINS="http://a.example"
    )
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.options(
            BASE,
            headers={
                "origin": "http://a.example",
                "access-control-request-method": "GET",
                "access-control-request-headers": "authorization",
            },
        )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://a.example"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_no_cors_headers_when_no_origin_is_configured(service: Service) -> None:
    """Without SHARED_STATE_CORS_ORIGINS, no answer carries CORS headers."""
    preflight = await service.client.options(
        BASE, headers={"origin": "http://a.example", **PREFLIGHT}
    )
    simple = await service.client.get(BASE, headers={"origin": "http://a.example"})

    assert preflight.status_code == 405
    assert simple.status_code == 200
    for response in (preflight, simple):
        assert not [name for name in response.headers if name.startswith("access-control-")]
