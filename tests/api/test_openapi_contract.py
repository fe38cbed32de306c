"""The whole API against its own `/openapi.json` (issue 7, tests): schemathesis calls every
operation of the standalone app in-process, with a fixed seed and a bounded number of
examples, and checks that no answer is a 5xx, that every status, content type and body
the server answers is the one the schema documents.

The endless event stream is left out of the generated calls (schemathesis would read it
until its event limit); its documented refusals (422 for an unknown section, 401 without
the token) are checked by hand below.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared_state import create_app
from tests.api.conftest import make_anythingllm, make_librechat, make_settings, start_service

TOKEN = "schema-test-token"
EVENTS = "/api/shared-state/events"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def standalone_app(**env: Any) -> FastAPI:
    """`create_app` with the two fake upstreams (gates open), as a user would run it."""
    return create_app(make_settings(**env), upstreams=[make_anythingllm(), make_librechat()])


def contract(app: FastAPI, **load: Any) -> BaseSchema:
    """The app's own schema (`load`: how to ask for it), every operation but the event
    stream, the same bounded cases every run."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, **load).exclude(path=EVENTS)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=8,
        deterministic=True,  # the same cases every run (a fixed seed)
        database="none",
    )
    return schema


open_api = contract(standalone_app())
closed_api = contract(standalone_app(SHARED_STATE_API_TOKEN=TOKEN))
# schemathesis sends `Host: testserver`, so here the edge refuses every API call.
hosted_api = contract(
    standalone_app(SHARED_STATE_ALLOWED_HOSTS="sidecar.example"),
    headers={"Host": "sidecar.example"},
)
# Every generated write body is larger than this.
limited_api = contract(standalone_app(SHARED_STATE_MAX_BODY_BYTES=4))


@open_api.parametrize()
def test_every_answer_is_documented_without_a_token(case: Any) -> None:
    """No token configured: every generated call gets a documented status, content type
    and body, never a 5xx."""
    case.call_and_validate(checks=CHECKS)


@closed_api.parametrize()
def test_every_answer_is_documented_with_the_token(case: Any) -> None:
    """`SHARED_STATE_API_TOKEN` set and sent: the same promises hold."""
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@closed_api.parametrize()
def test_every_refusal_without_the_token_is_documented(case: Any) -> None:
    """`SHARED_STATE_API_TOKEN` set, not sent: the API's 401 (and the open probes' answers)
    are documented, with `WWW-Authenticate: Bearer` on every 401."""
    response = case.call_and_validate(checks=CHECKS)

    if case.path.startswith("/api/shared-state"):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == ["Bearer"]


def documented_json_statuses(app: FastAPI, path: str) -> set[int]:
    """The statuses `path`'s GET documents with an `application/json` body."""
    responses = app.openapi()["paths"][path]["get"]["responses"]
    return {
        int(status)
        for status, answer in responses.items()
        if "application/json" in answer.get("content", {})
    }


@pytest.mark.parametrize(
    ("env", "headers", "query", "status", "code"),
    [
        pytest.param({}, {}, "?sections=user,nope", 422, "unknown_section", id="unknown-section"),
        pytest.param({}, {}, "?sections=" + "user," * 50, 422, None, id="fastapis-own-422"),
        pytest.param({"SHARED_STATE_API_TOKEN": TOKEN}, {}, "", 401, "unauthorized", id="no-token"),
        pytest.param(
            {"SHARED_STATE_API_TOKEN": TOKEN},
            {"Authorization": f"Bearer {TOKEN}"},
            "?sections=nope",
            422,
            "unknown_section",
            id="token-and-unknown-section",
        ),
    ],
)
async def test_event_stream_refusals_are_documented(
    env: dict[str, Any], headers: dict[str, str], query: str, status: int, code: str | None
) -> None:
    """The event stream's refusals answer at once, as JSON, with a status its schema
    documents as JSON (not as `text/event-stream`, the media type of its 200)."""
    async with start_service(
        make_settings(**env), [make_anythingllm(), make_librechat()]
    ) as service:
        response = await service.client.get(EVENTS + query, headers=headers)

        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        if code is None:
            assert isinstance(response.json()["detail"], list)  # FastAPI's own shape
        else:
            assert response.json()["code"] == code
        assert status in documented_json_statuses(service.app, EVENTS)


@hosted_api.parametrize()
def test_every_refusal_of_an_unknown_host_is_documented(case: Any) -> None:
    """`SHARED_STATE_ALLOWED_HOSTS` without the `Host` sent: the API's 400 `invalid_host`
    is documented (the probes answer any `Host`)."""
    response = case.call_and_validate(checks=CHECKS)

    if case.path.startswith("/api/shared-state"):
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_host"


@limited_api.parametrize()
def test_every_refusal_of_a_large_body_is_documented(case: Any) -> None:
    """A body beyond `SHARED_STATE_MAX_BODY_BYTES`: the 413 `body_too_large` is documented."""
    response = case.call_and_validate(checks=CHECKS)

    if case.body is not None and len(response.request.body or b"") > 4:
        assert response.status_code == 413
        assert response.json()["code"] == "body_too_large"
