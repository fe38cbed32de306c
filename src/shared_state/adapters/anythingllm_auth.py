"""AnythingLLM's user login (multi-user mode): the JWT that `/api/system/refresh-user` needs.

The developer API key carries no user identity; with ANYTHINGLLM_USERNAME/PASSWORD set,
the sidecar logs in with `POST /api/request-token` and caches the JWT (30 days by
default; there is no refresh endpoint), logging in again when it is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pydantic import TypeAdapter

from shared_state.adapters.http import JsonApi
from shared_state.adapters.wire import WireModel
from shared_state.errors import UpstreamAuthError, UpstreamStatusError


class _TokenAnswer(WireModel):
    valid: bool | None = None
    token: str | None = None
    message: str | None = None


_TOKEN_ANSWER = TypeAdapter(_TokenAnswer)
_LOGIN_PATH = "/api/request-token"


class AnythingLLMLogin:
    """A `Credentials` for AnythingLLM's internal API: a cached JWT from a user login."""

    def __init__(self, api: JsonApi, *, username: str, password: str) -> None:
        self._api = api  # without credentials of its own
        self._username = username
        self._password = password
        self._token: str | None = None
        self._lock = asyncio.Lock()

    async def headers(self) -> Mapping[str, str]:
        async with self._lock:
            if self._token is None:
                self._token = await self._log_in()
            return {"Authorization": f"Bearer {self._token}"}

    async def reject(self) -> None:
        self._token = None

    async def _log_in(self) -> str:
        body = {"username": self._username, "password": self._password}
        response = await self._api.send("POST", _LOGIN_PATH, json=body)
        if response.status_code not in (200, 401, 403):
            raise UpstreamStatusError(
                self._api.source,
                f"POST {_LOGIN_PATH} answered HTTP {response.status_code}",
                status=response.status_code,
            )
        answer = self._api.decode(response, "POST", _LOGIN_PATH, _TOKEN_ANSWER)
        if not answer.valid or not answer.token:
            # AnythingLLM's messages are fixed texts ("[001] Invalid login credentials.").
            reason = (answer.message or "login refused")[:200]
            raise UpstreamAuthError(
                self._api.source, f"login as ANYTHINGLLM_USERNAME failed: {reason}"
            )
        return answer.token
