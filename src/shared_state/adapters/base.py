"""The seam between the service and the upstreams: the `Upstream` protocol.

The sync and the write-through speak only this protocol, so an API flavour is one more
module that meets it; the merge, the StateManager and the API layer never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared_state.domain.models import SourceName, UpstreamSnapshot, WritableSection


class Upstream(Protocol):
    """One upstream application, as the sync and the writes see it."""

    @property
    def name(self) -> SourceName:
        """Which source this is in the state."""
        ...

    @property
    def stored_fields(self) -> Mapping[WritableSection, frozenset[str]]:
        """The writable fields (snake_case, per section) that this upstream stores."""
        ...

    async def fetch(self) -> UpstreamSnapshot:
        """Read everything this upstream contributes; raise `UpstreamError` on failure."""
        ...

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Write `values` (fields this upstream stores) and return their previous values,
        which, written back the same way, undo the write. Raise `UpstreamError` when the
        write did not land."""
        ...
