"""The one error tree of the service; the API layer maps it to HTTP once.

    SharedStateError
    ├── UpstreamError                  an upstream did not give us what we asked for
    │   ├── UpstreamUnavailable        timeout, refused connection, other transport failure
    │   ├── UpstreamStatusError        an HTTP error status (``status`` says which)
    │   ├── UpstreamResponseInvalid    not JSON, malformed JSON, or JSON of the wrong shape
    │   ├── UpstreamRejectedWrite      the upstream answered a write, but did not apply it
    │   └── UpstreamAuthError          credentials refused, or login impossible (2FA, rate limit)
    ├── UpstreamWriteFailed            a write-through failed (``results`` per upstream)  → 502
    ├── NotFound                       no such workspace / conversation                   → 404
    ├── Unauthorized                   missing or wrong SHARED_STATE_API_TOKEN            → 401
    ├── UnknownSection                 `?sections=` names no section of the state         → 422
    ├── VersionMismatch                a write's If-Match is no longer current            → 412
    ├── InvalidIdempotencyKey          an Idempotency-Key that is not 1-255 printable ASCII → 422
    ├── IdempotencyKeyReused           a key already used with another body               → 422
    ├── StoreUnavailable               replicas: Redis cannot be reached now              → 503
    ├── HolderUnavailable              replicas: no syncing replica answered in time      → 503
    └── SubscriptionDropped            an event subscriber fell too far behind

Messages never carry upstream bodies or credentials: they are shown in ``/status``
(``lastError``) and in logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from shared_state.domain.models import SourceName

WriteResult = Literal["ok", "failed", "rolled_back", "rollback_failed", "skipped"]


class SharedStateError(Exception):
    """Base of every error the service raises on purpose."""

    code = "shared_state_error"


class UpstreamError(SharedStateError):
    """An upstream did not answer what we asked for; the sync keeps its last good data."""

    code = "upstream_error"

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.reason = message


class UpstreamUnavailable(UpstreamError):
    """The request did not complete: timeout, connection refused or another transport error."""

    code = "upstream_unavailable"


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an HTTP error status. `retry_after_s` is its
    `Retry-After` (429 and 503 only), in seconds from when it answered."""

    code = "upstream_status"

    def __init__(
        self, source: str, message: str, *, status: int, retry_after_s: float | None = None
    ) -> None:
        super().__init__(source, message)
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def is_transient(self) -> bool:
        return self.status >= 500 or self.status == 429


class UpstreamResponseInvalid(UpstreamError):
    """The answer was not JSON, was malformed, or had the wrong shape: never data."""

    code = "upstream_response_invalid"


class UpstreamRejectedWrite(UpstreamError):
    """The upstream answered a write without applying it (or applied something else)."""

    code = "upstream_rejected_write"


class UpstreamAuthError(UpstreamError):
    """The upstream refused our credentials, or cannot be logged into now: a configuration
    error or a back-off, never retried in a tight loop."""

    code = "upstream_auth"


class UpstreamWriteFailed(SharedStateError):
    """A write-through failed on at least one upstream; the others were rolled back."""

    code = "upstream_write_failed"

    def __init__(self, results: Mapping[SourceName, WriteResult]) -> None:
        failed = ", ".join(name for name, result in results.items() if result == "failed")
        super().__init__(f"The write failed on {failed}; the state was not changed.")
        self.results = dict(results)


class NotFound(SharedStateError):
    """The requested item is not in the state."""

    code = "not_found"


class Unauthorized(SharedStateError):
    """The request lacks the bearer token that SHARED_STATE_API_TOKEN asks for."""

    code = "unauthorized"


class UnknownSection(SharedStateError):
    """An event stream asked for a section the state does not have."""

    code = "unknown_section"


class VersionMismatch(SharedStateError):
    """A write's `If-Match` names a state that is no longer current: nothing was written."""

    code = "version_mismatch"


class InvalidIdempotencyKey(SharedStateError):
    """An `Idempotency-Key` header that is not 1-255 printable ASCII characters."""

    code = "invalid_idempotency_key"


class IdempotencyKeyReused(SharedStateError):
    """An `Idempotency-Key` already used on this route with another body."""

    code = "idempotency_key_reused"


class SubscriptionDropped(SharedStateError):
    """The subscriber's queue filled up, so the bus dropped it; subscribe again to catch up."""

    code = "subscription_dropped"


class StoreUnavailable(SharedStateError):
    """Replicas (contract §11): Redis did not answer, so a write or a sync cannot be
    carried out now; nothing was changed and no upstream was called."""

    code = "store_unavailable"


class HolderUnavailable(SharedStateError):
    """Replicas: no replica holding the sync lease carried out the request in time (a
    takeover in progress, or a holder still finishing a previous tenure's work)."""

    code = "holder_unavailable"
