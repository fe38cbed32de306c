"""LibreChat credentials on the wire: `StaticToken`, and `LibreChatSession` logging in,
caching its JWT, refreshing it before expiry with the rotating `refreshToken` cookie sent
by hand, logging in again only when the refresh fails, and keeping within the login
rate limit (upstream-apis.md B2, B7, D)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import BaseModel, TypeAdapter

from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.adapters.librechat_auth import LibreChatSession, StaticToken
from shared_state.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamResponseInvalid,
    UpstreamStatusError,
)

BASE_URL = "http://librechat.test"
EMAIL = "sync@example.com"
PASSWORD = "CANARY-password-5d1e"
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
LIFETIME_S = 900


class Me(BaseModel):
    id: str


ME = TypeAdapter(Me)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking HS256 JWT with `claims`; the session never checks signatures."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.CANARY-signature"


@dataclass
class FakeAuth:
    """LibreChat's auth routes and `GET /api/user`, with rotating refresh cookies.

    `login_mode` and `refresh_mode` choose the answers; the lists record what arrived."""

    clock: Clock
    login_mode: str = "ok"
    refresh_mode: str = "ok"
    secure_cookies: bool = True
    lifetime_s: float = LIFETIME_S
    retry_after: str | None = None
    logins: list[dict[str, Any]] = field(default_factory=list)
    refresh_cookies: list[str | None] = field(default_factory=list)
    data_requests: list[httpx.Request] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    issued: int = 0

    def _issue(self) -> tuple[str, str]:
        self.issued += 1
        now = int(self.clock())
        claims = {"id": "665f", "username": "sync", "iat": now, "exp": now + self.lifetime_s}
        token = make_jwt({**claims, "n": self.issued})
        self.valid_tokens.add(token)
        return token, f"CANARY-rt-{self.issued}"

    def _cookie_headers(self, refresh: str) -> list[tuple[str, str]]:
        flags = "Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if self.secure_cookies else "")
        return [
            (
                "set-cookie",
                f"refreshToken={refresh}; Expires=Fri, 22 Jan 2027 08:00:00 GMT; {flags}",
            ),
            ("set-cookie", f"token_provider=librechat; {flags}"),
        ]

    def login(self, request: httpx.Request) -> httpx.Response:
        self.logins.append(json.loads(request.content))
        mode = self.login_mode
        if mode == "wrong-password":
            return httpx.Response(404, json={"message": "Incorrect password."})
        if mode == "no-such-email":
            return httpx.Response(404, json={"message": "Email does not exist."})
        if mode == "2fa":
            return httpx.Response(200, json={"twoFAPending": True, "tempToken": "CANARY-temp"})
        if mode == "429":
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return httpx.Response(429, json={"message": "Too many login attempts"}, headers=headers)
        if mode == "500":
            return httpx.Response(500, text="Something went wrong")
        if mode == "html":
            return httpx.Response(200, html="<!DOCTYPE html><title>LibreChat</title>")
        token, refresh = self._issue()
        cookies = [] if mode == "no-cookie" else self._cookie_headers(refresh)
        return httpx.Response(200, json={"token": token, "user": {"id": "665f"}}, headers=cookies)

    def refresh(self, request: httpx.Request) -> httpx.Response:
        cookie = request.headers.get("cookie")
        self.refresh_cookies.append(cookie)
        mode = self.refresh_mode
        if mode == "403":
            return httpx.Response(403, text="Invalid refresh token")
        if mode == "401":
            return httpx.Response(401, text="Refresh token expired or not found for this user")
        if mode == "text" or cookie is None:
            return httpx.Response(200, text="Refresh token not provided")
        if mode == "no-token":
            return httpx.Response(200, json={"user": {"id": "665f"}})
        if mode == "500":
            return httpx.Response(500, text="Error refreshing token")
        token, refresh = self._issue()
        return httpx.Response(
            200,
            json={"token": token, "user": {"id": "665f"}},
            headers=self._cookie_headers(refresh),
        )

    def user(self, request: httpx.Request) -> httpx.Response:
        self.data_requests.append(request)
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.valid_tokens:
            return httpx.Response(401, json={"message": "Unauthorized"})
        return httpx.Response(200, json={"id": "665f"})

    def revoke_all(self) -> None:
        self.valid_tokens.clear()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeAuth:
    return FakeAuth(clock)


@pytest.fixture
def wire(fake: FakeAuth) -> Iterator[respx.MockRouter]:
    """LibreChat's auth routes and `GET /api/user`, served by `fake`."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        router.post("/api/auth/login").mock(side_effect=fake.login)
        router.post("/api/auth/refresh").mock(side_effect=fake.refresh)
        router.get("/api/user").mock(side_effect=fake.user)
        yield router


@pytest.fixture
async def client(wire: respx.MockRouter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def session(client: httpx.AsyncClient, retry_policy: RetryPolicy, clock: Clock) -> LibreChatSession:
    """A session whose `JsonApi` has no credentials of its own, on the same client."""
    auth_api = JsonApi(client, source="librechat", retry=retry_policy)
    return LibreChatSession(auth_api, email=EMAIL, password=PASSWORD, clock=clock)


@pytest.fixture
def api(client: httpx.AsyncClient, retry_policy: RetryPolicy, session: LibreChatSession) -> JsonApi:
    """The data `JsonApi`, authenticated by `session`."""
    return JsonApi(client, source="librechat", retry=retry_policy, credentials=session)


def bearer(headers: Any) -> str:
    return str(headers["Authorization"]).removeprefix("Bearer ")


# --- StaticToken ----------------------------------------------------------------------------


async def test_static_token_sends_its_token(
    client: httpx.AsyncClient, retry_policy: RetryPolicy, fake: FakeAuth
) -> None:
    """Every request carries `Authorization: Bearer <token>`; no login happens."""
    token = make_jwt({"id": "665f", "exp": START + 3600})
    fake.valid_tokens.add(token)
    api = JsonApi(client, source="librechat", retry=retry_policy, credentials=StaticToken(token))

    assert await api.get("/api/user", ME) == Me(id="665f")

    assert fake.data_requests[-1].headers["Authorization"] == f"Bearer {token}"
    assert fake.logins == []


async def test_static_token_refused_is_an_auth_error_naming_the_status(
    client: httpx.AsyncClient, retry_policy: RetryPolicy, fake: FakeAuth
) -> None:
    """A refused static token is sent once more, then reported as refused credentials."""
    api = JsonApi(client, source="librechat", retry=retry_policy, credentials=StaticToken("stale"))

    with pytest.raises(UpstreamAuthError, match="HTTP 401") as caught:
        await api.get("/api/user", ME)

    assert "stale" not in str(caught.value)
    assert len(fake.data_requests) == 2
    assert fake.logins == []


# --- login and the cached token -------------------------------------------------------------


async def test_one_login_serves_many_requests(
    api: JsonApi, session: LibreChatSession, fake: FakeAuth
) -> None:
    """The first request logs in with email and password; the next ones reuse the token."""
    for _ in range(5):
        await api.get("/api/user", ME)

    assert fake.logins == [{"email": EMAIL, "password": PASSWORD}]
    assert fake.refresh_cookies == []
    assert len({r.headers["Authorization"] for r in fake.data_requests}) == 1
    assert session.status.logins_in_window == 1
    assert session.status.last_login_at is not None
    assert session.status.last_login_at.timestamp() == START


async def test_concurrent_callers_share_one_login(
    session: LibreChatSession, fake: FakeAuth
) -> None:
    """Five `headers()` at once make one login and all get its token."""
    results = await asyncio.gather(*(session.headers() for _ in range(5)))

    assert len(fake.logins) == 1
    assert len({bearer(headers) for headers in results}) == 1


async def test_concurrent_callers_share_one_failed_login(
    session: LibreChatSession, fake: FakeAuth
) -> None:
    """A failing login is tried once for all concurrent callers, who all get its error."""
    fake.login_mode = "500"

    results = await asyncio.gather(*(session.headers() for _ in range(4)), return_exceptions=True)

    assert len(fake.logins) == 1
    assert all(isinstance(result, UpstreamStatusError) for result in results)


async def test_the_refresh_cookie_never_enters_the_clients_jar(
    api: JsonApi, client: httpx.AsyncClient, fake: FakeAuth
) -> None:
    """Even a non-Secure cookie is kept by the session alone: data requests carry none."""
    fake.secure_cookies = False

    await api.get("/api/user", ME)
    await api.get("/api/user", ME)

    assert list(client.cookies.jar) == []
    assert all("cookie" not in request.headers for request in fake.data_requests)


# --- refresh --------------------------------------------------------------------------------


async def test_token_is_refreshed_shortly_before_it_expires(
    session: LibreChatSession, fake: FakeAuth, clock: Clock
) -> None:
    """Up to `refresh_margin_s` before `exp` the token is reused; after that it is refreshed
    with the Secure cookie sent by hand over plain http, and no second login happens."""
    first = bearer(await session.headers())

    clock.now = START + LIFETIME_S - 61
    assert bearer(await session.headers()) == first
    assert fake.refresh_cookies == []

    clock.now = START + LIFETIME_S - 59
    second = bearer(await session.headers())

    assert second != first
    assert fake.refresh_cookies == ["refreshToken=CANARY-rt-1"]
    assert len(fake.logins) == 1
    assert session.status.last_refresh_at is not None


async def test_each_refresh_sends_the_newest_rotated_cookie(
    session: LibreChatSession, fake: FakeAuth, clock: Clock
) -> None:
    """The cookie rotates on every refresh: the second refresh sends the second cookie."""
    await session.headers()
    clock.now += LIFETIME_S
    await session.headers()
    clock.now += LIFETIME_S
    await session.headers()

    assert fake.refresh_cookies == ["refreshToken=CANARY-rt-1", "refreshToken=CANARY-rt-2"]
    assert len(fake.logins) == 1


async def test_concurrent_callers_share_one_refresh(
    session: LibreChatSession, fake: FakeAuth, clock: Clock
) -> None:
    """Refresh tokens rotate, so concurrent callers must share one refresh."""
    await session.headers()
    clock.now += LIFETIME_S

    results = await asyncio.gather(*(session.headers() for _ in range(5)))

    assert len(fake.refresh_cookies) == 1
    assert len({bearer(headers) for headers in results}) == 1


async def test_a_refused_request_refreshes_and_succeeds(
    api: JsonApi, fake: FakeAuth, session: LibreChatSession
) -> None:
    """A 401 on a data request (token revoked) refreshes the token, without a login, and
    the request is sent again with the new token."""
    await api.get("/api/user", ME)
    fake.revoke_all()

    assert await api.get("/api/user", ME) == Me(id="665f")

    assert len(fake.logins) == 1
    assert fake.refresh_cookies == ["refreshToken=CANARY-rt-1"]
    assert [r.url.path for r in fake.data_requests] == ["/api/user"] * 3
    assert session.status.has_access_token


async def test_concurrent_refusals_cost_one_refresh(api: JsonApi, fake: FakeAuth) -> None:
    """Three reads refused at once renew the token once, not once each."""
    await api.get("/api/user", ME)
    fake.revoke_all()

    await asyncio.gather(*(api.get("/api/user", ME) for _ in range(3)))

    assert len(fake.refresh_cookies) == 1
    assert len(fake.logins) == 1


@pytest.mark.parametrize("refresh_mode", ["403", "401", "text", "no-token"])
async def test_a_failed_refresh_logs_in_exactly_once(
    session: LibreChatSession, fake: FakeAuth, clock: Clock, refresh_mode: str
) -> None:
    """A refresh answered 401/403, 200 text ("Refresh token not provided") or JSON without
    a token leads to one new login, whose token is then used."""
    await session.headers()
    fake.refresh_mode = refresh_mode
    clock.now += LIFETIME_S

    token = bearer(await session.headers())

    assert len(fake.refresh_cookies) == 1
    assert len(fake.logins) == 2
    assert token in fake.valid_tokens
    last_login_at = session.status.last_login_at
    assert last_login_at is not None
    assert last_login_at.timestamp() == START + LIFETIME_S


async def test_a_server_error_on_refresh_does_not_spend_a_login(
    session: LibreChatSession, fake: FakeAuth, clock: Clock
) -> None:
    """A 500 on the refresh is an upstream failure, not a refused session: no login."""
    await session.headers()
    fake.refresh_mode = "500"
    clock.now += LIFETIME_S

    with pytest.raises(UpstreamStatusError) as caught:
        await session.headers()

    assert caught.value.status == 500
    assert len(fake.logins) == 1


async def test_an_unreadable_token_is_assumed_to_live_15_minutes(
    session: LibreChatSession, fake: FakeAuth, clock: Clock, wire: respx.MockRouter
) -> None:
    """A token whose payload cannot be decoded is refreshed 60 s before 15 minutes."""
    wire.post("/api/auth/login").respond(
        200,
        json={"token": "not-a-jwt", "user": {}},
        headers={"set-cookie": "refreshToken=CANARY-rt-opaque; Path=/; HttpOnly; Secure"},
    )
    await session.headers()

    clock.now = START + 900 - 61
    assert bearer(await session.headers()) == "not-a-jwt"
    clock.now = START + 900 - 59
    await session.headers()

    assert fake.refresh_cookies == ["refreshToken=CANARY-rt-opaque"]


async def test_a_token_is_refreshed_by_its_own_lifetime_whatever_the_clock_says(
    session: LibreChatSession, fake: FakeAuth, clock: Clock
) -> None:
    """`exp - iat` is the lifetime: a server clock ahead of ours does not stretch it."""
    fake.clock = Clock()
    fake.clock.now = START + 3600  # the server's clock runs an hour ahead
    await session.headers()

    clock.now = START + LIFETIME_S - 59
    await session.headers()

    assert len(fake.refresh_cookies) == 1


async def test_a_cancelled_caller_does_not_lose_the_rotated_cookie(
    retry_policy: RetryPolicy, clock: Clock
) -> None:
    """A caller cancelled while its refresh is on the wire does not abort the refresh:
    the rotated cookie is kept and no login is needed afterwards."""
    fake = FakeAuth(clock)
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/login":
            return fake.login(request)
        arrived.set()
        await release.wait()
        return fake.refresh(request)

    transport = httpx.MockTransport(handle)
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport) as client:
        session = LibreChatSession(
            JsonApi(client, source="librechat", retry=retry_policy),
            email=EMAIL,
            password=PASSWORD,
            clock=clock,
        )
        await session.headers()
        clock.now += LIFETIME_S
        caller = asyncio.create_task(session.headers())
        await arrived.wait()
        caller.cancel()
        release.set()

        refreshed = bearer(await session.headers())
        clock.now += LIFETIME_S
        await session.headers()

    assert caller.cancelled()
    assert refreshed in fake.valid_tokens
    assert fake.refresh_cookies == ["refreshToken=CANARY-rt-1", "refreshToken=CANARY-rt-2"]
    assert len(fake.logins) == 1


# --- login failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login_mode", "problem"),
    [
        ("wrong-password", "incorrect password"),
        ("no-such-email", "no account has that email"),
    ],
)
async def test_refused_credentials_raise_an_auth_error_naming_the_problem(
    session: LibreChatSession, fake: FakeAuth, login_mode: str, problem: str
) -> None:
    """LibreChat's 404 for bad credentials is an `UpstreamAuthError` in our own words."""
    fake.login_mode = login_mode

    with pytest.raises(UpstreamAuthError) as caught:
        await session.headers()

    assert problem in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert caught.value.source == "librechat"


async def test_two_factor_accounts_are_refused_with_a_clear_error(
    session: LibreChatSession, fake: FakeAuth
) -> None:
    """`twoFAPending` means this account cannot be used by a sidecar."""
    fake.login_mode = "2fa"

    with pytest.raises(UpstreamAuthError) as caught:
        await session.headers()

    assert str(caught.value) == (
        "librechat: the LibreChat account has two-factor authentication; "
        "use a service account without 2FA"
    )


async def test_a_server_error_on_login_is_a_status_error(
    session: LibreChatSession, fake: FakeAuth
) -> None:
    """A 500 on the login is the upstream's failure, reported with its status."""
    fake.login_mode = "500"

    with pytest.raises(UpstreamStatusError) as caught:
        await session.headers()

    assert str(caught.value) == "librechat: POST /api/auth/login answered HTTP 500"


async def test_an_html_login_answer_is_invalid(session: LibreChatSession, fake: FakeAuth) -> None:
    """A 200 HTML page (a wrong base URL) is not a login."""
    fake.login_mode = "html"

    with pytest.raises(UpstreamResponseInvalid):
        await session.headers()


async def test_a_rate_limited_login_backs_off_for_the_window(
    session: LibreChatSession, fake: FakeAuth, clock: Clock
) -> None:
    """After a 429 no login is tried until `login_window_s` has passed."""
    fake.login_mode = "429"

    with pytest.raises(UpstreamAuthError) as caught:
        await session.headers()
    assert str(caught.value) == (
        "librechat: LibreChat login rate-limited; next attempt after 2027-01-15T08:05:00Z"
    )

    fake.login_mode = "ok"
    clock.now = START + 299
    with pytest.raises(UpstreamAuthError, match="rate-limited"):
        await session.headers()
    assert len(fake.logins) == 1
    assert session.status.backoff_until is not None
    assert session.status.backoff_until.timestamp() == START + 300

    clock.now = START + 300
    await session.headers()
    assert len(fake.logins) == 2


async def test_a_rate_limited_login_honours_retry_after(
    session: LibreChatSession, fake: FakeAuth, clock: Clock
) -> None:
    """`Retry-After: 120` shortens the back-off to two minutes."""
    fake.login_mode, fake.retry_after = "429", "120"
    with pytest.raises(UpstreamAuthError, match="after 2027-01-15T08:02:00Z"):
        await session.headers()

    fake.login_mode = "ok"
    clock.now = START + 119
    with pytest.raises(UpstreamAuthError):
        await session.headers()
    clock.now = START + 120
    await session.headers()

    assert len(fake.logins) == 2


async def test_own_login_budget_is_never_exceeded(
    client: httpx.AsyncClient, retry_policy: RetryPolicy, fake: FakeAuth, clock: Clock
) -> None:
    """At most `max_logins` logins per `login_window_s`: the next one is refused without a
    call, and allowed again once the oldest login has left the window."""
    fake.login_mode = "no-cookie"  # no refresh cookie: every renewal must log in
    session = LibreChatSession(
        JsonApi(client, source="librechat", retry=retry_policy),
        email=EMAIL,
        password=PASSWORD,
        clock=clock,
        max_logins=2,
        login_window_s=300,
    )
    await session.headers()
    clock.now = START + 10
    await session.reject()
    await session.headers()
    await session.reject()

    with pytest.raises(UpstreamAuthError) as caught:
        await session.headers()

    assert str(caught.value) == (
        "librechat: LibreChat login rate-limited (at most 2 logins per 300 s); "
        "next attempt after 2027-01-15T08:05:00Z"
    )
    assert len(fake.logins) == 2
    assert session.status.logins_in_window == 2

    clock.now = START + 300
    await session.headers()
    assert len(fake.logins) == 3


async def test_no_secret_reaches_errors_logs_or_status(
    session: LibreChatSession,
    fake: FakeAuth,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The password, tokens and cookies appear in no error, log line or status."""
    caplog.set_level(logging.DEBUG)
    errors: list[UpstreamError] = []
    await session.headers()
    for refresh_mode, login_mode in [("403", "wrong-password"), ("text", "2fa"), ("401", "429")]:
        fake.refresh_mode, fake.login_mode = refresh_mode, login_mode
        clock.now += LIFETIME_S
        try:
            await session.headers()
        except UpstreamError as exc:
            errors.append(exc)
        fake.login_mode, fake.refresh_mode = "ok", "ok"
        clock.now += 600
        await session.headers()

    shown = " ".join([*map(str, errors), caplog.text, repr(session.status)])
    assert len(errors) == 3
    assert "CANARY" not in shown
    assert all(token not in shown for token in fake.valid_tokens)


async def test_a_late_refusal_of_an_old_token_keeps_the_renewed_one(
    retry_policy: RetryPolicy, clock: Clock
) -> None:
    """A 401 that arrives for the old token after another request already renewed it
    does not throw the new token away: one refresh in all."""
    fake = FakeAuth(clock)
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/auth/login":
            return fake.login(request)
        if path == "/api/auth/refresh":
            return fake.refresh(request)
        answer = fake.user(request)
        if answer.status_code == 401 and "slow" in request.url.params:
            arrived.set()
            await release.wait()
        return answer

    transport = httpx.MockTransport(handle)
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport) as client:
        session = LibreChatSession(
            JsonApi(client, source="librechat", retry=retry_policy),
            email=EMAIL,
            password=PASSWORD,
            clock=clock,
        )
        api = JsonApi(client, source="librechat", retry=retry_policy, credentials=session)
        await api.get("/api/user", ME)
        fake.revoke_all()
        slow = asyncio.create_task(api.get("/api/user", ME, slow=1))
        await arrived.wait()
        await api.get("/api/user", ME)
        release.set()
        await slow

    assert len(fake.refresh_cookies) == 1
    assert len(fake.logins) == 1


# --- the login budget across restarts ----------------------------------------------------


def budget_session(
    client: httpx.AsyncClient, retry_policy: RetryPolicy, clock: Clock, path: Path
) -> LibreChatSession:
    """A new session (a restarted process) that keeps its login budget at `path`."""
    return LibreChatSession(
        JsonApi(client, source="librechat", retry=retry_policy),
        email=EMAIL,
        password=PASSWORD,
        clock=clock,
        max_logins=3,
        login_window_s=300,
        budget_path=path,
    )


async def test_the_login_budget_holds_across_restarts(
    client: httpx.AsyncClient,
    retry_policy: RetryPolicy,
    fake: FakeAuth,
    clock: Clock,
    tmp_path: Path,
) -> None:
    """Five restarts within the window log in only `max_logins` times; the file holds
    times only, never a credential or a token."""
    path = tmp_path / "snapshot.json.librechat-logins"
    refused = 0
    for restart in range(5):
        clock.now = START + restart
        try:
            await budget_session(client, retry_policy, clock, path).headers()
        except UpstreamAuthError:
            refused += 1

    assert len(fake.logins) == 3
    assert refused == 2
    content = path.read_bytes()
    assert json.loads(content)["loginTimes"] == [START, START + 1, START + 2]
    for secret in (PASSWORD.encode(), b"CANARY", EMAIL.encode()):
        assert secret not in content

    clock.now = START + 300  # the first login has left the window
    await budget_session(client, retry_policy, clock, path).headers()
    assert len(fake.logins) == 4


async def test_a_rate_limit_back_off_holds_across_restarts(
    client: httpx.AsyncClient,
    retry_policy: RetryPolicy,
    fake: FakeAuth,
    clock: Clock,
    tmp_path: Path,
) -> None:
    """After LibreChat answered 429, a restarted session waits out the back-off too."""
    path = tmp_path / "budget"
    fake.login_mode = "429"
    fake.retry_after = "120"
    with pytest.raises(UpstreamAuthError):
        await budget_session(client, retry_policy, clock, path).headers()
    fake.login_mode = "ok"

    clock.now = START + 60
    with pytest.raises(UpstreamAuthError, match="next attempt after 2027-01-15T08:02:00Z"):
        await budget_session(client, retry_policy, clock, path).headers()

    assert len(fake.logins) == 1


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"loginTimes": "soon"}', b'{"loginTimes": [1e999]}', b"\xff\xfe"],
)
async def test_a_corrupt_budget_file_is_ignored_with_a_warning(
    client: httpx.AsyncClient,
    retry_policy: RetryPolicy,
    fake: FakeAuth,
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    """A budget file that cannot be read as one is ignored (logged), then rewritten."""
    path = tmp_path / "budget"
    path.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="shared_state.adapters.librechat_auth"):
        await budget_session(client, retry_policy, clock, path).headers()

    assert "ignoring the LibreChat login budget" in caplog.text
    assert len(fake.logins) == 1
    assert json.loads(path.read_bytes())["loginTimes"] == [START]
