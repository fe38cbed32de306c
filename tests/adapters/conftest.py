"""Shared wiring for the adapter tests: real `httpx.AsyncClient`s whose wire is faked by
respx, a retry policy without waits, and the two bizzy adapters built on top."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from shared_state.adapters.anythingllm_bizzy import AnythingLLMBizzy
from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.adapters.librechat_bizzy import LibreChatBizzy

ANYTHINGLLM_URL = "http://anythingllm.test"
LIBRECHAT_URL = "http://librechat.test"
API_URL = "http://api.test"
AUTH_HEADERS = {"Authorization": "Bearer k"}
ATTEMPTS = 3


@pytest.fixture
def retry_policy() -> RetryPolicy:
    """Three attempts and no waits, so retries cost no time."""
    return RetryPolicy(attempts=ATTEMPTS, wait_initial_s=0, wait_max_s=0, timeout_s=5)


@pytest.fixture
def api_wire() -> Iterator[respx.MockRouter]:
    """The faked wire of a generic JSON upstream at `API_URL`."""
    with respx.mock(base_url=API_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def api(retry_policy: RetryPolicy) -> AsyncIterator[JsonApi]:
    """A `JsonApi` over a client of `API_URL`."""
    async with httpx.AsyncClient(base_url=API_URL, headers=AUTH_HEADERS) as client:
        yield JsonApi(client, source="anythingllm", retry=retry_policy)


@pytest.fixture
def anythingllm_wire() -> Iterator[respx.MockRouter]:
    """The faked wire of AnythingLLM."""
    with respx.mock(base_url=ANYTHINGLLM_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def anythingllm(retry_policy: RetryPolicy) -> AsyncIterator[AnythingLLMBizzy]:
    """The bizzy AnythingLLM adapter over a client that sends `Bearer k`."""
    async with httpx.AsyncClient(base_url=ANYTHINGLLM_URL, headers=AUTH_HEADERS) as client:
        yield AnythingLLMBizzy(JsonApi(client, source="anythingllm", retry=retry_policy))


@pytest.fixture
def librechat_wire() -> Iterator[respx.MockRouter]:
    """The faked wire of LibreChat."""
    with respx.mock(base_url=LIBRECHAT_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def librechat(retry_policy: RetryPolicy) -> AsyncIterator[LibreChatBizzy]:
    """The bizzy LibreChat adapter over a client that sends `Bearer k`."""
    async with httpx.AsyncClient(base_url=LIBRECHAT_URL, headers=AUTH_HEADERS) as client:
        yield LibreChatBizzy(JsonApi(client, source="librechat", retry=retry_policy))
