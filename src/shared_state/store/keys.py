"""The names of everything the replicas keep in Redis, all under `<prefix>:`.

One place lists them, so that `SHARED_STATE_REDIS_PREFIX` really separates two
deployments on one Redis and an operator can see what is there (`<prefix>:*`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreKeys:
    """The keys of one deployment (one prefix)."""

    prefix: str = "shared-state"

    @property
    def lease(self) -> str:
        """The syncing replica's lease: its holder's id, with a TTL."""
        return f"{self.prefix}:lease"

    @property
    def fence(self) -> str:
        """The fencing counter: `INCR`ed at every acquisition of the lease."""
        return f"{self.prefix}:fence"

    @property
    def state(self) -> str:
        """The shared state: a hash of `version`, `json` (the rendered state) and `fence`."""
        return f"{self.prefix}:state"

    @property
    def log(self) -> str:
        """The change log: a stream with one entry per version, its id `<version>-0`."""
        return f"{self.prefix}:log"

    def idempotency(self, scope: str, key: str) -> str:
        """One write's idempotency key (`scope` is the route)."""
        return f"{self.prefix}:idempotency:{scope}:{key}"
