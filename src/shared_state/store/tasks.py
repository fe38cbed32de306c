"""Stopping the replica's background tasks within a bound, whatever redis-py does.

A task cancelled in the middle of a Redis call may not end: redis-py has lost
cancellations of blocking commands before (redis/redis-py#2028, #2579), and a loop that
catches the `TimeoutError` a lost cancellation turns into goes round again. A shutdown
that awaits such a task waits forever (`tests/store/test_lease.py` has one that did). So
every loop here also checks a stop flag, and `stop_task` never waits longer than told.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task[None], *, grace_s: float = 0.0, within_s: float) -> None:
    """End `task`: give it `grace_s` to see its stop flag and return, then cancel it and
    wait at most `within_s` more. A task that is still running after that is left to end
    on its own (logged), never waited for without bound."""
    if grace_s > 0:
        await asyncio.wait({task}, timeout=grace_s)
    if not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=within_s)
    if not task.done():
        log.warning(
            "%s did not stop within %g s of its cancellation; left to end on its own",
            task.get_name(),
            within_s,
        )
        return
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("%s ended with an error", task.get_name(), exc_info=error)
