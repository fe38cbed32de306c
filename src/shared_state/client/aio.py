"""`AsyncSharedStateClient`: the asyncio Python client (httpx.AsyncClient) of the service.

The same operations as `SharedStateClient` (both run `ClientCore`'s), awaited; this
module only does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Collection
from types import TracebackType
from typing import TypeVar, Unpack

import httpx
from httpx_sse import EventSource

from shared_state.api.schemas import StatusAnswer, SyncAnswer
from shared_state.client._base import ClientBase, ClientOptions
from shared_state.client._core import (
    DEFAULT_TIMEOUT_S,
    ITEM,
    ITEMS,
    SETTINGS,
    STATE,
    STATUS,
    USER,
    Answer,
    BodyReader,
    Call,
    LlmFields,
    Op,
    UiFields,
)
from shared_state.client.events import (
    AsyncGuardedStream,
    ClientEvent,
    EventStream,
    Reconnect,
    guarded,
    reason_for,
)
from shared_state.domain.items import ItemList
from shared_state.domain.models import (
    Item,
    LlmSettings,
    SharedState,
    StateSettings,
    UiSettings,
    User,
)

T = TypeVar("T")


class AsyncSharedStateClient(ClientBase[httpx.AsyncClient]):
    """`SharedStateClient` for asyncio: the same methods, as coroutines, and `events()`
    as an async iterator. Use it with `async with`, or call `aclose()`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        owns = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(timeout=timeout, transport=transport)
        super().__init__(
            base_url, token, http_client, owns_http_client=owns, timeout=timeout, **options
        )

    async def __aenter__(self) -> AsyncSharedStateClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (of the httpx client this client made)."""
        if self._owns_http_client:
            await self._http.aclose()

    # --- reads (see SharedStateClient) ------------------------------------------------

    async def get_state(self, *, refresh: bool = False) -> SharedState:
        return await self._run(self._core.read("", STATE, refresh=refresh))

    async def get_user(self, *, refresh: bool = False) -> User | None:
        return await self._run(self._core.read("/user", USER, refresh=refresh))

    async def get_settings(self, *, refresh: bool = False) -> StateSettings:
        return await self._run(self._core.read("/settings", SETTINGS, refresh=refresh))

    async def get_workspaces(self, *, refresh: bool = False) -> ItemList:
        return await self._run(self._core.read("/workspaces", ITEMS, refresh=refresh))

    async def get_conversations(self, *, refresh: bool = False) -> ItemList:
        return await self._run(self._core.read("/conversations", ITEMS, refresh=refresh))

    async def get_workspace(self, id_or_slug: str | int) -> Item:
        path = self._core.item_path("workspaces", id_or_slug)
        return await self._run(self._core.read(path, ITEM))

    async def get_conversation(self, conversation_id: str) -> Item:
        path = self._core.item_path("conversations", conversation_id)
        return await self._run(self._core.read(path, ITEM))

    async def get_status(self) -> StatusAnswer:
        return await self._run(self._core.read("/status", STATUS))

    # --- writes -----------------------------------------------------------------------

    async def update_llm_settings(
        self, *, if_match: str | bool | None = None, **fields: Unpack[LlmFields]
    ) -> LlmSettings:
        written: LlmSettings = await self._run(self._core.write("llm", fields, if_match))
        return written

    async def update_ui_settings(
        self, *, if_match: str | bool | None = None, **fields: Unpack[UiFields]
    ) -> UiSettings:
        written: UiSettings = await self._run(self._core.write("ui", fields, if_match))
        return written

    async def sync(self) -> SyncAnswer:
        return await self._run(self._core.sync())

    # --- events -----------------------------------------------------------------------

    async def events(
        self, sections: Collection[str] | None = None, last_event_id: int | None = None
    ) -> AsyncGenerator[ClientEvent, None]:
        """As `SharedStateClient.events`. Leaving an `async for` early leaves the
        generator to the garbage collector: wrap it in `contextlib.aclosing()` to close
        its connection at once."""
        stream = self._event_stream(sections, last_event_id)
        while True:
            try:
                # aclosing: leaving early closes this connection now, not when collected.
                async with contextlib.aclosing(self._follow(stream)) as events:
                    async for event in events:
                        yield event
                reason = "ended"
            except (httpx.TransportError, Reconnect) as exc:
                reason = reason_for(exc)
            await asyncio.sleep(stream.dropped(reason))

    async def _follow(self, stream: EventStream) -> AsyncGenerator[ClientEvent, None]:
        call = stream.call()
        response = await self._http.send(self._request(call, stream.timeout), stream=True)
        try:
            body = b"" if response.status_code == 200 else await self._read(call, response)
            stream.opened(response.status_code, response.headers, body)
            limit = self._core.max_answer_bytes
            source = EventSource(guarded(response, AsyncGuardedStream(response, limit)))
            async for sse in source.aiter_sse():
                event = stream.accept(sse)
                if event is not None:
                    yield event
        finally:
            await response.aclose()

    # --- running operations -----------------------------------------------------------

    async def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, float):
                    await asyncio.sleep(step)
                    step = op.send(None)
                    continue
                try:
                    answer = await self._exchange(step)
                except httpx.TransportError as exc:
                    step = op.throw(exc)
                else:
                    step = op.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result

    async def _exchange(self, call: Call) -> Answer:
        response = await self._http.send(self._request(call), stream=True)
        try:
            return Answer(response.status_code, response.headers, await self._read(call, response))
        finally:
            await response.aclose()

    async def _read(self, call: Call, response: httpx.Response) -> bytes:
        reader = BodyReader(
            self._core.max_answer_bytes, response.status_code, response.headers, call.what
        )
        async for chunk in response.aiter_bytes():
            reader.add(chunk)
        return reader.body()
