"""The doctor's pieces through their public functions: how an answer is read, the clock
from a token, the report's redaction and rendering, and wire details the simulators do
not produce (a 429 with `Retry-After`, a name that does not resolve), through respx."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
import respx

from shared_state.config import Settings
from shared_state.doctor import Check, Report, diagnose, render_json, render_text
from shared_state.doctor.answers import read_answer
from shared_state.doctor.clock import date_header, issued_at

LC = "http://librechat.test"


def _response(status: int, content: str, media_type: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=content.encode(), headers={"content-type": media_type, **headers}
    )


def test_an_html_login_form_is_seen() -> None:
    """A page with a password input is a login page; its title is kept, shortened."""
    page = "<html><head><title> Sign   in </title></head><form><input type=PASSWORD></form>"
    answer = read_answer(_response(200, page, "text/html"), "GET", "/api/user")
    assert (answer.kind, answer.title, answer.login_form) == ("html", "Sign in", True)
    assert answer.looks_like_login()


def test_a_redirect_keeps_its_path_but_not_its_query() -> None:
    """A redirect's target is shown without its query (which may carry a state token)
    or user info."""
    response = httpx.Response(
        302, headers={"location": "https://u:pw@sso.example:8443/login?state=abc"}
    )
    answer = read_answer(response, "GET", "/api/v1/auth")
    assert answer.location == "https://sso.example:8443/login"
    assert answer.looks_like_login()
    assert "abc" not in answer.describe()


def test_json_that_does_not_parse_is_not_json() -> None:
    """A JSON content type on a body that does not parse is not JSON."""
    answer = read_answer(_response(200, '{"a":', "application/json"), "GET", "/x")
    assert answer.kind == "other"


def _jwt(claims: dict[str, object]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln"


def test_issued_at_reads_the_claim_and_refuses_junk() -> None:
    """`iat` is read from a JWT; a boolean, a malformed token or an opaque one give None."""
    assert issued_at(_jwt({"iat": 1_700_000_000})) == 1_700_000_000.0
    assert issued_at(_jwt({"iat": True})) is None
    assert issued_at("not.a.jwt") is None
    assert issued_at("opaque") is None


def test_date_header() -> None:
    """An HTTP date is read as epoch seconds; anything else is None."""
    assert date_header("Wed, 21 Oct 2015 07:28:00 GMT") == 1445412480.0
    assert date_header("yesterday") is None
    assert date_header(None) is None


def test_redaction_blanks_secrets_and_jwts() -> None:
    """A detail that quotes a secret or a JWT is rendered without them."""
    token = _jwt({"iat": 1})
    report = Report(
        (Check("librechat", "credentials", False, f"said hunter2-secret and {token}", "x"),)
    ).redacted(["hunter2-secret", "short"])
    assert report.checks[0].detail == "said *** and <jwt>"
    assert "hunter2" not in render_text(report) + render_json(report)


def test_text_rendering_marks_and_fixes() -> None:
    """One line per check, columns aligned, the fix after an arrow; one failure fails all."""
    report = Report(
        (
            Check("anythingllm", "reachable", True, "answered in 3 ms"),
            Check("librechat", "read user", False, "GET /api/user failed", "do this"),
        )
    )
    assert render_text(report) == (
        "✓ anythingllm  reachable  answered in 3 ms\n"
        "✗ librechat    read user  GET /api/user failed → fix: do this\n"
    )
    assert not report.ok


def _librechat_settings() -> Settings:
    return Settings(
        _env_file=None,
        LIBRECHAT_BASE_URL=LC,
        LIBRECHAT_EMAIL="svc@example.com",
        LIBRECHAT_PASSWORD="respx-password-1",
    )


@respx.mock(assert_all_called=False)
async def test_the_rate_limit_wait_comes_from_retry_after(respx_mock: respx.MockRouter) -> None:
    """A 429 with `Retry-After: 120`: the check says to wait 120 s."""
    respx_mock.get(f"{LC}/api/user").respond(401, json={"message": "Unauthorized"})
    respx_mock.get(f"{LC}/api/user/me").respond(404, json={"message": "Endpoint not found"})
    login = respx_mock.post(f"{LC}/api/auth/login").respond(
        429, json={"message": "Too many login attempts"}, headers={"Retry-After": "120"}
    )
    report = await diagnose(_librechat_settings())
    failed = [c for c in report.checks if not c.ok]
    assert [(c.upstream, c.check) for c in failed] == [("librechat", "credentials")]
    assert "wait 120 s before the next login" in failed[0].detail
    assert login.call_count == 1


@respx.mock(assert_all_called=False)
async def test_a_ban_is_told_apart(respx_mock: respx.MockRouter) -> None:
    """A 403 to the login: the account or the address is banned."""
    respx_mock.get(f"{LC}/api/user").respond(401, json={"message": "Unauthorized"})
    respx_mock.get(f"{LC}/api/user/me").respond(404, json={"message": "Endpoint not found"})
    respx_mock.post(f"{LC}/api/auth/login").respond(403, json={"message": "banned"})
    report = await diagnose(_librechat_settings())
    assert "banned" in next(c for c in report.checks if not c.ok).detail


@respx.mock(assert_all_called=False)
async def test_a_name_that_does_not_resolve(respx_mock: respx.MockRouter) -> None:
    """DNS failure: `reachable` fails and points at the host name."""
    respx_mock.get(f"{LC}/api/user").mock(
        side_effect=httpx.ConnectError("[Errno -2] Name or service not known")
    )
    report = await diagnose(_librechat_settings())
    (check,) = [c for c in report.checks if c.upstream == "librechat"]
    assert (check.check, check.ok) == ("reachable", False)
    assert "does not resolve" in check.detail
    assert check.fix is not None
    assert "LIBRECHAT_BASE_URL" in check.fix


@pytest.mark.parametrize(
    ("body", "era"),
    [
        ({"conversations": [], "pages": 1, "pageNumber": 1, "pageSize": 1}, "0.7.7 or earlier"),
        ({"conversations": [], "nextCursor": "2026-06-21T09:30:00.000Z"}, "0.7.8 to 0.8.1"),
        ({"conversations": [], "nextCursor": "eyJwcmltYXJ5IjoiYSJ9"}, "0.8.2 or later"),
    ],
)
@respx.mock(assert_all_called=False)
async def test_the_version_is_dated_from_the_convos_format(
    respx_mock: respx.MockRouter, body: dict[str, object], era: str
) -> None:
    """LibreChat tells no version: the conversation list's format dates it."""
    respx_mock.get(f"{LC}/api/user").respond(401, json={"message": "Unauthorized"})
    respx_mock.get(f"{LC}/api/user/me").respond(404, json={"message": "Endpoint not found"})
    respx_mock.post(f"{LC}/api/auth/login").respond(200, json={"token": _jwt({"iat": 1})})
    respx_mock.get(f"{LC}/api/convos", params={"limit": "1"}).respond(200, json=body)
    report = await diagnose(_librechat_settings())
    (version,) = [c for c in report.checks if c.check == "version"]
    assert era in version.detail
