"""The `Host` header: no redirect is ever built from it, and `SHARED_STATE_ALLOWED_HOSTS`
limits which hosts are answered (Starlette's TrustedHostMiddleware matching)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.api.conftest import make_anythingllm, make_settings, start_service

BASE = "/api/shared-state"
INVALID_HOST = {
    "detail": "This service does not answer for that Host header.",
    "code": "invalid_host",
}


@pytest.mark.parametrize("token", [None, "s3cret-token"])
async def test_trailing_slash_is_not_redirected_to_the_given_host(token: str | None) -> None:
    """`GET /api/shared-state/` with a hostile Host gets no redirect: 404 (or 401 without
    the configured token), and no `Location`."""
    settings = make_settings(SHARED_STATE_API_TOKEN=token)
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.get(BASE + "/", headers={"Host": "evil.example"})
        section = await service.client.get(BASE + "/settings/", headers={"Host": "evil.example"})

    assert "location" not in response.headers
    assert "location" not in section.headers
    if token is None:
        assert response.status_code == section.status_code == 404
        assert response.json()["code"] == "not_found"
    else:
        assert response.status_code == section.status_code == 401


@pytest.mark.parametrize(
    "host",
    [
        "api.example.com",
        "API.Example.com",
        "api.example.com:8080",
        "a.internal",
        "deep.a.internal:80",
        "[::1]:8080",
    ],
)
@pytest.mark.parametrize("path", [BASE, BASE + "/settings", BASE + "/status"])
async def test_listed_hosts_are_answered(host: str, path: str) -> None:
    """Exact names (any case, any port), `*.` wildcards' subdomains, bracketed IPs."""
    settings = make_settings(SHARED_STATE_ALLOWED_HOSTS="api.example.com, *.internal, [::1]")
    async with start_service(settings, [make_anythingllm()]) as service:
        response = await service.client.get(path, headers={"Host": host})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "internal",  # a wildcard matches subdomains only, as in Starlette
        "api.example.com.evil.example",
        "evil.example/x.internal",
        "api.example.com:http",
        "",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", BASE),
        ("GET", BASE + "/conversations"),
        ("GET", BASE + "/status"),
        ("POST", BASE + "/ui-settings"),
        ("GET", "/docs"),
    ],
)
async def test_other_hosts_get_invalid_host(host: str, method: str, path: str) -> None:
    """Any other Host gets 400 `invalid_host`, on the fast path and the routed one, and a
    write is not carried out."""
    anythingllm = make_anythingllm()
    settings = make_settings(SHARED_STATE_ALLOWED_HOSTS="api.example.com,*.internal")
    async with start_service(settings, [anythingllm]) as service:
        response = await service.client.request(
            method, path, headers={"Host": host}, json={"theme": "light"}
        )

    assert response.status_code == 400
    assert response.json() == INVALID_HOST
    assert anythingllm.writes == []


async def test_probes_answer_whatever_the_host() -> None:
    """`/healthz` and `/readyz` skip the Host check: a kubelet probes with the pod's IP."""
    settings = make_settings(SHARED_STATE_ALLOWED_HOSTS="api.example.com")
    async with start_service(settings, [make_anythingllm()]) as service:
        health = await service.client.get("/healthz", headers={"Host": "10.1.2.3:8080"})
        ready = await service.client.get("/readyz", headers={"Host": "10.1.2.3:8080"})

    assert (health.status_code, ready.status_code) == (200, 200)


async def test_empty_list_answers_any_host() -> None:
    """Unset (the default), every Host is answered."""
    async with start_service(make_settings(), [make_anythingllm()]) as service:
        response = await service.client.get(BASE, headers={"Host": "anything.example"})

    assert response.status_code == 200


@pytest.mark.parametrize("value", ["api.*.com", "*example.com", "a.example.com,**.b"])
def test_misplaced_wildcards_are_refused(value: str) -> None:
    """A `*` anywhere but a leading `*.` stops start-up, naming the variable."""
    with pytest.raises(ValidationError, match="wildcards"):
        make_settings(SHARED_STATE_ALLOWED_HOSTS=value)
