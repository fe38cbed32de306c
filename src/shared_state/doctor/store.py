"""The doctor's checks of the replicas' Redis (contract §11), when
`SHARED_STATE_REDIS_URL` is set: it answers (with the right credentials), it will not
drop the replicas' keys when full, and what the deployment holds there now. Without the
variable there is nothing to check: one process keeps everything in memory."""

from __future__ import annotations

from shared_state.config import Settings
from shared_state.doctor.report import Check

_URL_FIX = (
    "check SHARED_STATE_REDIS_URL (host, port, database; rediss:// for TLS) and that Redis "
    "runs and is reachable from here"
)


async def check_store(settings: Settings) -> list[Check]:
    """The store's lines of the report; none without `SHARED_STATE_REDIS_URL`."""
    if settings.redis_url is None:
        return []
    # Imported here: without Redis configured the doctor, like serve, never loads redis-py.
    from shared_state.store.connection import redacted_url
    from shared_state.store.probe import EVICTING_POLICIES, ProbeFailed, probe

    url = settings.redis_url.get_secret_value()
    shown = redacted_url(url)
    try:
        found = await probe(url, settings.redis_prefix, timeout_s=settings.request_timeout_s)
    except ProbeFailed as failed:
        fix = (
            "set the password (and user) Redis expects in SHARED_STATE_REDIS_URL: "
            "redis://:password@host:6379/0 or redis://user:password@host:6379/0"
            if failed.kind == "auth"
            else _URL_FIX
        )
        return [Check("store", "reachable", False, f"{shown}: {failed}", fix)]
    checks = [
        Check(
            "store",
            "reachable",
            True,
            f"Redis {found.server_version} at {shown} answers ({found.round_trip_ms:.1f} ms)",
        )
    ]
    policy = found.eviction_policy
    if policy is None:
        checks.append(Check("store", "eviction", True, "cannot check: Redis refuses CONFIG GET"))
    elif policy in EVICTING_POLICIES:
        checks.append(
            Check(
                "store",
                "eviction",
                False,
                f"maxmemory-policy {policy}: a full Redis may drop the shared state, its "
                "change log or the fencing counter",
                "set maxmemory-policy noeviction (a full Redis then refuses writes, and the "
                "replicas say store unavailable) or give Redis more memory",
            )
        )
    else:
        checks.append(
            Check("store", "eviction", True, f"maxmemory-policy {policy}: no key is dropped")
        )
    prefix = settings.redis_prefix
    if found.version is None:
        held = f"prefix {prefix}: no shared state yet (no replica has synced with this prefix)"
    else:
        held = f"prefix {prefix}: version {found.version}"
    if found.lease_holder is not None:
        remaining = found.lease_remaining_s
        held += f", synced by {found.lease_holder}" + (
            f" (lease for {remaining:.1f} s more)" if remaining is not None else ""
        )
    elif found.version is not None:
        held += ", no replica holds the lease now"
    if found.waiting_commands:
        held += f", {found.waiting_commands} command(s) waiting for the holder"
    checks.append(Check("store", "shared state", True, held))
    return checks
