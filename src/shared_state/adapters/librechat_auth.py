"""Credentials for the native LibreChat adapter: a fixed bearer token, or a service-account
session that logs in, refreshes before expiry and keeps within LibreChat's login limit.

The login budget (the times of recent login attempts and a 429's back-off, never a
credential) can be kept in a small file, so that a process that restarts in a loop
does not log in once per start and get the sidecar's address banned.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Annotated

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared_state.adapters.http import JsonApi
from shared_state.adapters.wire import WireModel
from shared_state.atomic_file import write_atomically
from shared_state.errors import UpstreamAuthError, UpstreamResponseInvalid, UpstreamStatusError

log = logging.getLogger(__name__)

LOGIN_PATH = "/api/auth/login"
REFRESH_PATH = "/api/auth/refresh"
REFRESH_COOKIE = "refreshToken"
DEFAULT_TOKEN_LIFETIME_S = 15 * 60.0  # LibreChat's default SESSION_EXPIRY

_REFUSED = (401, 403)
_LOGIN_REFUSALS = {
    "Incorrect password.": "incorrect password (check LIBRECHAT_PASSWORD)",
    "Email does not exist.": "no account has that email (check LIBRECHAT_EMAIL)",
    "Email not verified.": "the account's email is not verified",
}


class StaticToken:
    """A bearer token given in the configuration; nothing to renew when it is refused."""

    def __init__(self, token: str) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}

    async def headers(self) -> Mapping[str, str]:
        return self._headers

    async def reject(self) -> None:
        """Nothing to renew: the retried request fails with the upstream's status."""


@dataclass(frozen=True)
class SessionStatus:
    """What a `LibreChatSession` is doing, for diagnostics; it holds no secret."""

    has_access_token: bool
    refresh_due_at: datetime | None
    has_refresh_cookie: bool
    last_login_at: datetime | None
    last_refresh_at: datetime | None
    logins_in_window: int
    backoff_until: datetime | None


class _AuthAnswer(WireModel):
    """The JSON answer of a login or a refresh."""

    token: str | None = None
    two_fa_pending: bool | None = Field(None, alias="twoFAPending")


_AUTH_ANSWER = TypeAdapter(_AuthAnswer)


class _LoginBudget(BaseModel):
    """The login budget file: when logins were tried (epoch seconds), and until when a
    429 asked to wait. Nothing else: no credential, no token."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    login_times: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=list, alias="loginTimes", max_length=1000
    )
    backoff_until: Annotated[float, Field(allow_inf_nan=False)] | None = Field(
        None, alias="backoffUntil"
    )


_BUDGET = TypeAdapter(_LoginBudget)


class LibreChatSession:
    """Logs a service account in with `POST /api/auth/login`, caches the access token
    until shortly before it expires, and renews it with `POST /api/auth/refresh`.

    LibreChat allows 7 login attempts per 5 minutes per IP and bans repeat offenders, so
    a login happens only when there is no refresh cookie or the refresh is refused, never
    more than `max_logins` times per `login_window_s`, and never during a 429's back-off.
    With `budget_path`, that budget is read at start and written on every attempt, so it
    holds across restarts.
    Renewals are single-flight: concurrent callers await one shared renewal task and get
    its token or its failure (refresh tokens rotate, so two refreshes at once would
    invalidate each other).
    """

    def __init__(
        self,
        api: JsonApi,
        *,
        email: str,
        password: str,
        clock: Callable[[], float] = time.time,
        refresh_margin_s: float = 60,
        max_logins: int = 5,
        login_window_s: float = 300,
        budget_path: Path | None = None,
    ) -> None:
        self._api = api
        self._email = email
        self._password = password
        self._clock = clock
        self._refresh_margin_s = refresh_margin_s
        self._max_logins = max_logins
        self._login_window_s = login_window_s
        self._token: str | None = None
        self._refresh_due_at = 0.0
        self._refresh_cookie: str | None = None
        self._login_times: deque[float] = deque()
        self._backoff_until: float | None = None
        self._last_login_at: float | None = None
        self._last_refresh_at: float | None = None
        self._renewal: asyncio.Task[str] | None = None
        self._budget_path = budget_path
        if budget_path is not None:
            self._load_budget(budget_path)
        # The token each task last sent, so that a late 401 for an old token does not
        # throw away the token another task has just renewed.
        self._sent_token: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"librechat_sent_token_{id(self)}", default=None
        )

    @property
    def status(self) -> SessionStatus:
        now = self._clock()
        return SessionStatus(
            has_access_token=self._token is not None,
            refresh_due_at=_utc(self._refresh_due_at) if self._token is not None else None,
            has_refresh_cookie=self._refresh_cookie is not None,
            last_login_at=_utc(self._last_login_at),
            last_refresh_at=_utc(self._last_refresh_at),
            logins_in_window=len(self._recent_logins(now)),
            backoff_until=_utc(self._next_login_at(now)),
        )

    async def headers(self) -> Mapping[str, str]:
        token = self._fresh_token()
        if token is None:
            if self._renewal is None:
                self._renewal = asyncio.create_task(self._renew())
                self._renewal.add_done_callback(_consume_outcome)
            # Shielded: a caller cancelled mid-refresh must not lose the rotated cookie.
            token = await asyncio.shield(self._renewal)
        self._sent_token.set(token)
        return {"Authorization": f"Bearer {token}"}

    async def reject(self) -> None:
        sent = self._sent_token.get()
        if sent is None or sent == self._token:
            self._token = None

    def _fresh_token(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_due_at:
            return self._token
        return None

    async def _renew(self) -> str:
        try:
            token = await self._refresh() if self._refresh_cookie is not None else None
            return token if token is not None else await self._login()
        finally:
            self._renewal = None

    async def _refresh(self) -> str | None:
        """A new access token from the refresh cookie, or None when LibreChat refused it."""
        response = await self._api.send(
            "POST", REFRESH_PATH, headers={"Cookie": f"{REFRESH_COOKIE}={self._refresh_cookie}"}
        )
        self._forget_jar_cookies(response)
        if response.status_code in _REFUSED:
            log.info(
                "LibreChat refused the refresh (HTTP %d); logging in again", response.status_code
            )
            self._refresh_cookie = None
            return None
        if response.is_error:
            raise _status_error(self._api.source, response, REFRESH_PATH)
        try:
            token = self._api.decode(response, "POST", REFRESH_PATH, _AUTH_ANSWER).token
        except UpstreamResponseInvalid:
            token = None  # "Refresh token not provided" is a 200 with a text body
        if token is None:
            log.info("LibreChat answered the refresh without a token; logging in again")
            self._refresh_cookie = None
            return None
        self._accept(token, response)
        self._last_refresh_at = self._clock()
        return token

    async def _login(self) -> str:
        now = self._clock()
        next_login_at = self._next_login_at(now)
        if next_login_at is not None:
            limit = f"at most {self._max_logins} logins per {self._login_window_s:g} s"
            why = limit if self._backoff_until is None or now >= self._backoff_until else None
            raise _backoff_error(self._api.source, next_login_at, why)
        self._login_times.append(now)
        self._last_login_at = now
        await self._save_budget()
        response = await self._api.send(
            "POST", LOGIN_PATH, json={"email": self._email, "password": self._password}
        )
        self._forget_jar_cookies(response)
        if response.status_code == 429:
            self._backoff_until = now + _retry_after_s(response, now, self._login_window_s)
            await self._save_budget()
            log.warning("LibreChat rate-limited the login; backing off")
            raise _backoff_error(self._api.source, self._backoff_until, None)
        if response.status_code in (*_REFUSED, 404, 422):
            raise UpstreamAuthError(self._api.source, _login_refusal(response))
        if response.is_error:
            raise _status_error(self._api.source, response, LOGIN_PATH)
        answer = self._api.decode(response, "POST", LOGIN_PATH, _AUTH_ANSWER)
        if answer.two_fa_pending:
            raise UpstreamAuthError(
                self._api.source,
                "the LibreChat account has two-factor authentication; "
                "use a service account without 2FA",
            )
        if not answer.token:
            raise UpstreamResponseInvalid(self._api.source, f"POST {LOGIN_PATH} answered no token")
        self._accept(answer.token, response)
        if self._refresh_cookie is None:
            log.warning("LibreChat set no refresh cookie; the session will log in again")
        log.info("Logged in to LibreChat")
        return answer.token

    def _accept(self, token: str, response: httpx.Response) -> None:
        now = self._clock()
        lifetime_s = _token_lifetime_s(token, now)
        self._token = token
        self._refresh_due_at = now + lifetime_s - min(self._refresh_margin_s, lifetime_s / 2)
        cookie = _newest_refresh_cookie(response)
        if cookie is not None:
            self._refresh_cookie = cookie

    def _recent_logins(self, now: float) -> deque[float]:
        while self._login_times and self._login_times[0] <= now - self._login_window_s:
            self._login_times.popleft()
        return self._login_times

    def _next_login_at(self, now: float) -> float | None:
        """When the next login may be tried, or None when it may be tried now."""
        waits = []
        if self._backoff_until is not None and now < self._backoff_until:
            waits.append(self._backoff_until)
        recent = self._recent_logins(now)
        if len(recent) >= self._max_logins:
            waits.append(recent[len(recent) - self._max_logins] + self._login_window_s)
        return max(waits, default=None)

    def _load_budget(self, path: Path) -> None:
        """Take over the login attempts (and back-off) a previous process recorded."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read the LibreChat login budget %s: %s", path, exc.strerror)
            return
        try:
            budget = _BUDGET.validate_json(raw)
        except ValueError:
            log.warning("ignoring the LibreChat login budget %s: not a budget file", path)
            return
        now = self._clock()
        # Times ahead of the clock (it went back) count as now: never a login too many.
        recent = sorted(min(t, now) for t in budget.login_times if t > now - self._login_window_s)
        self._login_times.extend(recent[-self._max_logins :])
        if budget.backoff_until is not None and budget.backoff_until > now:
            self._backoff_until = min(budget.backoff_until, now + self._login_window_s * 12)
        if recent:
            self._last_login_at = recent[-1]

    async def _save_budget(self) -> None:
        if self._budget_path is None:
            return
        budget = _LoginBudget(
            login_times=list(self._recent_logins(self._clock())),
            backoff_until=self._backoff_until,
        )
        try:
            await asyncio.to_thread(
                write_atomically, self._budget_path, _BUDGET.dump_json(budget, by_alias=True)
            )
        except OSError as exc:
            log.warning(
                "cannot write the LibreChat login budget %s: %s", self._budget_path, exc.strerror
            )

    def _forget_jar_cookies(self, response: httpx.Response) -> None:
        # httpx files every Set-Cookie in the client's jar, which would then send the
        # refresh token along with every data request; this session keeps it itself.
        names = {_cookie_name(header) for header in response.headers.get_list("set-cookie")}
        self._api.forget_cookies(name for name in names if name)


def _consume_outcome(task: asyncio.Task[str]) -> None:
    """Mark a renewal's failure as seen even when every waiter was cancelled."""
    if not task.cancelled():
        task.exception()


def _utc(moment: float | None) -> datetime | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC)


def _backoff_error(source: str, next_login_at: float, why: str | None) -> UpstreamAuthError:
    when = datetime.fromtimestamp(next_login_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reason = f" ({why})" if why else ""
    return UpstreamAuthError(
        source, f"LibreChat login rate-limited{reason}; next attempt after {when}"
    )


def _status_error(source: str, response: httpx.Response, path: str) -> UpstreamStatusError:
    status = response.status_code
    return UpstreamStatusError(source, f"POST {path} answered HTTP {status}", status=status)


def _login_refusal(response: httpx.Response) -> str:
    """Our own words for a refused login; the upstream's body is never passed on."""
    status = response.status_code
    try:
        message = json.loads(response.content).get("message")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str) and message in _LOGIN_REFUSALS:
        return f"LibreChat refused the login: {_LOGIN_REFUSALS[message]}"
    if status == 403:
        return "LibreChat refused the login (HTTP 403): the account or this address may be banned"
    return f"LibreChat refused the login (HTTP {status})"


def _retry_after_s(response: httpx.Response, now: float, default_s: float) -> float:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return default_s
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return default_s


def _token_lifetime_s(token: str, now: float) -> float:
    """How long a JWT lives, from its `exp` (and `iat`, which makes clock skew harmless);
    15 minutes when the payload cannot be read. The signature is not checked."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expires_at = float(claims["exp"])
        issued_at = claims.get("iat")
        start = now if issued_at is None else float(issued_at)
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return DEFAULT_TOKEN_LIFETIME_S
    lifetime_s = expires_at - start
    return max(lifetime_s, 0.0) if math.isfinite(lifetime_s) else DEFAULT_TOKEN_LIFETIME_S


def _cookie_name(header: str) -> str:
    return header.split("=", 1)[0].strip()


def _newest_refresh_cookie(response: httpx.Response) -> str | None:
    """The last `refreshToken` that `response` sets, read from its Set-Cookie headers."""
    newest = None
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(header)
        except CookieError:
            continue
        morsel = cookie.get(REFRESH_COOKIE)
        if morsel is not None and morsel.value:
            newest = morsel.value
    return newest
