"""Hostile write input (issue 6, items 4 and 6): what reaches an upstream is exactly what
was asked, or nothing; a 422 never echoes a large input; the schema says what is accepted."""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import GenerationMode

from shared_state import create_app
from shared_state.api import add_exception_handlers
from shared_state.api.schemas import LlmSettingsUpdate, UiSettingsUpdate
from tests.api.conftest import Service, make_settings
from tests.fakes import GatedUpstream

BASE = "/api/shared-state"
LLM = BASE + "/llm-settings"
UI = BASE + "/ui-settings"
JSON = {"content-type": "application/json"}

CONTROL_CHARACTERS = {
    "newline": "\n",
    "carriage-return": "\r",
    "nul": "\x00",
    "tab": "\t",
    "escape": "\x1b",
    "unit-separator": "\x1f",
    "del": "\x7f",
    "c1-next-line": "\x85",
    "c1-last": "\x9f",
    "lrm": "\u200e",
    "rlm": "\u200f",
    "lre": "\u202a",
    "rlo": "\u202e",
    "lri": "\u2066",
    "pdi": "\u2069",
    "arabic-letter-mark": "\u061c",
    "line-separator": "\u2028",
    "paragraph-separator": "\u2029",
}
ORDINARY_NAMES = ["gpt-4o", "llama3.1:8b", "meta/llama-3 70b", "模型-中文", " gpt-4o ", "é" * 100]


async def assert_refused(
    service: Service, upstreams: tuple[GatedUpstream, ...], path: str, content: bytes
) -> list[dict[str, Any]]:
    """POST `content`; expect a JSON 422 listing errors, and nothing written or changed."""
    before = (await service.client.get(BASE)).json()

    response = await service.client.post(path, content=content, headers=JSON)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    detail: list[dict[str, Any]] = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    assert [upstream.writes for upstream in upstreams] == [[], []]
    assert (await service.client.get(BASE)).json() == before
    return detail


@pytest.mark.parametrize("field", ["provider", "model"])
@pytest.mark.parametrize("char", CONTROL_CHARACTERS.values(), ids=CONTROL_CHARACTERS.keys())
async def test_name_with_a_control_character_is_refused(
    service: Service,
    anythingllm: GatedUpstream,
    librechat: GatedUpstream,
    field: str,
    char: str,
) -> None:
    """A provider or model holding a C0/C1/DEL/bidi/separator character never goes upstream."""
    body = json.dumps({field: f"gpt-4o{char}AuthToken=x"}).encode()

    detail = await assert_refused(service, (anythingllm, librechat), LLM, body)

    assert detail[0]["loc"] == ["body", field]
    assert f"U+{ord(char):04X}" in detail[0]["msg"]


@pytest.mark.parametrize("name", ORDINARY_NAMES)
async def test_ordinary_name_is_written_exactly_as_given(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream, name: str
) -> None:
    """Spaces, colons, slashes and non-Latin letters are names: written as is, never stripped."""
    response = await service.client.post(LLM, json={"model": name})

    assert response.status_code == 200
    assert response.json()["model"] == name
    assert anythingllm.writes == [{"model": name}]
    assert librechat.writes == [{"model": name}]


async def test_negative_zero_temperature_is_stored_and_sent_as_zero(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """`-0.0` is the zero everyone means: positive in the state and in every upstream write."""
    response = await service.client.post(LLM, content=b'{"temperature": -0.0}', headers=JSON)

    assert response.status_code == 200
    assert "-0" not in response.text
    assert response.json()["temperature"] == 0
    sent = [anythingllm.writes[0]["temperature"], librechat.writes[0]["temperature"]]
    assert sent == [0, 0]
    assert all(math.copysign(1.0, value) == 1.0 for value in sent)
    assert "-0" not in (await service.client.get(BASE + "/settings")).text


@pytest.mark.parametrize(
    ("path", "content"),
    [
        pytest.param(LLM, rb'{"provider": "\ud800"}', id="provider"),
        pytest.param(LLM, rb'{"model": "gpt-4o\udfff"}', id="model-trailing"),
        pytest.param(UI, rb'{"theme": "\ud800"}', id="theme"),
        pytest.param(UI, rb'{"\ud800": "dark"}', id="field-name"),
        pytest.param(LLM, rb'{"extra": "\udc00", "model": "m"}', id="unknown-field-value"),
    ],
)
async def test_lone_surrogate_is_a_json_422(
    service: Service,
    anythingllm: GatedUpstream,
    librechat: GatedUpstream,
    path: str,
    content: bytes,
) -> None:
    """A `\\ud800` escape (valid JSON, no valid text) gets a JSON 422, not a plain-text 500."""
    detail = await assert_refused(service, (anythingllm, librechat), path, content)

    assert all(error["loc"][0] == "body" for error in detail)


async def test_body_that_is_not_utf8_is_a_422(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """Bytes that are not UTF-8 are a body that is not JSON: 422 (FastAPI alone says 400)."""
    detail = await assert_refused(service, (anythingllm, librechat), LLM, b'{"model": "\xff"}')

    assert detail == [
        {
            "type": "json_invalid",
            "loc": ["body"],
            "msg": "JSON decode error",
            "ctx": {"error": "the body is not valid UTF-8"},
        }
    ]


async def test_out_of_range_422_is_fastapis_own_body(service: Service) -> None:
    """Small inputs are still echoed as FastAPI does (the README shows this answer)."""
    response = await service.client.post(LLM, json={"temperature": 3})

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "less_than_equal",
                "loc": ["body", "temperature"],
                "msg": "Input should be less than or equal to 2",
                "input": 3,
                "ctx": {"le": 2.0},
            }
        ]
    }


# --- 422 without echo, at the schema level (no body limit in front) -------------------------


def bare_app() -> FastAPI:
    """The write bodies and the error handlers in an app of their own: whatever body limit
    the service sets, tests reach the 422 handler with a megabyte; no lifespan to run."""
    app = FastAPI()
    add_exception_handlers(app)

    @app.post("/llm")
    async def llm(body: LlmSettingsUpdate) -> dict[str, Any]:
        return body.values()

    @app.post("/ui")
    async def ui(body: UiSettingsUpdate) -> dict[str, Any]:
        return body.values()

    return app


@pytest.fixture
async def bare() -> AsyncIterator[httpx.AsyncClient]:
    """A client of `bare_app()`, in-process."""
    transport = httpx.ASGITransport(app=bare_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


MEGABYTE = 1024 * 1024


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/llm", {"model": "x" * MEGABYTE}, id="long-string"),
        pytest.param("/llm", {"model": ["x" * 1024] * 1024}, id="array-for-a-string"),
        pytest.param("/ui", {"theme": {"nested": "y" * MEGABYTE}}, id="object-for-a-string"),
        pytest.param("/ui", {"z" * MEGABYTE: "dark"}, id="long-unknown-name"),
        pytest.param("/llm", {f"field{n:06d}": "v" * 10 for n in range(50_000)}, id="many-fields"),
    ],
)
async def test_a_megabyte_of_input_is_not_echoed(
    bare: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    """A 1 MB body gets a short 422: strings cut to 100 characters, containers left out,
    at most 20 errors."""
    content = json.dumps(body).encode()
    assert len(content) >= MEGABYTE

    response = await bare.post(path, content=content, headers=JSON)

    assert response.status_code == 422
    assert len(response.content) < 8 * 1024
    detail = response.json()["detail"]
    assert 1 <= len(detail) <= 20
    for error in detail:
        assert isinstance(error.get("input", ""), str | int | float | bool | None)
        assert all(len(str(part)) <= 101 for part in error["loc"])


async def test_a_long_string_is_cut_not_dropped(bare: httpx.AsyncClient) -> None:
    """The client still sees how its value begins: the first 100 characters and an ellipsis."""
    response = await bare.post("/llm", json={"model": "abc" * 1000})

    assert response.json()["detail"][0]["input"] == ("abc" * 34)[:100] + "…"


async def test_a_megabyte_that_is_not_json_gets_a_short_422(bare: httpx.AsyncClient) -> None:
    """Non-JSON bytes are not repeated back, however many there are."""
    response = await bare.post("/llm", content=b"<" * MEGABYTE, headers=JSON)

    assert response.status_code == 422
    assert len(response.content) < 1024
    assert response.json()["detail"][0]["type"] == "json_invalid"


# --- the published schema --------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    """The service's OpenAPI document (no lifespan needed to build it)."""
    document: dict[str, Any] = create_app(make_settings()).openapi()
    return document


def body_schema(openapi: dict[str, Any], path: str) -> dict[str, Any]:
    content = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    name = content["schema"]["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = openapi["components"]["schemas"][name]
    return schema


@pytest.mark.parametrize("path", [LLM, UI])
def test_schema_shows_plain_types_no_null_no_extras_not_empty(
    openapi: dict[str, Any], path: str
) -> None:
    """Both write bodies: object, no unknown fields, at least one field, no field nullable."""
    schema = body_schema(openapi, path)

    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["minProperties"] == 1
    assert "required" not in schema
    for prop in schema["properties"].values():
        assert "anyOf" not in prop
        assert "default" not in prop
        assert prop["type"] in {"string", "number", "integer"}
    assert "null" not in json.dumps(schema)


def test_llm_schema_states_the_limits(openapi: dict[str, Any]) -> None:
    """The LLM body's limits are in the schema as the server enforces them (contract §6)."""
    props = body_schema(openapi, LLM)["properties"]

    assert {k: props["provider"][k] for k in ("type", "minLength", "maxLength")} == {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
    }
    assert (props["model"]["minLength"], props["model"]["maxLength"]) == (1, 200)
    assert props["temperature"] | {"examples": None} == {
        "type": "number",
        "minimum": 0,
        "maximum": 2,
        "title": "Temperature",
        "examples": None,
    }
    assert (props["maxTokens"]["type"], props["maxTokens"]["minimum"]) == ("integer", 1)
    assert props["maxTokens"]["maximum"] == 2_000_000


def test_ui_schema_lists_the_choices(openapi: dict[str, Any]) -> None:
    """The UI body's fields are enums of exactly the accepted values."""
    props = body_schema(openapi, UI)["properties"]

    assert props["theme"]["enum"] == ["light", "dark", "system"]
    assert props["fontSize"]["enum"] == ["small", "medium", "large"]


@pytest.mark.parametrize("field", ["provider", "model"])
def test_schema_pattern_is_the_rule_the_server_applies(openapi: dict[str, Any], field: str) -> None:
    """The published pattern refuses every control character the server refuses, and
    accepts the ordinary names it accepts."""
    pattern = re.compile(body_schema(openapi, LLM)["properties"][field]["pattern"])

    for char in CONTROL_CHARACTERS.values():
        assert pattern.search(f"gpt{char}4o") is None
    for name in ORDINARY_NAMES:
        assert pattern.search(name) is not None


# --- the schema against the server, property-based ----------------------------------------

conformance = schemathesis.openapi.from_asgi("/openapi.json", bare_app())
conformance.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=100,
    deterministic=True,  # the same cases every run
    database="none",
)


@conformance.parametrize()
def test_server_accepts_what_the_schema_allows_and_refuses_the_rest(case: Any) -> None:
    """Generated bodies: every schema-valid one is accepted, every schema-violating one is
    a 422 (never a 500), and every answer matches its documented shape."""
    case.call_and_validate()
