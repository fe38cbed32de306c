"""The answers the edge and the error handlers give on every route, as OpenAPI
`responses=` entries, so that `/openapi.json` documents every status the server really
sends (`tests/api/test_openapi_contract.py` holds it to that).

The edge (`api/edge.py`) answers before any route runs: 400 `invalid_host` with
`SHARED_STATE_ALLOWED_HOSTS`, 401 without the token, 413 for a body beyond
`SHARED_STATE_MAX_BODY_BYTES`. FastAPI cannot see those, so the routers declare them.
"""

from __future__ import annotations

from typing import Any, Final

from shared_state.api.schemas import ErrorAnswer

Responses = dict[int | str, dict[str, Any]]

UNAUTHORIZED: Final[Responses] = {
    401: {
        "model": ErrorAnswer,
        "description": "Missing or wrong API token (`unauthorized`)",
        "headers": {
            "WWW-Authenticate": {
                "description": "Always `Bearer`",
                "required": True,
                "schema": {"type": "string", "enum": ["Bearer"]},
            }
        },
    }
}

EDGE_REFUSALS: Final[Responses] = {
    400: {
        "model": ErrorAnswer,
        "description": "The `Host` header is not in `SHARED_STATE_ALLOWED_HOSTS` (`invalid_host`)",
    },
    413: {
        "model": ErrorAnswer,
        "description": "The body is larger than `SHARED_STATE_MAX_BODY_BYTES` (`body_too_large`)",
    },
}
"""What every route under `/api/shared-state` may answer before it runs (with the 401)."""

BODY_TOO_LARGE: Final[Responses] = {413: EDGE_REFUSALS[413]}
"""The probes answer any `Host` and need no token, but their bodies are limited too."""


def json_content(responses: Responses) -> Responses:
    """`responses` with each model spelled out as `application/json` content: FastAPI puts
    a model under the route's own media type, which is wrong for the JSON errors of a
    route that streams `text/event-stream`. The schemas are referenced by name (the API
    router's routes put them in `components`)."""
    spelled: Responses = {}
    for status, response in responses.items():
        entry = {key: value for key, value in response.items() if key != "model"}
        model = response.get("model")
        if model is not None:
            ref = {"$ref": f"#/components/schemas/{model.__name__}"}
            entry["content"] = {"application/json": {"schema": ref}}
        spelled[status] = entry
    return spelled
