"""JSON over HTTP for the adapters: one place that turns transport trouble into
`UpstreamError`s, insists on JSON, and retries idempotent reads (never writes).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import httpx
import stamina
from pydantic import TypeAdapter, ValidationError

from shared_state.errors import (
    UpstreamAuthError,
    UpstreamResponseInvalid,
    UpstreamStatusError,
    UpstreamUnavailable,
)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: jittered exponential back-off, capped in attempts and time."""

    attempts: int = 3
    wait_initial_s: float = 0.2
    wait_max_s: float = 2.0
    timeout_s: float = 30.0


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, UpstreamStatusError):
        return exc.is_transient
    return isinstance(exc, UpstreamUnavailable)


class Credentials(Protocol):
    """Where a `JsonApi` gets its auth headers; a session that logs in and refreshes."""

    async def headers(self) -> Mapping[str, str]:
        """Headers that authenticate the next request (may log in or refresh first)."""
        ...

    async def reject(self) -> None:
        """The upstream refused the last headers (401/403): forget them."""
        ...


class UpstreamRecorder(Protocol):
    """Told about every request a `JsonApi` sent (the metrics' `record_upstream`):
    `outcome` is `ok`, `error` (an error status, a failed transport) or `timeout`."""

    def __call__(
        self, upstream: str, outcome: Literal["ok", "error", "timeout"], duration_s: float
    ) -> None: ...


_REFUSED = (401, 403)
_MAY_RETRY_AFTER = (429, 503)
_MAX_RETRY_AFTER_CHARS = 64


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from `now`: delay-seconds or an HTTP date (RFC 9110
    §10.2.3). Anything else (absent, too long, negative, not a date) is None: the
    header is the upstream's, so it is read, never trusted."""
    if value is None or len(value) > _MAX_RETRY_AFTER_CHARS:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, as HTTP dates always are
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


class JsonApi:
    """A long-lived `httpx.AsyncClient` (built by the app's lifespan) that speaks JSON.

    With `credentials`, every request carries their headers; a 401/403 makes them forget
    their token and the request is sent once more with fresh headers.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        source: str,
        retry: RetryPolicy | None = None,
        credentials: Credentials | None = None,
        recorder: UpstreamRecorder | None = None,
    ) -> None:
        self._client = client
        self._recorder = recorder
        self._source = source
        self._retry = retry or RetryPolicy()
        self._credentials = credentials
        # The last answer to each GET: (digest of its bytes, shape, parsed value).
        self._answers: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[bytes, Any, Any]] = {}

    @property
    def source(self) -> str:
        return self._source

    def forget_cookies(self, names: Iterable[str]) -> None:
        """Drop cookies the client's jar filed from a response: a session that keeps its
        own (a refresh token) must not have them sent along with every request."""
        for name in names:
            self._client.cookies.delete(name)

    async def reject_credentials(self) -> None:
        """Make the credentials forget their token (an upstream that refuses a session
        with 200 and `success: false`, not with 401)."""
        if self._credentials is not None:
            await self._credentials.reject()

    async def get(self, path: str, shape: TypeAdapter[T], **params: Any) -> T:
        """GET `path` and validate the JSON answer against `shape`; retried when transient.

        An answer with the same bytes as the last one to the same request is not parsed
        again: the same object comes back, which tells the adapter nothing changed."""
        raw = await self.get_bytes(path, **params)
        key = (path, tuple(sorted(params.items())))
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        remembered = self._answers.get(key)
        if remembered is not None and remembered[0] == digest and remembered[1] is shape:
            return remembered[2]  # type: ignore[no-any-return]
        value = self.parse(raw, "GET", path, shape)
        self._answers[key] = (digest, shape, value)
        return value

    async def get_bytes(self, path: str, **params: Any) -> bytes:
        """GET `path` and return the body of a JSON answer as it came, unparsed; retried
        when transient. For adapters that compare pages before parsing them."""
        async for attempt in stamina.retry_context(
            on=_is_transient,
            attempts=self._retry.attempts,
            wait_initial=self._retry.wait_initial_s,
            wait_max=self._retry.wait_max_s,
            timeout=self._retry.timeout_s,
        ):
            with attempt:
                response = await self._authenticated("GET", path, params=params or None)
        self._check_json(response, "GET", path)
        return response.content

    async def post(self, path: str, body: Any, shape: TypeAdapter[T]) -> T:
        """POST a JSON body once: writes are never retried blindly."""
        response = await self._authenticated("POST", path, json=body)
        return self.decode(response, "POST", path, shape)

    async def _authenticated(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._credentials is None:
            return self._raise_for_status(await self.send(method, path, **kwargs), method, path)
        response = await self.send(
            method, path, headers=await self._credentials.headers(), **kwargs
        )
        if response.status_code in _REFUSED:
            # A refused token is not a refused request: an expired session logs in again.
            await self._credentials.reject()
            headers = await self._credentials.headers()
            response = await self.send(method, path, headers=headers, **kwargs)
            if response.status_code in _REFUSED:
                raise UpstreamAuthError(
                    self._source,
                    f"{method} {path} refused fresh credentials (HTTP {response.status_code})",
                )
        return self._raise_for_status(response, method, path)

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, any status; only transport failures raise. For auth flows."""
        started = time.perf_counter()
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            self._record("timeout", started)
            raise UpstreamUnavailable(self._source, f"{method} {path} timed out") from exc
        except httpx.TransportError as exc:
            self._record("error", started)
            reason = type(exc).__name__
            raise UpstreamUnavailable(self._source, f"{method} {path} failed: {reason}") from exc
        self._record("error" if response.is_error else "ok", started)
        return response

    def _record(self, outcome: Literal["ok", "error", "timeout"], started: float) -> None:
        if self._recorder is not None:
            self._recorder(self._source, outcome, time.perf_counter() - started)

    def _raise_for_status(self, response: httpx.Response, method: str, path: str) -> httpx.Response:
        if response.is_error:
            retry_after_s = None
            if response.status_code in _MAY_RETRY_AFTER:
                retry_after_s = parse_retry_after(response.headers.get("retry-after"))
            raise UpstreamStatusError(
                self._source,
                f"{method} {path} answered HTTP {response.status_code}",
                status=response.status_code,
                retry_after_s=retry_after_s,
            )
        return response

    def decode(self, response: httpx.Response, method: str, path: str, shape: TypeAdapter[T]) -> T:
        """The JSON body of `response` validated against `shape`, or `UpstreamResponseInvalid`."""
        self._check_json(response, method, path)
        return self.parse(response.content, method, path, shape)

    def _check_json(self, response: httpx.Response, method: str, path: str) -> None:
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            shown = media_type or "no content type"
            raise UpstreamResponseInvalid(
                self._source, f"{method} {path} answered {shown}, not JSON"
            )

    def parse(self, raw: bytes, method: str, path: str, shape: TypeAdapter[T]) -> T:
        """`raw` JSON validated against `shape`, or `UpstreamResponseInvalid`. `NaN` and
        `Infinity` are not JSON, whatever Python's parser accepts."""
        where = f"{method} {path}"
        try:
            document = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise UpstreamResponseInvalid(self._source, f"{where} answered malformed JSON") from exc
        try:
            return shape.validate_python(document)
        except ValidationError as exc:
            # Only the locations and kinds of error: the values may be secrets.
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['type']}"
                for e in exc.errors(include_url=False, include_input=False)[:3]
            )
            raise UpstreamResponseInvalid(
                self._source, f"{where} answered an unexpected shape ({problems})"
            ) from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def gather_reads(*reads: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run reads concurrently; the first failure cancels the others and is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read) for read in reads]
    except* Exception as failures:
        first = failures.exceptions[0]
        raise first from first.__cause__  # the failure itself, not a group of one
    return [task.result() for task in tasks]
