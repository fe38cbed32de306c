"""The files the service serves (contract §9, issue 8): the JS client's modules under
`/api/shared-state/`, the dashboard at `/` with its assets, where they are looked up, and
what the wheel carries."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shared_state.api.errors import add_exception_handlers
from shared_state.api.static import (
    DASHBOARD_CSP,
    DASHBOARD_DIR,
    JS_FILES,
    js_client_dir,
    static_router,
)
from tests.api.conftest import Service, make_settings, start_service

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "static-files-token"
CLIENT_JS = "/api/shared-state/client.js"


@pytest.fixture
async def closed_service() -> AsyncIterator[Service]:
    """The standalone app with `SHARED_STATE_API_TOKEN` set (no upstreams)."""
    async with start_service(make_settings(SHARED_STATE_API_TOKEN=TOKEN)) as service:
        yield service


def _client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_client_js_is_the_repository_file_as_javascript(closed_service: Service) -> None:
    """`client.js` is `clients/js/client.js` byte for byte, as JavaScript, revalidated on
    every use, with a tag made from its content; no token needed although one is set."""
    response = await closed_service.client.get(CLIENT_JS)

    assert response.status_code == 200
    assert response.content == (ROOT / "clients" / "js" / "client.js").read_bytes()
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])


async def test_react_js_is_served_and_its_client_import_resolves_beside_it(
    closed_service: Service,
) -> None:
    """`react.js` is `clients/js/react.js`; the client it imports by a relative URL
    resolves, from where it is served, to the served `client.js` (no token either)."""
    response = await closed_service.client.get("/api/shared-state/react.js")

    assert response.status_code == 200
    assert response.content == (ROOT / "clients" / "js" / "react.js").read_bytes()
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    relative = set(re.findall(r'from\s+"(\.[^"]+)"', response.text))
    assert relative == {"./client.js"}
    resolved = response.url.join("./client.js")
    assert resolved.path == CLIENT_JS
    assert (await closed_service.client.get(resolved)).status_code == 200


async def test_a_matching_if_none_match_answers_304_without_a_body(
    closed_service: Service,
) -> None:
    """The tag sent back gets 304 and no body (weak comparison, lists and `*` too); a
    stale tag gets the file again."""
    etag = (await closed_service.client.get(CLIENT_JS)).headers["etag"]

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        fresh = await closed_service.client.get(CLIENT_JS, headers={"If-None-Match": header})
        assert fresh.status_code == 304, header
        assert fresh.content == b""
        assert fresh.headers["etag"] == etag
    stale = await closed_service.client.get(CLIENT_JS, headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200
    assert stale.content


async def test_head_answers_the_headers_without_the_body(closed_service: Service) -> None:
    """HEAD: the same status, type, tag and length as GET, and no bytes."""
    got = await closed_service.client.get(CLIENT_JS)
    head = await closed_service.client.head(CLIENT_JS)

    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "etag", "content-length", "cache-control"):
        assert head.headers[name] == got.headers[name]


async def test_the_api_next_to_the_files_still_needs_the_token(closed_service: Service) -> None:
    """Only the files are open: the state beside them is still a 401, and a path that
    merely looks like a file is not let through."""
    for path in ("/api/shared-state", "/api/shared-state/status", "/api/shared-state/index.js"):
        response = await closed_service.client.get(path)
        assert response.status_code == 401, path


async def test_the_dashboard_page_loads_nothing_from_elsewhere(closed_service: Service) -> None:
    """`/` is the dashboard's HTML, without a token, under a policy that allows this
    origin only; the script and the style it names are served beside it."""
    page = await closed_service.client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == DASHBOARD_CSP
    assert "default-src 'self'" in DASHBOARD_CSP
    assert "frame-ancestors 'none'" in DASHBOARD_CSP
    assets = re.findall(r'(?:src|href)="(dashboard/[^"]+)"', page.text)
    assert sorted(assets) == ["dashboard/dashboard.css", "dashboard/dashboard.js"]
    for asset in assets:
        served = await closed_service.client.get(f"/{asset}")
        assert served.status_code == 200, asset
        assert served.content == (DASHBOARD_DIR / asset.removeprefix("dashboard/")).read_bytes()
    script = await closed_service.client.get("/dashboard/dashboard.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert '"../api/shared-state/client.js"' in script.text  # resolves to the served client
    assert "://" not in page.text  # no other host named


async def test_the_files_are_not_api_operations(closed_service: Service) -> None:
    """The files are left out of the OpenAPI schema on purpose (a generated client has no
    use for them); the API's own operations are all still there."""
    paths = (await closed_service.client.get("/openapi.json")).json()["paths"]

    assert CLIENT_JS not in paths
    assert "/" not in paths
    assert "/api/shared-state/status" in paths


def test_the_client_files_come_from_the_package_when_it_carries_them(tmp_path: Path) -> None:
    """In a wheel the files sit in `shared_state/static/js/`; in an editable install
    (no such folder) they come from the repository's `clients/js/`."""
    package = tmp_path / "site-packages" / "shared_state"
    (package / "static" / "js").mkdir(parents=True)
    assert js_client_dir(package) == package / "static" / "js"

    checkout = tmp_path / "repo" / "src" / "shared_state"
    checkout.mkdir(parents=True)
    assert js_client_dir(checkout) == tmp_path / "repo" / "clients" / "js"


def test_this_checkout_serves_the_repository_files() -> None:
    """Here (an editable install) the lookup finds the repository's `clients/js/`."""
    assert js_client_dir() == ROOT / "clients" / "js"


def test_the_wheel_carries_every_served_file() -> None:
    """The wheel's build hook (`hatch_build.py`, its list in pyproject) puts each served
    JS file, and `index.js` for a complete copy of the package, where `js_client_dir`
    looks for it; the dashboard's files sit in the package itself."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    hook = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]
    included = hook["wheel-only-files"]

    assert included == {
        f"clients/js/{name}": f"shared_state/static/js/{name}" for name in (*JS_FILES, "index.js")
    }
    assert DASHBOARD_DIR.parent == ROOT / "src" / "shared_state"
    assert {path.name for path in DASHBOARD_DIR.iterdir()} >= {
        "index.html",
        "dashboard.js",
        "dashboard.css",
    }


async def test_a_file_missing_from_the_build_is_a_404_and_the_rest_is_served(
    tmp_path: Path,
) -> None:
    """A build without `react.js` still starts: that URL answers 404 `not_found` (JSON),
    the others their files."""
    (tmp_path / "client.js").write_text("export const answer = 42;\n")
    app = FastAPI()
    app.include_router(static_router(js_dir=tmp_path))
    add_exception_handlers(app)
    async with _client_for(app) as client:
        missing = await client.get("/api/shared-state/react.js")
        present = await client.get(CLIENT_JS)
        page = await client.get("/")

    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert present.text == "export const answer = 42;\n"
    assert page.status_code == 200


async def test_files_are_read_once_when_the_app_is_built(tmp_path: Path) -> None:
    """Changing the file afterwards changes nothing served: the bytes and the tag are
    those read at start-up."""
    (tmp_path / "client.js").write_text("export const version = 1;\n")
    app = FastAPI()
    app.include_router(static_router(js_dir=tmp_path))
    (tmp_path / "client.js").write_text("export const version = 2;\n")
    async with _client_for(app) as client:
        response = await client.get(CLIENT_JS)

    assert response.text == "export const version = 1;\n"
