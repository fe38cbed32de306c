"""HS256 JSON Web Tokens for the native simulators, signed with the standard library only.

Both real upstreams issue HS256 JWTs; a client treats them as opaque, a test may read the claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from shared_state.simulator.world import JSONObject

_HEADER: JSONObject = {"alg": "HS256", "typ": "JWT"}


def b64url_encode(raw: bytes) -> str:
    """Base64url without padding, as JWTs use it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError if it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not base64url") from exc


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _signature(signing_input: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return b64url_encode(digest)


def sign(payload: JSONObject, secret: str) -> str:
    """A compact HS256 JWT carrying `payload`."""
    signing_input = f"{b64url_encode(_compact(_HEADER))}.{b64url_encode(_compact(payload))}"
    return f"{signing_input}.{_signature(signing_input, secret)}"


def claims(token: str) -> JSONObject | None:
    """The payload of a well-formed JWT, without checking its signature; None if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def verify(token: str, secret: str) -> JSONObject | None:
    """The payload of a JWT whose HS256 signature matches `secret`; None otherwise.

    Expiry is the caller's business: each upstream words an expired token its own way.
    """
    signing_input, _, signature = token.rpartition(".")
    if not signing_input or not hmac.compare_digest(
        signature.encode(), _signature(signing_input, secret).encode()
    ):
        return None
    return claims(token)


def expired(payload: JSONObject, now: float) -> bool:
    """Whether the token's `exp` claim (seconds since the epoch) is reached at `now`."""
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return True
    return now >= exp
