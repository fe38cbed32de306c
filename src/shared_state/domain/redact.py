"""Removes secrets from upstream objects before they enter the state.

An upstream object may carry passwords, API keys, tokens or secrets (AnythingLLM
settings hold `OpenAiKey`, LibreChat users a `refreshToken`); none of them may reach
a response, a log line or the snapshot file, so they are dropped at the boundary.
"""

from __future__ import annotations

from typing import Any

_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "privatekey",
    "private_key",
    "cookie",
    "connectionstring",
)
_SECRET_NAMES = frozenset({"key", "backupcodes", "federatedtokens", "web_push_subscription_config"})


def is_secret_name(name: str) -> bool:
    """True for a field name that holds a credential: `OpenAiKey`, `password`, `AuthToken`…"""
    lowered = name.lower()
    return (
        lowered in _SECRET_NAMES
        or any(word in lowered for word in _SECRET_WORDS)
        or name.endswith("Key")  # camelCase keys; case-sensitive so `monkey` is no secret
        or lowered.endswith(("_key", "-key", "token"))
    )


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-named field removed, at any depth."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if not is_secret_name(str(k))}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
