"""`SnapshotMemo`: an adapter's last snapshot, given back while its inputs are the same.

`JsonApi.get` answers the very same object for an answer whose bytes did not change, so
an adapter whose reads all came back the same can hand back the very same snapshot, and
the StateManager sees by identity, without comparing, that this source brought nothing new.
"""

from __future__ import annotations

from collections.abc import Callable

from shared_state.domain.models import UpstreamSnapshot


class SnapshotMemo:
    """The last snapshot built and the inputs it was built from."""

    def __init__(self) -> None:
        self._inputs: tuple[object, ...] = ()
        self._snapshot: UpstreamSnapshot | None = None

    def get(
        self, inputs: tuple[object, ...], build: Callable[[], UpstreamSnapshot]
    ) -> UpstreamSnapshot:
        """The last snapshot when `inputs` are the same objects as last time, else a new
        one from `build`."""
        is_same = len(inputs) == len(self._inputs) and all(
            new is old for new, old in zip(inputs, self._inputs, strict=True)
        )
        if self._snapshot is None or not is_same:
            self._snapshot = build()
            self._inputs = inputs
        return self._snapshot
