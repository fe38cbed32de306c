"""The Python client of the shared-state service (contract §9), for Python frontends.

`SharedStateClient` (httpx.Client) and `AsyncSharedStateClient` (httpx.AsyncClient) read
and write `/api/shared-state` with the service's own typed models, keep each read's
ETag (a 304 gives back the same object), raise `SharedStateClientError` for every error,
and follow the live event stream with `events()`, resuming it after a dropped connection:

    with SharedStateClient("http://127.0.0.1:8080", token) as client:
        settings = client.get_settings()
        client.update_llm_settings(model="gpt-4o-mini", max_tokens=8192, if_match=True)
        for event in client.events(sections=["settings"]):
            print(event.version, event.type)
"""

from shared_state.client._base import ClientOptions
from shared_state.client._core import LlmFields, UiFields
from shared_state.client.aio import AsyncSharedStateClient
from shared_state.client.errors import SharedStateClientError
from shared_state.client.events import ClientEvent
from shared_state.client.sync import SharedStateClient

__all__ = [
    "AsyncSharedStateClient",
    "ClientEvent",
    "ClientOptions",
    "LlmFields",
    "SharedStateClient",
    "SharedStateClientError",
    "UiFields",
]
