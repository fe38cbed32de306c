"""Idempotency keys for the writes (contract §8): the first answer per key, replayed.

A write sent with `Idempotency-Key` is carried out once per route and key; a repeat with
the same body gets the first answer (status and body, a 412 or 502 too) without writing
again, and a repeat that arrives while the first still runs waits for it. The routes use
the store through `IdempotencyStore`, so the next issue can keep the keys in Redis; this
module's `MemoryIdempotencyStore` keeps them in the process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared_state.errors import IdempotencyKeyReused, InvalidIdempotencyKey

KEY_TTL_S = 24 * 3600.0
"""How long a key's answer is kept."""
MAX_KEYS = 10_000
"""Most keys kept; the oldest go first."""

_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def checked_key(value: str) -> str:
    """`value` when it is 1-255 printable ASCII characters, else `InvalidIdempotencyKey`."""
    if _VALID_KEY.fullmatch(value) is None:
        raise InvalidIdempotencyKey(
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters."
        )
    return value


def fingerprint(body: Any) -> str:
    """A digest of a parsed JSON body that is equal for equal JSON: keys in any order,
    whitespace and `1.0` against `1` do not count; `true` against `1` does."""
    return hashlib.sha256(
        json.dumps(_canonical(body), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


@dataclass(frozen=True)
class StoredAnswer:
    """A finished write's answer, as it is replayed."""

    status: int
    body: bytes


@dataclass
class Claim:
    """What `IdempotencyStore.claim` gives: either `replay` (the first answer, to send as
    it is), or the duty to run the write and then `finish` (or `abandon`) the key."""

    replay: StoredAnswer | None = None
    token: Any = None


class IdempotencyStore(Protocol):
    """Where the keys live. `claim` raises `IdempotencyKeyReused` for a known key with
    another body, and waits while the first request with that key runs."""

    async def claim(self, scope: str, key: str, body_digest: str) -> Claim: ...

    async def finish(self, claim: Claim, answer: StoredAnswer) -> None: ...

    async def abandon(self, claim: Claim) -> None: ...


@dataclass
class _Entry:
    body_digest: str
    created_monotonic: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    answer: StoredAnswer | None = None


class MemoryIdempotencyStore:
    """`IdempotencyStore` in the process: at most `max_keys` keys for `ttl_s` seconds
    each, the oldest evicted first (kept in insertion order, so eviction and expiry only
    look at the front)."""

    def __init__(
        self,
        *,
        ttl_s: float = KEY_TTL_S,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, scope: str, key: str, body_digest: str) -> Claim:
        while True:
            self._expire()
            entry = self._entries.get((scope, key))
            if entry is None:
                entry = _Entry(body_digest=body_digest, created_monotonic=self._clock())
                self._entries[(scope, key)] = entry
                while len(self._entries) > self._max_keys:
                    self._entries.popitem(last=False)
                return Claim(token=((scope, key), entry))
            if entry.body_digest != body_digest:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with another body on this route."
                )
            await entry.done.wait()
            if entry.answer is not None:
                return Claim(replay=entry.answer)
            # The first request ended without an answer (it was abandoned): try again.

    async def finish(self, claim: Claim, answer: StoredAnswer) -> None:
        entry = self._entry_of(claim)
        entry.answer = answer
        entry.done.set()

    async def abandon(self, claim: Claim) -> None:
        """The write ended without an answer worth keeping (it crashed or was
        cancelled): forget the key, so a retry runs it."""
        slot, entry = claim.token
        if self._entries.get(slot) is entry:
            del self._entries[slot]
        entry.done.set()

    def _entry_of(self, claim: Claim) -> _Entry:
        _, entry = claim.token
        assert isinstance(entry, _Entry)
        return entry

    def _expire(self) -> None:
        deadline = self._clock() - self._ttl_s
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.created_monotonic > deadline:
                break
            self._entries.popitem(last=False)
