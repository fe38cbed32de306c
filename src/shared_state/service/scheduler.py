"""The periodic sync: APScheduler's AsyncIOScheduler calling `Synchronizer.sync()`.

Every tick is a scheduled sync: the Synchronizer asks only the upstreams its back-off
finds due, so the schedule itself stays one plain interval.

First run at start-up, missed runs coalesced into one. A tick that comes while a sync
still runs joins it (the Synchronizer runs one sync at a time and a scheduled call joins
the running one), so a sync that outlasts one interval is not APScheduler's "skipped"
warning; one that outlasts two still is, since by then the operator should hear of it.
A sync cancelled by shutdown ends the job quietly (APScheduler would log it as a failure, with a
`CancelledError` traceback).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from shared_state.errors import SharedStateError
from shared_state.service.sync import Synchronizer


def start_sync_schedule(synchronizer: Synchronizer, interval_s: float) -> AsyncIOScheduler:
    """Start syncing now and every `interval_s` seconds; the caller shuts it down."""
    scheduler = AsyncIOScheduler(timezone=UTC)

    async def sync() -> None:
        try:
            await synchronizer.sync(scheduled=True)
        except SharedStateError:
            return  # a replica that lost the lease or Redis: the Synchronizer logged it
        except asyncio.CancelledError:
            # Only shutdown cancels here (the scheduler's executor cancels its running
            # jobs, `Synchronizer.aclose` the shared run): end the job without a report.
            return

    scheduler.add_job(
        sync,
        trigger="interval",
        seconds=interval_s,
        id="sync",
        next_run_time=datetime.now(UTC),
        max_instances=2,  # the second joins the running sync; see the module docstring
        coalesce=True,
        misfire_grace_time=max(1, int(interval_s)),
    )
    scheduler.start()
    return scheduler


def stop_sync_schedule(scheduler: AsyncIOScheduler) -> None:
    """Stop ticking (drain, then shutdown): no sync starts after this. Twice is once."""
    if scheduler.running:
        scheduler.shutdown(wait=False)
