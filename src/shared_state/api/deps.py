"""Where the API layer finds the running service: the only module that knows.

Every dependency here is `async def`: FastAPI runs a plain `def` dependency in a worker
thread, a thread hop per request on the hottest path.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from shared_state.errors import Unauthorized
from shared_state.service.runtime import Runtime
from shared_state.state.manager import StateManager


def runtime_of(scope: Scope) -> Runtime | None:
    """The runtime of the app serving `scope` (`app.state.shared_state`), or None before
    the lifespan has put it there."""
    app = scope.get("app")
    runtime: Runtime | None = getattr(getattr(app, "state", None), "shared_state", None)
    return runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.shared_state
    return runtime


async def get_manager(runtime: Annotated[Runtime, Depends(get_runtime)]) -> StateManager:
    return runtime.manager


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
StateManagerDep = Annotated[StateManager, Depends(get_manager)]

TOKEN_REQUIRED = "Send the API token as 'Authorization: Bearer <token>'."  # noqa: S105 (a sentence)

_bearer = HTTPBearer(auto_error=False, description="SHARED_STATE_API_TOKEN, when it is set")


async def require_api_token(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With SHARED_STATE_API_TOKEN set, every request needs `Authorization: Bearer <token>`."""
    expected = runtime.settings.api_token
    if expected is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized(TOKEN_REQUIRED)
