"""`SHARED_STATE_MAX_BODY_BYTES`: enforced while reading, after the token, before parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.api.conftest import make_anythingllm, make_librechat, make_settings, start_service

BASE = "/api/shared-state"
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 1024
JSON = {"content-type": "application/json"}


def padded_write(size: int) -> bytes:
    """A valid-looking UI write padded with spaces to `size` bytes."""
    body = json.dumps({"theme": "light"}).encode()
    return body + b" " * (size - len(body))


async def in_chunks(body: bytes, chunk: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_limit_is_refused_and_nothing_written(chunked: bool) -> None:
    """A body one byte over the limit gets 413 `body_too_large` and no upstream write."""
    librechat = make_librechat()
    settings = make_settings(SHARED_STATE_MAX_BODY_BYTES=LIMIT)
    async with start_service(settings, [make_anythingllm(), librechat]) as service:
        body = padded_write(LIMIT + 1)
        response = await service.client.post(
            BASE + "/ui-settings",
            content=in_chunks(body) if chunked else body,
            headers={"content-type": "application/json"},
        )
        version = service.runtime.manager.state.version

    assert response.status_code == 413
    assert response.json() == {
        "detail": f"The request body is larger than {LIMIT} bytes (SHARED_STATE_MAX_BODY_BYTES).",
        "code": "body_too_large",
    }
    assert response.headers["connection"] == "close"
    assert librechat.writes == []
    assert version == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_at_the_limit_is_written(chunked: bool) -> None:
    """A body of exactly the limit is parsed and written as usual."""
    librechat = make_librechat()
    settings = make_settings(SHARED_STATE_MAX_BODY_BYTES=LIMIT)
    async with start_service(settings, [make_anythingllm(), librechat]) as service:
        body = padded_write(LIMIT)
        response = await service.client.post(
            BASE + "/ui-settings",
            content=in_chunks(body) if chunked else body,
            headers={"content-type": "application/json"},
        )

    assert response.status_code == 200
    assert response.json()["theme"] == "light"
    assert librechat.writes == [{"theme": "light"}]


async def test_unauthenticated_oversized_body_gets_401_not_413() -> None:
    """The token is checked first: without it, an oversized body is 401, unread."""
    settings = make_settings(SHARED_STATE_MAX_BODY_BYTES=LIMIT, SHARED_STATE_API_TOKEN=TOKEN)
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.post(BASE + "/llm-settings", content=b"x" * (LIMIT * 10))
        authorised = await service.client.post(
            BASE + "/llm-settings", content=b"x" * (LIMIT * 10), headers=AUTH
        )

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert authorised.status_code == 413


async def test_oversized_body_is_refused_outside_the_api_too() -> None:
    """The limit holds for every path, not only the API's (here: an unknown one)."""
    settings = make_settings(SHARED_STATE_MAX_BODY_BYTES=LIMIT)
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.post("/nowhere", content=b"x" * (LIMIT + 1))

    assert response.status_code == 413


async def test_default_limit_is_64_kib() -> None:
    """Without configuration, 64 KiB is accepted and one byte more is not."""
    settings = make_settings()
    async with start_service(settings, [make_anythingllm(), make_librechat()]) as service:
        at_limit = await service.client.post(
            BASE + "/ui-settings", content=padded_write(64 * 1024), headers=JSON
        )
        over = await service.client.post(
            BASE + "/ui-settings", content=padded_write(64 * 1024 + 1), headers=JSON
        )

    assert settings.max_body_bytes == 64 * 1024
    assert at_limit.status_code == 200
    assert over.status_code == 413
