"""Does this machine's clock agree with an upstream's? Read from the `iat` of a JWT it
has just issued, else from the `Date` header of its answer."""

from __future__ import annotations

import base64
import binascii
import json
import math
from email.utils import parsedate_to_datetime

MAX_SKEW_S = 60.0
"""A larger difference fails the check: LibreChat's tokens live 15 minutes."""


def issued_at(token: str) -> float | None:
    """The `iat` claim of a JWT (seconds since the epoch), unverified; None if absent."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    iat = payload.get("iat") if isinstance(payload, dict) else None
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        return None
    return float(iat)


def date_header(value: str | None) -> float | None:
    """An HTTP `Date` header as seconds since the epoch; None when absent or unreadable."""
    if not value or len(value) > 64:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def describe_skew(skew_s: float) -> str:
    """`120 s ahead of this machine's clock` (positive: the upstream is ahead)."""
    way = "ahead of" if skew_s > 0 else "behind"
    return f"{abs(skew_s):.0f} s {way} this machine's clock"
