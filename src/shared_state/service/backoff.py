"""When a failing upstream is next asked by the schedule: one `Backoff` per source.

The scheduler ticks every interval; at each tick the Synchronizer asks only the sources
whose `Backoff` says they are due. After n failures in a row the next scheduled attempt
is min(2^n, 10) intervals after the last one, never sooner than the upstream's
`Retry-After`, and one interval again once it answers (contract §8). Pure: every method
takes the time it is about, so tests drive it with plain datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

MAX_INTERVALS: Final = 10
"""The longest gap, in intervals, however many failures in a row."""

MAX_RETRY_AFTER_S: Final = 86_400.0
"""A `Retry-After` beyond a day is taken as a day: an upstream's header must not stop a
source from being asked for ever."""


@dataclass
class Backoff:
    """One source's schedule: its failures in a row and its next scheduled attempt."""

    interval_s: float
    consecutive_failures: int = 0
    last_attempt_at: datetime | None = None
    _retry_not_before: datetime | None = field(default=None, repr=False)

    @property
    def gap_intervals(self) -> int:
        """How many intervals after the last attempt the next scheduled one comes."""
        return min(1 << min(self.consecutive_failures, 4), MAX_INTERVALS)

    @property
    def next_attempt_at(self) -> datetime | None:
        """The next scheduled attempt; None before the first (which is due at once)."""
        if self.last_attempt_at is None:
            return None
        by_gap = self.last_attempt_at + timedelta(seconds=self.interval_s * self.gap_intervals)
        if self._retry_not_before is not None and self._retry_not_before > by_gap:
            return self._retry_not_before
        return by_gap

    def is_due(self, now: datetime) -> bool:
        """Whether a scheduled tick at `now` asks this source.

        Ticks come every interval, a little after the attempt they follow was recorded:
        the gap counts ticks (half an interval early is on time), while `Retry-After`
        is a bound the upstream set and is never undercut."""
        if self.last_attempt_at is None:
            return True
        gap = timedelta(seconds=self.interval_s * (self.gap_intervals - 0.5))
        if now < self.last_attempt_at + gap:
            return False
        return self._retry_not_before is None or now >= self._retry_not_before

    def succeeded(self, at: datetime) -> None:
        """The source answered at `at`: back to one interval."""
        self.consecutive_failures = 0
        self.last_attempt_at = at
        self._retry_not_before = None

    def failed(self, at: datetime, retry_after_s: float | None = None) -> None:
        """The source failed at `at`, optionally asking to wait `retry_after_s` seconds."""
        self.consecutive_failures += 1
        self.last_attempt_at = at
        self._retry_not_before = None
        if retry_after_s is not None:
            wait_s = min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
            self._retry_not_before = at + timedelta(seconds=wait_s)
