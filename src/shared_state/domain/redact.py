"""Removes secrets from upstream objects before they enter the state.

An upstream object may carry passwords, API keys, tokens or secrets (AnythingLLM
settings hold `OpenAiKey`, LibreChat users a `refreshToken`); none of them may reach
a response, a log line or the snapshot file, so they are dropped at the boundary.

Two tools, for two kinds of object:

- `safe_user(user)` keeps what is known to be safe: the fields both upstreams' user
  objects are documented to have, each with its known shape. Everything else is
  dropped, so a secret under a name nobody thought of (`personalization.mfaSeed`)
  never gets through.
- `redact(value)` is for workspaces and conversations, which keep the upstream's own
  fields (contract §4): it drops fields by name (whole words such as `jwt`, `session`,
  `otp`, `pass`, a trailing `Key` or `Token`) and string values that look like
  credentials whatever their name (a JWT, an `otpauth://` URL, a `Bearer …` string, a
  URL with `user:pass@`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

# --- Names ------------------------------------------------------------------------------

_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
"""Splits `OpenAiKey`, `JWT_SECRET`, `otpauthUrl`, `seen-recovery-codes` into words."""

_SECRET_WORDS: Final = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "pass",
        "pwd",
        "secret",
        "secrets",
        "credential",
        "credentials",
        "cookie",
        "cookies",
        "jwt",
        "session",
        "sessions",
        "otp",
        "otpauth",
        "totp",
        "hotp",
        "mfa",
        "hash",
        "salt",
        "recovery",
        "bearer",
        "refresh",
        "auth",
        "authorization",
        "apikey",
        "apikeys",
        "signature",
    }
)
"""A name with one of these words anywhere is a secret (`authorId` is safe: its word is
`author`)."""

_SECRET_COMPOUNDS: Final = (
    "apikey",
    "api_key",
    "api-key",
    "privatekey",
    "private_key",
    "accesskey",
    "connectionstring",
)
"""Found in the lower-cased name, whatever the separators."""

_SECRET_NAMES: Final = frozenset(
    {"key", "keys", "backupcodes", "federatedtokens", "web_push_subscription_config"}
)
_LAST_WORD_SECRETS: Final = frozenset({"key", "keys", "token"})
"""`OpenAiKey`, `AuthToken`: a credential named for what it is; `tokenLimit` is not."""

_COUNT_WORDS: Final = frozenset(
    {
        "max",
        "min",
        "limit",
        "total",
        "count",
        "num",
        "prompt",
        "completion",
        "input",
        "output",
        "context",
        "used",
        "remaining",
        "reasoning",
        "cached",
    }
)
"""Words that make a trailing `Tokens` a count (`maxTokens`, `promptTokens`)."""


def is_secret_name(name: str) -> bool:
    """True for a field name that holds a credential: `OpenAiKey`, `password`, `mfaSeed`…

    Names are matched by whole words, so `monkey`, `keyword`, `authorId`, `bypass` and
    `maxTokens` are ordinary. A bare `seed` is the sampling parameter of an LLM preset
    and is kept; `mfaSeed` or `seedPhrase` are not.
    """
    known = _NAME_DECISIONS.get(name)
    if known is None:
        if len(_NAME_DECISIONS) >= _NAME_DECISIONS_KEPT:
            _NAME_DECISIONS.clear()  # a hostile upstream may send endless distinct names
        known = _NAME_DECISIONS[name] = _decide_name(name)
    return known


_NAME_DECISIONS: dict[str, bool] = {}
"""Decisions by name: item fields repeat, and a dict lookup is the cheapest check."""
_NAME_DECISIONS_KEPT: Final = 8192


def _decide_name(name: str) -> bool:
    lowered = name.lower()
    if lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_COMPOUNDS):
        return True
    words = [word.lower() for word in _WORD.findall(name)]
    if not words:
        return False
    if any(word in _SECRET_WORDS for word in words):
        return True
    if "seed" in words and len(words) > 1:
        return True
    last = words[-1]
    if last in _LAST_WORD_SECRETS:
        return True
    return last == "tokens" and not any(word in _COUNT_WORDS for word in words[:-1])


# --- Values -----------------------------------------------------------------------------

_CREDENTIAL_VALUE: Final = re.compile(
    r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"  # a JWT (header `{"…`)
    r"|(?i:otpauth(?:-migration)?://)"  # a TOTP/HOTP enrolment URL, secret inside
    r"|(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})"  # an Authorization header value
    r"|://[^\s/?#@:]*:[^\s/?#@]*@"  # URL userinfo with a password: user:pass@, :pass@
)


def looks_like_credential(text: str) -> bool:
    """True for a string that holds a credential whatever its field's name.

    Cheap substring checks come first: nearly every string has none of the hints, and
    `redact` runs on every new or changed item.
    """
    if "eyJ" in text or "://" in text or "earer" in text or "EARER" in text:
        return _CREDENTIAL_VALUE.search(text) is not None
    return False


def redact(value: Any) -> Any:
    """A copy of `value` without secret-named fields or credential-looking strings.

    Applied at any depth of objects and lists; a string in a list that looks like a
    credential is dropped from the list. Scalars are returned as they are. Written as
    one plain loop with the checks inlined: it runs once per new or changed item.
    """
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        decisions = _NAME_DECISIONS
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            secret = decisions.get(name)
            if secret is None:
                secret = is_secret_name(name)
            if secret:
                continue
            kind = type(item)
            if kind is str:
                if (
                    "eyJ" in item or "://" in item or "earer" in item or "EARER" in item
                ) and _CREDENTIAL_VALUE.search(item):
                    continue
            elif kind is dict or kind is list or isinstance(item, dict | list):
                item = redact(item)
            kept[name] = item
        return kept
    if isinstance(value, list):
        return [
            redact(item) if isinstance(item, dict | list) else item
            for item in value
            if not (isinstance(item, str) and looks_like_credential(item))
        ]
    return value


# --- Users: an allow-list -----------------------------------------------------------------


class _Dropped:
    """Marks a value that failed its shape: the field is left out."""


_DROP: Final = _Dropped()

_Shape = Callable[[Any], Any]
_MAX_TEXT_CHARS: Final = 2000
_MAX_LIST_ITEMS: Final = 100


def _text(value: Any) -> Any:
    """A string that is no credential and not huge, or null."""
    if value is None:
        return None
    is_short = isinstance(value, str) and len(value) <= _MAX_TEXT_CHARS
    if is_short and not looks_like_credential(value):
        return value
    return _DROP


def _identifier(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _text(value) if value is not None else _DROP


def _flag(value: Any) -> Any:
    return value if isinstance(value, bool) else _DROP


def _flag_or_number(value: Any) -> Any:
    """AnythingLLM's `suspended` is an Int (0 or 1); a boolean is accepted too."""
    if isinstance(value, bool | int):
        return value
    return _DROP


def _count(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return _DROP


def _names(value: Any) -> Any:
    """A list of short strings (LibreChat's `plugins`: plugin keys)."""
    if not isinstance(value, list):
        return _DROP
    texts = [_text(item) for item in value[:_MAX_LIST_ITEMS] if isinstance(item, str)]
    return [text for text in texts if text is not _DROP]


def _personalization(value: Any) -> Any:
    """LibreChat's `personalization`: only the `memories` toggle is known."""
    if not isinstance(value, dict):
        return _DROP
    return {"memories": value["memories"]} if isinstance(value.get("memories"), bool) else {}


_FAVORITE_FIELDS: Final = ("model", "endpoint", "agentId", "spec")


def _favorites(value: Any) -> Any:
    """LibreChat's favorites: `{model, endpoint}`, `{agentId}` or `{spec}`, strings only."""
    if not isinstance(value, list):
        return _DROP
    favorites = []
    for entry in value[:_MAX_LIST_ITEMS]:
        if not isinstance(entry, dict):
            continue
        kept = {
            name: text
            for name in _FAVORITE_FIELDS
            if isinstance(entry.get(name), str) and (text := _text(entry[name])) is not _DROP
        }
        if kept:
            favorites.append(kept)
    return favorites


def _switches(value: Any) -> Any:
    """LibreChat's `skillStates`: skill name -> on/off."""
    if not isinstance(value, dict):
        return _DROP
    return {
        name: state
        for name, state in list(value.items())[:_MAX_LIST_ITEMS]
        if isinstance(state, bool) and _text(name) is not _DROP and not is_secret_name(name)
    }


_USER_FIELDS: Final[dict[str, _Shape]] = {
    # both upstreams (and the bizzy flavour's user objects)
    "id": _identifier,
    "_id": _identifier,
    "username": _text,
    "email": _text,
    "name": _text,
    "role": _text,
    "createdAt": _text,
    "updatedAt": _text,
    # AnythingLLM (`User.filterFields` of `/api/system/refresh-user`)
    "pfpFilename": _text,
    "suspended": _flag_or_number,
    "seen_recovery_codes": _flag,
    "lastUpdatedAt": _text,
    "dailyMessageLimit": _count,
    "bio": _text,
    # LibreChat (`PUBLIC_USER_RESPONSE_FIELDS` of `GET /api/user`, 0.8.6+)
    "emailVerified": _flag,
    "avatar": _text,
    "provider": _text,
    "plugins": _names,
    "twoFactorEnabled": _flag,
    "termsAccepted": _flag,
    "personalization": _personalization,
    "favorites": _favorites,
    "skillStates": _switches,
    "tenantId": _text,
    "expiresAt": _text,  # before 0.8.6: when an unverified account expires
}
"""The known-safe fields of a user object, and the shape each must have to be kept."""


def safe_user(user: dict[str, Any]) -> dict[str, Any]:
    """The known-safe part of an upstream user object: every unknown field is dropped.

    Known fields are kept only in their known shape (a `personalization` keeps only its
    boolean `memories`; `favorites` only `{model, endpoint, agentId, spec}` strings), and
    a known text field that holds a credential-looking string is dropped too.
    """
    kept: dict[str, Any] = {}
    for name, value in user.items():
        shape = _USER_FIELDS.get(name)
        if shape is None:
            continue
        cleaned = shape(value)
        if cleaned is not _DROP:
            kept[name] = cleaned
    return kept
