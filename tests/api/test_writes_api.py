"""Tests of the write endpoints (contract §6): write-through, rollback, validation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared_state.domain.models import LlmValues
from shared_state.errors import UpstreamUnavailable
from tests.api.conftest import Service, make_anythingllm, make_settings, start_service
from tests.fakes import GatedUpstream

BASE = "/api/shared-state"
LLM = BASE + "/llm-settings"
UI = BASE + "/ui-settings"
OLD_ALLM_LLM = LlmValues(provider="openai", model="gpt-4o", temperature=0.7, max_tokens=4096)
NEW_LLM = {"provider": "mistral", "model": "mistral-large", "temperature": 0.2, "maxTokens": 8192}


async def current_version(service: Service) -> int:
    version: int = (await service.client.get(BASE + "/status")).json()["version"]
    return version


async def test_llm_write_accepted_by_all_answers_the_new_section(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """All upstreams accept: 200 with the new `settings.llm`, and a version one higher."""
    response = await service.client.post(LLM, json=NEW_LLM)

    assert response.status_code == 200
    assert response.json() == NEW_LLM
    assert await current_version(service) == 2
    settings = (await service.client.get(BASE + "/settings")).json()
    assert settings["llm"] == NEW_LLM


async def test_llm_write_sends_each_upstream_only_its_fields(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """Each upstream is written only the fields it stores, snake_case."""
    await service.client.post(LLM, json=NEW_LLM)

    assert anythingllm.writes == [
        {"provider": "mistral", "model": "mistral-large", "temperature": 0.2, "max_tokens": 8192}
    ]
    assert librechat.writes == [{"model": "mistral-large", "temperature": 0.2, "max_tokens": 8192}]


async def test_ui_write_goes_only_to_the_upstream_that_stores_ui(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """A UI write reaches LibreChat only and answers the new `settings.ui`."""
    response = await service.client.post(UI, json={"theme": "light"})

    assert response.status_code == 200
    assert response.json() == {"theme": "light", "fontSize": "large"}
    assert anythingllm.writes == []
    assert librechat.writes == [{"theme": "light"}]
    assert await current_version(service) == 2


async def test_failed_write_rolls_back_and_answers_502(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """One upstream fails: 502 with results, the accepting one is put back, state unchanged."""
    librechat.fail_writes = UpstreamUnavailable("librechat", "timeout")
    before = (await service.client.get(BASE)).json()

    response = await service.client.post(LLM, json=NEW_LLM)

    assert response.status_code == 502
    assert response.json() == {
        "detail": "The write failed on librechat; the state was not changed.",
        "code": "upstream_write_failed",
        "results": {"anythingllm": "rolled_back", "librechat": "failed"},
    }
    assert anythingllm.snapshot.llm == OLD_ALLM_LLM
    assert (await service.client.get(BASE)).json() == before
    assert before["version"] == 1


async def test_failed_rollback_answers_rollback_failed(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """An accepting upstream that refuses the rollback is reported `rollback_failed`."""
    anythingllm.fail_rollbacks = True
    librechat.fail_writes = UpstreamUnavailable("librechat", "timeout")

    response = await service.client.post(LLM, json={"temperature": 1.5})

    assert response.status_code == 502
    assert response.json()["code"] == "upstream_write_failed"
    assert response.json()["results"] == {"anythingllm": "rollback_failed", "librechat": "failed"}
    assert await current_version(service) == 1
    settings = (await service.client.get(BASE + "/settings")).json()
    assert settings["llm"]["temperature"] == 0.7


async def test_upstream_without_the_fields_is_skipped(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """An upstream that stores none of the written fields is `skipped` and not called."""
    librechat.fail_writes = UpstreamUnavailable("librechat", "timeout")

    response = await service.client.post(UI, json={"fontSize": "small"})

    assert response.status_code == 502
    assert response.json()["results"] == {"anythingllm": "skipped", "librechat": "failed"}
    assert anythingllm.writes == []
    assert (await service.client.get(BASE + "/settings")).json()["ui"] == {
        "theme": "dark",
        "fontSize": "large",
    }


async def test_unconfigured_upstream_is_reported_skipped() -> None:
    """With LibreChat not configured, a failed write reports it `skipped`."""
    anythingllm = make_anythingllm()
    anythingllm.fail_writes = UpstreamUnavailable("anythingllm", "connection refused")
    async with start_service(make_settings(), [anythingllm]) as service:
        response = await service.client.post(LLM, json={"model": "gpt-4.1"})
        version = await current_version(service)

    assert response.status_code == 502
    assert response.json() == {
        "detail": "The write failed on anythingllm; the state was not changed.",
        "code": "upstream_write_failed",
        "results": {"anythingllm": "failed", "librechat": "skipped"},
    }
    assert version == 1


async def test_field_no_upstream_stores_is_kept_by_the_service() -> None:
    """A UI write with only AnythingLLM configured (no UI fields) is kept by the service."""
    anythingllm = make_anythingllm()
    async with start_service(make_settings(), [anythingllm]) as service:
        response = await service.client.post(UI, json={"theme": "dark", "fontSize": "small"})
        settings = (await service.client.get(BASE + "/settings")).json()
        after_sync = (await service.client.get(BASE + "/settings?refresh=true")).json()
        version = await current_version(service)

    assert response.status_code == 200
    assert response.json() == {"theme": "dark", "fontSize": "small"}
    assert settings["ui"] == {"theme": "dark", "fontSize": "small"}
    assert after_sync["ui"] == {"theme": "dark", "fontSize": "small"}
    assert anythingllm.writes == []
    assert version == 2


INVALID_LLM: list[Any] = [
    pytest.param({}, id="empty-object"),
    pytest.param({"colour": "red"}, id="unknown-field"),
    pytest.param({"temperature": 0.5, "colour": "red"}, id="unknown-beside-valid"),
    pytest.param({"temperature": "0.5"}, id="temperature-string"),
    pytest.param({"temperature": True}, id="temperature-bool"),
    pytest.param({"maxTokens": 4096.5}, id="maxTokens-fraction"),
    pytest.param({"maxTokens": "4096"}, id="maxTokens-string"),
    pytest.param({"temperature": -0.1}, id="temperature-below-0"),
    pytest.param({"temperature": 2.1}, id="temperature-above-2"),
    pytest.param({"maxTokens": 0}, id="maxTokens-0"),
    pytest.param({"maxTokens": 2_000_001}, id="maxTokens-above-2000000"),
    pytest.param({"provider": ""}, id="provider-empty"),
    pytest.param({"provider": "p" * 101}, id="provider-101-chars"),
    pytest.param({"model": "m" * 201}, id="model-201-chars"),
    pytest.param({"model": None}, id="model-null"),
    pytest.param({"temperature": None}, id="temperature-null"),
    pytest.param({"max_tokens": 4096}, id="snake-case-max_tokens"),
    pytest.param({"provider": 7}, id="provider-number"),
    pytest.param({"temperature": [0.5]}, id="temperature-list"),
    pytest.param([{"temperature": 0.5}], id="array-body"),
]
INVALID_UI: list[Any] = [
    pytest.param({}, id="empty-object"),
    pytest.param({"colour": "red"}, id="unknown-field"),
    pytest.param({"theme": "blue"}, id="theme-blue"),
    pytest.param({"fontSize": "huge"}, id="fontSize-huge"),
    pytest.param({"theme": None}, id="theme-null"),
    pytest.param({"theme": 1}, id="theme-number"),
    pytest.param({"font_size": "small"}, id="snake-case-font_size"),
    pytest.param([{"theme": "dark"}], id="array-body"),
]


async def assert_rejected_and_unchanged(
    service: Service,
    upstreams: tuple[GatedUpstream, ...],
    path: str,
    **request: Any,
) -> None:
    before = (await service.client.get(BASE)).json()

    response = await service.client.post(path, **request)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    assert all(error["loc"][0] == "body" for error in detail)
    assert (await service.client.get(BASE)).json() == before
    assert before["version"] == 1
    assert [upstream.writes for upstream in upstreams] == [[], []]


@pytest.mark.parametrize("body", INVALID_LLM)
async def test_invalid_llm_settings_get_422_and_change_nothing(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream, body: Any
) -> None:
    """An invalid LLM settings body answers FastAPI's 422 and writes nothing."""
    await assert_rejected_and_unchanged(
        service,
        (anythingllm, librechat),
        LLM,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize("body", INVALID_UI)
async def test_invalid_ui_settings_get_422_and_change_nothing(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream, body: Any
) -> None:
    """An invalid UI settings body answers FastAPI's 422 and writes nothing."""
    await assert_rejected_and_unchanged(
        service,
        (anythingllm, librechat),
        UI,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize("path", [LLM, UI])
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"theme": "dark"', id="truncated-json"),
        pytest.param(b"", id="no-body"),
    ],
)
async def test_body_that_is_not_json_gets_422(
    service: Service,
    anythingllm: GatedUpstream,
    librechat: GatedUpstream,
    path: str,
    content: bytes,
) -> None:
    """A body that is not a JSON document answers 422 and writes nothing."""
    await assert_rejected_and_unchanged(
        service,
        (anythingllm, librechat),
        path,
        content=content,
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize(
    ("path", "content"),
    [
        pytest.param(LLM, b'{"temperature": 1e400}', id="temperature-1e400"),
        pytest.param(LLM, b'{"maxTokens": 1e400}', id="maxTokens-1e400"),
        pytest.param(LLM, b'{"temperature": NaN}', id="temperature-NaN"),
        pytest.param(LLM, b'{"temperature": -Infinity}', id="temperature-minus-Infinity"),
        pytest.param(UI, b'{"theme": NaN}', id="theme-NaN"),
    ],
)
async def test_non_finite_number_gets_422_not_500(
    service: Service,
    anythingllm: GatedUpstream,
    librechat: GatedUpstream,
    path: str,
    content: bytes,
) -> None:
    """A number that parses to infinity or NaN answers 422 like any other invalid value."""
    # What a real client sees: an error in the app becomes a 500 answer, not an exception.
    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            path, content=content, headers={"content-type": "application/json"}
        )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:1] == ["body"]
    assert anythingllm.writes == []
    assert librechat.writes == []
    assert await current_version(service) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"temperature": 0}, {"temperature": 0.0}, id="temperature-0"),
        pytest.param({"temperature": 2}, {"temperature": 2.0}, id="temperature-2"),
        pytest.param({"temperature": 1}, {"temperature": 1.0}, id="temperature-integer-1"),
        pytest.param({"maxTokens": 1}, {"maxTokens": 1}, id="maxTokens-1"),
        pytest.param({"maxTokens": 2_000_000}, {"maxTokens": 2_000_000}, id="maxTokens-2000000"),
        pytest.param({"provider": "p" * 100}, {"provider": "p" * 100}, id="provider-100-chars"),
        pytest.param({"model": "m" * 200}, {"model": "m" * 200}, id="model-200-chars"),
        pytest.param({"model": "x"}, {"model": "x"}, id="model-1-char"),
    ],
)
async def test_valid_llm_edges_are_accepted(
    service: Service, anythingllm: GatedUpstream, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Values on the edges of the allowed ranges are written and answered."""
    response = await service.client.post(LLM, json=body)

    assert response.status_code == 200
    answer = response.json()
    assert {name: answer[name] for name in expected} == expected
    assert len(anythingllm.writes) == 1
    assert list(anythingllm.writes[0].values()) == list(expected.values())
    assert await current_version(service) == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"theme": "light"}, {"theme": "light", "fontSize": "large"}),
        ({"theme": "system"}, {"theme": "system", "fontSize": "large"}),
        ({"fontSize": "small"}, {"theme": "dark", "fontSize": "small"}),
        ({"theme": "light", "fontSize": "medium"}, {"theme": "light", "fontSize": "medium"}),
    ],
)
async def test_valid_ui_settings_are_accepted(
    service: Service, librechat: GatedUpstream, body: dict[str, str], expected: dict[str, str]
) -> None:
    """Every allowed theme and font size is written and answered."""
    response = await service.client.post(UI, json=body)

    assert response.status_code == 200
    assert response.json() == expected
    assert len(librechat.writes) == 1
