"""`SharedStateClient`: the synchronous Python client (httpx.Client) of the service.

Every method runs one operation of `ClientCore` (requests, ETags, retries and errors are
written there, once); this module only does the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Generator, Iterator
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
    ClientEvent,
    EventStream,
    GuardedStream,
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


class SharedStateClient(ClientBase[httpx.Client]):
    """A synchronous client of `/api/shared-state`, typed with the service's own models.

    Reads are ETag-aware: the client keeps each path's last answer and sends its ETag
    as `If-None-Match`; a 304 gives back the very same object. Every error answer, and
    every failure to get one, raises `SharedStateClientError`. Use it as a context
    manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        owns = http_client is None
        if http_client is None:
            http_client = httpx.Client(timeout=timeout, transport=transport)
        super().__init__(
            base_url, token, http_client, owns_http_client=owns, timeout=timeout, **options
        )

    def __enter__(self) -> SharedStateClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (of the httpx client this client made)."""
        if self._owns_http_client:
            self._http.close()

    # --- reads ------------------------------------------------------------------------

    def get_state(self, *, refresh: bool = False) -> SharedState:
        """The whole state; `refresh=True` has the service sync first."""
        return self._run(self._core.read("", STATE, refresh=refresh))

    def get_user(self, *, refresh: bool = False) -> User | None:
        return self._run(self._core.read("/user", USER, refresh=refresh))

    def get_settings(self, *, refresh: bool = False) -> StateSettings:
        return self._run(self._core.read("/settings", SETTINGS, refresh=refresh))

    def get_workspaces(self, *, refresh: bool = False) -> ItemList:
        return self._run(self._core.read("/workspaces", ITEMS, refresh=refresh))

    def get_conversations(self, *, refresh: bool = False) -> ItemList:
        return self._run(self._core.read("/conversations", ITEMS, refresh=refresh))

    def get_workspace(self, id_or_slug: str | int) -> Item:
        """One workspace by id or slug; an unknown one raises with `code` `not_found`."""
        return self._run(self._core.read(self._core.item_path("workspaces", id_or_slug), ITEM))

    def get_conversation(self, conversation_id: str) -> Item:
        return self._run(
            self._core.read(self._core.item_path("conversations", conversation_id), ITEM)
        )

    def get_status(self) -> StatusAnswer:
        return self._run(self._core.read("/status", STATUS))

    # --- writes -----------------------------------------------------------------------

    def update_llm_settings(
        self, *, if_match: str | bool | None = None, **fields: Unpack[LlmFields]
    ) -> LlmSettings:
        """Write LLM settings through (`max_tokens=` is the wire's `maxTokens`); the new
        `settings.llm`. `if_match=True` sends the ETag of the last `get_settings()` or
        `get_state()`."""
        written: LlmSettings = self._run(self._core.write("llm", fields, if_match))
        return written

    def update_ui_settings(
        self, *, if_match: str | bool | None = None, **fields: Unpack[UiFields]
    ) -> UiSettings:
        """Write UI settings through (`font_size=` is `fontSize`); the new `settings.ui`."""
        written: UiSettings = self._run(self._core.write("ui", fields, if_match))
        return written

    def sync(self) -> SyncAnswer:
        """Have the service sync now; its answer (version, changed sections, sources)."""
        return self._run(self._core.sync())

    # --- events -----------------------------------------------------------------------

    def events(
        self, sections: Collection[str] | None = None, last_event_id: int | None = None
    ) -> Generator[ClientEvent, None, None]:
        """The live events (a snapshot first, unless resuming), forever: after a dropped
        connection it reconnects with back-off and `Last-Event-ID`, so no event is lost or
        repeated. Breaking out of the loop (or `close()` on the iterator) ends it."""
        stream = self._event_stream(sections, last_event_id)
        while True:
            try:
                yield from self._follow(stream)
                reason = "ended"
            except (httpx.TransportError, Reconnect) as exc:
                reason = reason_for(exc)
            time.sleep(stream.dropped(reason))

    def _follow(self, stream: EventStream) -> Iterator[ClientEvent]:
        """One connection's events, until it ends."""
        call = stream.call()
        response = self._http.send(self._request(call, stream.timeout), stream=True)
        try:
            body = b"" if response.status_code == 200 else self._read(call, response)
            stream.opened(response.status_code, response.headers, body)
            limit = self._core.max_answer_bytes
            source = EventSource(guarded(response, GuardedStream(response, limit)))
            for sse in source.iter_sse():
                event = stream.accept(sse)
                if event is not None:
                    yield event
        finally:
            response.close()

    # --- running operations -----------------------------------------------------------

    def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, float):
                    time.sleep(step)
                    step = op.send(None)
                    continue
                try:
                    answer = self._exchange(step)
                except httpx.TransportError as exc:
                    step = op.throw(exc)
                else:
                    step = op.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result

    def _exchange(self, call: Call) -> Answer:
        response = self._http.send(self._request(call), stream=True)
        try:
            return Answer(response.status_code, response.headers, self._read(call, response))
        finally:
            response.close()

    def _read(self, call: Call, response: httpx.Response) -> bytes:
        reader = BodyReader(
            self._core.max_answer_bytes, response.status_code, response.headers, call.what
        )
        for chunk in response.iter_bytes():
            reader.add(chunk)
        return reader.body()
