"""The doctor's checks of LibreChat, either flavour. Native: one login at most per run
(LibreChat allows 7 per 5 minutes per address), its refusals told apart (wrong password,
unknown e-mail, 2FA, the rate limit, a ban), the reads with the token it gave, and the
clock from that token's `iat`. Bizzy: the bearer token, the reads."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from shared_state.adapters.http import JsonApi, RetryPolicy, parse_retry_after
from shared_state.adapters.librechat_auth import LOGIN_PATH, LibreChatSession, StaticToken
from shared_state.adapters.librechat_bizzy import LibreChatBizzy
from shared_state.adapters.librechat_native import LibreChatNative
from shared_state.app import login_budget_path
from shared_state.config import ApiFlavour, Settings
from shared_state.doctor.answers import Answer
from shared_state.doctor.reads import read_sections
from shared_state.doctor.target import Recogniser, Reply, Target, identify
from shared_state.errors import UpstreamError

DEFAULT_LOGIN_WINDOW_S = 300.0
_MINUTES = re.compile(r"after (\d+(?:\.\d+)?) minutes?")
TOKEN_FIX = "set LIBRECHAT_TOKEN to a token this LibreChat (bizzy API) accepts"  # noqa: S105 (advice, not a password)


def _is_native(answer: Answer) -> bool:
    return (
        answer.kind == "json"
        and isinstance(answer.body, dict)
        and (answer.status == 200 or (answer.status == 401 and "message" in answer.body))
    )


def _is_bizzy(answer: Answer) -> bool:
    return answer.kind == "json" and answer.status in (200, 401, 403)


PROBES: Mapping[ApiFlavour, tuple[str, Recogniser]] = {
    "native": ("/api/user", _is_native),
    "bizzy": ("/api/user/me", _is_bizzy),
}


async def check_librechat(target: Target, settings: Settings, retry: RetryPolicy) -> None:
    """Every LibreChat check, appended to `target.checks` in order."""
    answer = await identify(target, PROBES)
    if answer is None:
        return
    if target.flavour == "bizzy":
        if answer.status != 200:
            what = "is not set" if settings.librechat_token is None else "was refused"
            target.failed("credentials", f"LIBRECHAT_TOKEN {what} ({answer.describe()})", TOKEN_FIX)
            return
        target.passed("credentials", "LibreChat accepted LIBRECHAT_TOKEN (GET /api/user/me)")
        target.passed("version", "not told by the bizzy API")
        api = JsonApi(target.client, source="librechat", retry=retry)
        await read_sections(target, LibreChatBizzy(api), ("user", "settings", "conversations"))
        target.passed("write access", "cannot check without writing (POST /api/user/settings)")
        _clock_from_date(target)
        return
    token, token_at = await _credentials(target, settings)
    if token is None:
        return
    await _version(target, token)
    api = JsonApi(target.client, source="librechat", retry=retry, credentials=StaticToken(token))
    adapter = LibreChatNative(
        api,
        max_conversations=settings.librechat_max_conversations,
        full_scan_every=settings.librechat_full_scan_every,
        endpoint_providers=settings.librechat_endpoint_providers,
    )
    if await read_sections(target, adapter, ("user", "settings", "conversations")):
        target.passed(
            "write access",
            "GET /api/presets answered, and LibreChat lets every signed-in user save their "
            "own presets (POST /api/presets), all that writes need (not tried: that cannot "
            "be checked without writing)",
        )
    if token_at is None or not target.clock_from_token(token, token_at, "access token"):
        _clock_from_date(target)


def _clock_from_date(target: Target) -> None:
    first = target.first
    target.clock_from_date(first.date if first else None, first.received_at if first else 0)


async def _credentials(target: Target, settings: Settings) -> tuple[str | None, float | None]:
    """The access token to read with: from one login, or LIBRECHAT_TOKEN. `None` when
    the credentials failed (the check says why)."""
    if settings.librechat_email is not None and settings.librechat_password is not None:
        if _budget_says_wait(target, settings):
            return None, None
        return await _log_in(
            target, settings.librechat_email, settings.librechat_password.get_secret_value()
        )
    if settings.librechat_token is None:  # Settings refuses this; said all the same
        target.failed(
            "credentials",
            "neither LIBRECHAT_EMAIL/LIBRECHAT_PASSWORD nor LIBRECHAT_TOKEN is set",
            "set LIBRECHAT_EMAIL and LIBRECHAT_PASSWORD to a service account's",
        )
        return None, None
    token = settings.librechat_token.get_secret_value()
    try:
        reply = await target.request("GET", "/api/user", headers=_bearer(token))
    except UpstreamError as exc:
        target.failed("credentials", f"GET /api/user failed: {exc.reason}", "try again")
        return None, None
    if reply.answer.status != 200:
        target.failed(
            "credentials",
            f"LibreChat refused LIBRECHAT_TOKEN ({reply.answer.describe()}; an access token "
            "lives 15 minutes)",
            "set LIBRECHAT_EMAIL and LIBRECHAT_PASSWORD (a service account) instead of a "
            "fixed LIBRECHAT_TOKEN",
        )
        return None, None
    target.passed("credentials", "LibreChat accepted LIBRECHAT_TOKEN (GET /api/user)")
    return token, None


def _budget_says_wait(target: Target, settings: Settings) -> bool:
    """Whether `serve`'s login budget (kept beside the snapshot file) says no login may be
    tried now: a back-off after a 429, or its logins of the last 5 minutes. Read only."""
    path = login_budget_path(settings.snapshot_path)
    if path is None or not path.exists():
        return False
    email, password = settings.librechat_email or "", settings.librechat_password
    session = LibreChatSession(
        target.api,
        email=email,
        password=password.get_secret_value() if password else "",
        budget_path=path,
    )
    until = session.status.backoff_until
    if until is None:
        return False
    wait_s = max(0.0, until.timestamp() - time.time())
    target.failed(
        "credentials",
        f"not tried: the sidecar's login budget ({path.name}) allows no LibreChat login for "
        f"another {wait_s:.0f} s (LibreChat rate-limited it, or it has used its logins)",
        f"wait {wait_s:.0f} s and run doctor again",
    )
    return True


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _log_in(target: Target, email: str, password: str) -> tuple[str | None, float | None]:
    """One `POST /api/auth/login`, as the sidecar's session sends it; each refusal told
    apart, in our words (the body is read, never passed on)."""
    try:
        reply = await target.request(
            "POST", LOGIN_PATH, json={"email": email, "password": password}
        )
    except UpstreamError as exc:
        target.failed("credentials", f"POST {LOGIN_PATH} failed: {exc.reason}", "try again later")
        return None, None
    answer = reply.answer
    message = answer.message
    body: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}
    token = body.get("token")
    if answer.status == 200 and body.get("twoFAPending"):
        target.failed(
            "credentials",
            f"the LibreChat account {email!r} has two-factor authentication: the login "
            "asks for a 2FA code, which the sidecar cannot give",
            "use a service account without 2FA (LIBRECHAT_EMAIL/LIBRECHAT_PASSWORD), or "
            "turn 2FA off for this account in LibreChat's settings",
        )
    elif answer.status == 200 and isinstance(token, str) and token:
        target.secrets.append(token)
        target.passed(
            "credentials", f"LibreChat accepted the login of {email!r} (one login this run)"
        )
        return token, reply.received_at
    elif answer.status == 429:
        wait = _wait_s(reply)
        target.failed(
            "credentials",
            "LibreChat's login rate limit was hit (HTTP 429: 7 logins per 5 minutes per "
            f"address by default): wait {wait:.0f} s before the next login",
            f"wait {wait:.0f} s and run doctor again; if it comes back, something else logs "
            "in too often from this address (LibreChat's LOGIN_MAX and LOGIN_WINDOW)",
        )
    elif message == "Incorrect password.":
        target.failed(
            "credentials",
            "LibreChat refused the login (wrong password)",
            "set LIBRECHAT_PASSWORD to the service account's password",
        )
    elif message == "Email does not exist.":
        target.failed(
            "credentials",
            f"LibreChat has no account with the e-mail {email!r}",
            "set LIBRECHAT_EMAIL to the service account's e-mail (or create the account)",
        )
    elif message == "Email not verified.":
        target.failed(
            "credentials",
            f"the LibreChat account {email!r} has not verified its e-mail",
            "verify the account's e-mail, or set ALLOW_UNVERIFIED_EMAIL_LOGIN=true in LibreChat",
        )
    elif answer.status == 403:
        target.failed(
            "credentials",
            "LibreChat refused the login with HTTP 403: the account or this address is "
            "banned (after repeated violations, for BAN_DURATION, 2 h by default)",
            "wait for the ban to end, or lift it in LibreChat",
        )
    else:
        target.failed(
            "credentials",
            f"LibreChat did not log the account in ({answer.describe()})",
            "check LIBRECHAT_EMAIL and LIBRECHAT_PASSWORD, and LibreChat's log",
        )
    return None, None


def _wait_s(reply: Reply) -> float:
    """How long a 429 asks to wait: its Retry-After, else the minutes its message names,
    else LibreChat's default login window."""
    header = parse_retry_after(reply.response.headers.get("retry-after"))
    if header is not None:
        return header
    match = _MINUTES.search(reply.answer.message or "")
    return float(match.group(1)) * 60 if match else DEFAULT_LOGIN_WINDOW_S


async def _version(target: Target, token: str) -> None:
    """LibreChat tells no version; the format of `GET /api/convos` dates it (B5.3)."""
    try:
        reply = await target.request(
            "GET", "/api/convos", params={"limit": 1}, headers=_bearer(token)
        )
    except UpstreamError:
        target.passed("version", "not told by LibreChat's API")
        return
    body = reply.answer.body
    told = "not told by LibreChat's API"
    if isinstance(body, dict) and "pages" in body:
        target.passed("version", f"{told}; GET /api/convos has page numbers: 0.7.7 or earlier")
    elif isinstance(body, dict) and isinstance(body.get("nextCursor"), str):
        era = "0.8.2 or later" if _is_json_cursor(body["nextCursor"]) else "0.7.8 to 0.8.1"
        target.passed("version", f"{told}; GET /api/convos has its cursor format: {era}")
    else:
        target.passed("version", f"{told}; GET /api/convos has cursors: 0.7.8 or later")


def _is_json_cursor(cursor: str) -> bool:
    try:
        return isinstance(json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4))), dict)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
