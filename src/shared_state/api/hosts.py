"""`SHARED_STATE_ALLOWED_HOSTS`: which `Host` headers the service answers.

The matching is Starlette's `TrustedHostMiddleware`'s (exact names, `*.example.com`
wildcards that match subdomains only, `*` for any), but answered with our error body
and cheap enough for the GET fast path: a set lookup and a suffix test on the header's
bytes, no `Headers` object per request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_HOST_HEADER = re.compile(rb"(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::[0-9]{1,5})?")
"""A host name or bracketed IP literal, with an optional port; anything else is refused."""


class AllowedHosts:
    """The configured host patterns; `allows(host_header)` is the per-request check."""

    def __init__(self, patterns: Iterable[str]) -> None:
        names = [pattern.strip().lower() for pattern in patterns if pattern.strip()]
        self.allows_any = not names or "*" in names
        self._exact = frozenset(name.encode() for name in names if "*" not in name)
        self._suffixes = tuple(name[1:].encode() for name in names if name.startswith("*."))

    def allows(self, host_header: bytes | None) -> bool:
        """Whether a request with this `Host` header (None: none sent) may be answered."""
        if self.allows_any:
            return True
        if host_header is None:
            return False
        match = _HOST_HEADER.fullmatch(host_header.lower())
        if match is None:
            return False
        host = match.group(1)
        return host in self._exact or host.endswith(self._suffixes)
