"""Auth and CORS hardening (contract §8, issue 7): `WWW-Authenticate: Bearer` on every
401 of every API route, open probes and paths outside the API, the headers a page may
send and read, `*` refused as an origin, and the warning for an open, token-less bind."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from pydantic import ValidationError

from shared_state import create_app
from shared_state.api import router
from shared_state.api.routes import API_PREFIX
from shared_state.app import CORS_ALLOW_HEADERS, is_loopback
from shared_state.config import describe_invalid_settings
from tests.api.conftest import make_anythingllm, make_settings, start_service

TOKEN = "s3cret-token"
ORIGIN = "http://app.example"


def api_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the API router, ids filled in."""
    found: list[tuple[str, str]] = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            path = route.path.replace("{workspace_id}", "1").replace("{conversation_id}", "c")
            found.extend((method, path) for method in sorted(route.methods or ()))
    return found


ROUTES = api_routes()


def test_the_route_list_is_not_empty() -> None:
    assert ("GET", API_PREFIX + "/status") in ROUTES
    assert ("POST", API_PREFIX + "/sync") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_api_route_answers_401_with_www_authenticate(method: str, path: str) -> None:
    async with start_service(
        make_settings(SHARED_STATE_API_TOKEN=TOKEN), [make_anythingllm()]
    ) as svc:
        without = await svc.client.request(method, path)
        wrong = await svc.client.request(method, path, headers={"Authorization": "Bearer no"})

    for response in (without, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/docs", "/api/other"])
async def test_paths_outside_the_api_never_ask_for_the_token(path: str) -> None:
    """The edge's token check covers only `/api/shared-state*`: probes and `/metrics`
    (whatever answers there) never get a 401."""
    async with start_service(
        make_settings(SHARED_STATE_API_TOKEN=TOKEN), [make_anythingllm()]
    ) as svc:
        response = await svc.client.get(path)

    assert response.status_code != 401
    assert "www-authenticate" not in response.headers


async def test_a_preflight_allows_the_issue_7_headers() -> None:
    settings = make_settings(SHARED_STATE_CORS_ORIGINS=ORIGIN, SHARED_STATE_API_TOKEN=TOKEN)
    asked = ", ".join(name.lower() for name in CORS_ALLOW_HEADERS)
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.options(
            API_PREFIX + "/llm-settings",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": asked,
            },
        )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
        "last-event-id",
        "x-request-id",
    } <= allowed


async def test_a_preflight_for_another_header_is_refused() -> None:
    settings = make_settings(SHARED_STATE_CORS_ORIGINS=ORIGIN)
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.options(
            API_PREFIX,
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "GET",
                "access-control-request-headers": "x-something-else",
            },
        )

    assert response.status_code == 400


async def test_answers_expose_etag_and_request_id() -> None:
    settings = make_settings(SHARED_STATE_CORS_ORIGINS=ORIGIN)
    async with start_service(settings, [make_anythingllm()]) as service:
        fast = await service.client.get(API_PREFIX, headers={"origin": ORIGIN})
        routed = await service.client.get(API_PREFIX + "/status", headers={"origin": ORIGIN})

    for response in (fast, routed):
        exposed = {
            h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
        }
        assert exposed == {"etag", "x-request-id"}


@pytest.mark.parametrize("value", ["*", "http://a.example, *", " * "])
def test_a_wildcard_origin_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        make_settings(SHARED_STATE_CORS_ORIGINS=value)

    message = describe_invalid_settings(raised.value)
    assert message.startswith("invalid configuration: SHARED_STATE_CORS_ORIGINS: ")
    assert "'*' is not allowed" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("host", "token", "warns"),
    [
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("192.168.1.5", None, True),
        ("sidecar.internal", None, True),
        ("0.0.0.0", TOKEN, False),
        ("127.0.0.1", None, False),
        ("127.0.0.2", None, False),
        ("::1", None, False),
        ("localhost", None, False),
    ],
)
def test_an_open_bind_without_a_token_warns_at_start_up(
    host: str, token: str | None, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="shared_state"):
        create_app(make_settings(SHARED_STATE_HOST=host, SHARED_STATE_API_TOKEN=token))

    warnings = [r for r in caplog.records if "SHARED_STATE_API_TOKEN is not set" in r.message]
    assert len(warnings) == (1 if warns else 0)
    if token is None:
        assert is_loopback(host) is not warns


def test_serve_with_a_wildcard_origin_exits_2_with_one_line(tmp_path: Path) -> None:
    """`SHARED_STATE_CORS_ORIGINS=*` stops `serve` before it binds: one line, exit 2."""
    env = {"PATH": os.environ.get("PATH", ""), "SHARED_STATE_CORS_ORIGINS": "*"}
    done = subprocess.run(
        [sys.executable, "-m", "shared_state", "serve", "--port", "0"],
        env=env,
        cwd=tmp_path,  # no .env
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "shared-state: invalid configuration: SHARED_STATE_CORS_ORIGINS: '*' is not allowed: "
        "list the origins, e.g. https://app.example.com"
    ]
