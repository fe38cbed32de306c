"""The Python client's one implementation of requests and answers, without I/O.

Each operation (`read`, `write`, `sync`) is a generator: it yields a `Call` (what to
send) and is sent back the `Answer`, or yields a pause in seconds before a retry, and
returns the typed result. `SharedStateClient` runs it with `httpx.Client` and
`AsyncSharedStateClient` with `httpx.AsyncClient`, so ETags, retries, idempotency keys
and error mapping are written once (the "sans-I/O" shape of h11 and httpcore).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from shared_state.api.schemas import (
    LlmSettingsUpdate,
    StatusAnswer,
    SyncAnswer,
    UiSettingsUpdate,
)
from shared_state.client.errors import (
    SharedStateClientError,
    bad_response,
    error_from_answer,
    network_error,
    shown_url,
    too_large,
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

API_PREFIX = "/api/shared-state"

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The largest answer (or event) read: a state of 10,000 conversations is about 3 MB."""
CACHE_ENTRIES = 256
"""Paths whose last answer and ETag are kept (the oldest go first)."""
RETRY_PAUSE_S = 0.25
"""The pause before the first retry after a connection failure; it doubles after each."""


@dataclass(frozen=True)
class Call:
    """One HTTP request to make: the same `Call` is sent again on a retry, so a write's
    `Idempotency-Key` is the same too."""

    method: Literal["GET", "POST"]
    url: str
    what: str
    """`GET /api/shared-state/settings`, for error messages."""
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, read whole (within `max_answer_bytes`)."""

    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", ""))


Op = Generator[Call | float, Answer | None, T]
"""An operation: yields calls (and pauses), is sent answers (and None after a pause)."""


class BodyReader:
    """Collects an answer's bytes up to `limit_bytes` (a larger one is an error, found
    from `Content-Length` before reading when the service sends it)."""

    def __init__(self, limit_bytes: int, status: int, headers: httpx.Headers, what: str) -> None:
        self._limit_bytes = limit_bytes
        self._status = status
        self._what = what
        self._parts: list[bytes] = []
        self._size = 0
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit_bytes:
            raise too_large(status, what, limit_bytes)

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit_bytes:
            raise too_large(self._status, self._what, self._limit_bytes)
        self._parts.append(chunk)

    def body(self) -> bytes:
        return b"".join(self._parts)


class LlmFields(TypedDict, total=False):
    """The keyword arguments of `update_llm_settings` (the wire's camelCase in snake_case)."""

    provider: str
    model: str
    temperature: float
    max_tokens: int


class UiFields(TypedDict, total=False):
    """The keyword arguments of `update_ui_settings`."""

    theme: Literal["light", "dark", "system"]
    font_size: Literal["small", "medium", "large"]


_WRITES: dict[str, tuple[str, type[LlmSettingsUpdate] | type[UiSettingsUpdate], Any]] = {
    "llm": ("update_llm_settings", LlmSettingsUpdate, TypeAdapter(LlmSettings)),
    "ui": ("update_ui_settings", UiSettingsUpdate, TypeAdapter(UiSettings)),
}

STATE: TypeAdapter[SharedState] = TypeAdapter(SharedState)
USER: TypeAdapter[User | None] = TypeAdapter(User | None)
SETTINGS: TypeAdapter[StateSettings] = TypeAdapter(StateSettings)
ITEMS: TypeAdapter[ItemList] = TypeAdapter(ItemList)
ITEM: TypeAdapter[Item] = TypeAdapter(Item)
STATUS: TypeAdapter[StatusAnswer] = TypeAdapter(StatusAnswer)
SYNC: TypeAdapter[SyncAnswer] = TypeAdapter(SyncAnswer)
_WRITE_TAG_PATHS = frozenset({"", "/settings"})
"""Reads whose ETag a write's `If-Match` accepts (`if_match=True` sends the latest)."""


@dataclass
class _Cached:
    etag: str
    value: Any


class ClientCore:
    """What both clients share: the base URL, the token, the ETag cache and the
    operations. Holds no connection."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        retries: int = DEFAULT_RETRIES,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL:
            url = httpx.URL()
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, got {shown_url(base_url)[:200]!r}")
        self.base_url = str(url).rstrip("/")
        self.shown_url = shown_url(self.base_url)
        self._token = token
        self.retries = retries
        self.max_answer_bytes = max_answer_bytes
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._write_etag: str | None = None

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        return f"base_url={self.shown_url!r}, token=<{token}>"

    # --- building calls ---------------------------------------------------------------

    def headers(self, **extra: str) -> dict[str, str]:
        """Headers for every call: the token (when there is one) and `extra`."""
        headers = {"Accept": "application/json", **extra}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def url(self, path: str) -> str:
        return f"{self.base_url}{API_PREFIX}{path}"

    def item_path(self, section: Literal["workspaces", "conversations"], key: str | int) -> str:
        """The path of one item; the key is quoted whole (a `/` in it stays in the key)."""
        return f"/{section}/{quote(str(key), safe='')}"

    def call(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Call:
        return Call(
            method=method,
            url=self.url(path),
            what=f"{method} {API_PREFIX}{path}",
            headers=self.headers(**(headers or {})),
            params=params or {},
            body=body,
        )

    # --- operations -------------------------------------------------------------------

    def read(self, path: str, adapter: TypeAdapter[T], *, refresh: bool = False) -> Op[T]:
        """A GET of `path`, ETag-aware: a 304 gives back the very object of the last 200."""
        cached = self._cache.get(path)
        call = self.call(
            "GET",
            path,
            headers={"If-None-Match": cached.etag} if cached else None,
            params={"refresh": "true"} if refresh else None,
        )
        answer = yield from self._send(call)
        if answer.status == 304 and cached is not None:
            self._cache.move_to_end(path)
            value: T = cached.value
            etag: str | None = cached.etag
        elif answer.status == 200:
            value = self._parse(answer, adapter, call.what)
            etag = answer.headers.get("etag")
            self._remember(path, etag, value)
        else:
            raise self.error(answer, call.what)
        if path in _WRITE_TAG_PATHS and etag:
            self._write_etag = etag
        return value

    def write(
        self, section: Literal["llm", "ui"], fields: Mapping[str, Any], if_match: str | bool | None
    ) -> Op[Any]:
        """`POST /llm-settings` or `/ui-settings` with `fields` (snake_case) as camelCase,
        one `Idempotency-Key` for this call (its retries send the same one)."""
        name, body_model, answer_adapter = _WRITES[section]
        body = wire_body(name, body_model, fields)
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        tag = self._if_match(name, if_match)
        if tag is not None:
            headers["If-Match"] = tag
        call = self.call("POST", f"/{section}-settings", headers=headers, body=body)
        answer = yield from self._send(call)
        if answer.status != 200:
            raise self.error(answer, call.what)
        return self._parse(answer, answer_adapter, call.what)

    def sync(self) -> Op[SyncAnswer]:
        """`POST /sync`: a sync now (or the running one), its answer."""
        call = self.call("POST", "/sync")
        answer = yield from self._send(call)
        if answer.status != 200:
            raise self.error(answer, call.what)
        return self._parse(answer, SYNC, call.what)

    # --- the parts --------------------------------------------------------------------

    def _send(self, call: Call) -> Generator[Call | float, Answer | None, Answer]:
        """Send `call`; after a connection failure, again (`retries` times, with pauses).

        A retried write is safe: it carries the same `Idempotency-Key`, so the service
        carries it out once (and a retry that arrives while the first runs waits for it).
        The runner throws `httpx.TransportError` in here.
        """
        attempt = 0
        while True:
            try:
                answer = yield call
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise network_error(exc, call.what, self.shown_url) from None
                yield RETRY_PAUSE_S * 2.0**attempt
                attempt += 1
                continue
            assert answer is not None
            return answer

    def _parse(self, answer: Answer, adapter: TypeAdapter[T], what: str) -> T:
        if "json" not in answer.content_type:
            kind = answer.content_type.partition(";")[0] or "no content type"
            raise bad_response(answer.status, what, f"is {kind}, not JSON")
        try:
            return adapter.validate_json(answer.body)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the answer"
            raise bad_response(
                answer.status, what, f"is not what it should be ({where}: {first['msg']})"
            ) from None

    def error(self, answer: Answer, what: str) -> SharedStateClientError:
        if 300 <= answer.status < 400:
            return bad_response(answer.status, what, f"is a redirect ({answer.status})")
        return error_from_answer(answer.status, answer.content_type, answer.body, what)

    def _remember(self, path: str, etag: str | None, value: Any) -> None:
        if not etag:
            self._cache.pop(path, None)
            return
        self._cache[path] = _Cached(etag, value)
        self._cache.move_to_end(path)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    def _if_match(self, name: str, if_match: str | bool | None) -> str | None:
        if if_match is True:
            if self._write_etag is None:
                raise ValueError(
                    f"{name}(if_match=True) needs a get_settings() or get_state() first"
                )
            return self._write_etag
        if if_match is False or if_match is None:
            return None
        return if_match


def wire_body(
    name: str, model: type[LlmSettingsUpdate] | type[UiSettingsUpdate], fields: Mapping[str, Any]
) -> dict[str, Any]:
    """`fields` (snake_case keyword arguments) under the wire's camelCase names, as the
    API's own body model names them; an unknown name or none at all is a TypeError,
    raised before any request. Values are not checked here: the service's 422 says what
    is wrong with them."""
    known = model.model_fields
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise TypeError(
            f"{name}() got an unexpected keyword argument {unknown[0]!r} "
            f"(known: {', '.join(known)})"
        )
    if not fields:
        raise TypeError(f"{name}() needs at least one of: {', '.join(known)}")
    return {known[key].alias or key: value for key, value in fields.items()}
