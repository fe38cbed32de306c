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
        """The shared state: a hash of `version`, `fence`, `snapshot` and `touch`."""
        return f"{self.prefix}:state"

    @property
    def log(self) -> str:
        """The change log: a stream with one entry per version, its id `<version>-0`."""
        return f"{self.prefix}:log"

    @property
    def upstream_lock(self) -> str:
        """Held (with the holder's id) while a sync or a write calls the upstreams."""
        return f"{self.prefix}:upstream-lock"

    @property
    def commands(self) -> str:
        """Syncs and writes that other replicas hand to the holder: a list, oldest first."""
        return f"{self.prefix}:commands"

    def reply(self, command_id: str) -> str:
        """The holder's answer to one command: a list of one entry, short-lived."""
        return f"{self.prefix}:reply:{command_id}"

    def idempotency(self, scope: str, key: str) -> str:
        """One write's idempotency key (`scope` is the route)."""
        return f"{self.prefix}:idempotency:{scope}:{key}"

    @property
    def idempotency_index(self) -> str:
        """The idempotency keys by the time they were claimed (a sorted set): the oldest
        are forgotten first once there are too many."""
        return f"{self.prefix}:idempotency-keys"
