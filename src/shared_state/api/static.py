"""The files the service serves besides its JSON: the JavaScript client modules (contract
§9) and the dashboard page (issue 8), read once when the app is built.

- `GET /api/shared-state/client.js` and `/react.js`: `clients/js/client.js` and
  `react.js`, so a page imports the client without npm (`react.js` imports
  `./client.js`, which resolves beside it). They never need the API token: they hold no
  state, and a page must load them before it can ask anyone for a token.
- `GET /`: the dashboard (`shared_state/dashboard/index.html`), with its script and
  style under `/dashboard/`, and a Content-Security-Policy that lets it load nothing
  from another host.

Every file answers with a strong `ETag` (a digest of its bytes), `Cache-Control:
no-cache` (a browser revalidates, and a 304 costs no body) and 304 on a matching
`If-None-Match`; HEAD answers the same headers without the body. The routes are left
out of the OpenAPI schema on purpose: they are files for browsers, not operations of
the API, and a generated client has no use for them.

Where the JS files come from is `js_client_dir()`: inside the package in a wheel or a
Docker image (hatch force-includes them as `shared_state/static/js/`), from the
repository's `clients/js/` in an editable install.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request, Response

from shared_state.api.routes import API_PREFIX
from shared_state.errors import NotFound
from shared_state.state.manager import etag_matches

log = logging.getLogger(__name__)

PACKAGE_DIR: Final = Path(__file__).resolve().parent.parent
"""`shared_state/`, installed or in `src/`."""
DASHBOARD_DIR: Final = PACKAGE_DIR / "dashboard"

JS_FILES: Final = ("client.js", "react.js")
"""The client modules served under `/api/shared-state/` (contract §9)."""
PUBLIC_API_PATHS: Final = frozenset(f"{API_PREFIX}/{name}" for name in JS_FILES)
"""Paths under the API prefix that never need the token (the edge lets them through)."""

DASHBOARD_PATH: Final = "/"
DASHBOARD_ASSETS_PATH: Final = "/dashboard"
DASHBOARD_ASSETS: Final = ("dashboard.js", "dashboard.css")

JAVASCRIPT: Final = "text/javascript; charset=utf-8"
MEDIA_TYPES: Final = {
    ".js": JAVASCRIPT,
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}

DASHBOARD_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The page's policy: its script, style and requests come from this origin only (no
inline script, no CDN), and no other site may frame it."""

_COMMON_HEADERS: Final = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
_PAGE_HEADERS: Final = {
    **_COMMON_HEADERS,
    "Content-Security-Policy": DASHBOARD_CSP,
    "Referrer-Policy": "no-referrer",
}


def js_client_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The folder that holds `client.js` and `react.js`: `<package>/static/js` where the
    wheel put them, otherwise the repository's `clients/js` (an editable install, where
    the package is `src/shared_state`)."""
    packaged = package_dir / "static" / "js"
    if packaged.is_dir():
        return packaged
    return package_dir.parent.parent / "clients" / "js"


@dataclass(frozen=True)
class StaticFile:
    """One file's bytes, as served, with its entity tag and headers."""

    body: bytes
    etag: str
    headers: dict[str, str]

    @classmethod
    def of(cls, body: bytes, media_type: str, headers: dict[str, str]) -> StaticFile:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return cls(body, etag, {**headers, "Content-Type": media_type, "ETag": etag})

    def answer(self, request: Request) -> Response:
        """200 with the bytes (none for HEAD), or 304 on a matching `If-None-Match`."""
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and etag_matches(
            if_none_match.encode(), (self.etag.encode(),)
        ):
            not_modified = {k: v for k, v in self.headers.items() if k != "Content-Type"}
            return Response(status_code=304, headers=not_modified)
        body = b"" if request.method == "HEAD" else self.body
        return Response(body, headers={**self.headers, "Content-Length": str(len(self.body))})


def read_files(paths: Iterable[Path], headers: dict[str, str]) -> dict[str, StaticFile | None]:
    """Each file by name, read now; `None` (and a warning) for one that is missing, so a
    build without it still starts and answers 404 for that file alone."""
    files: dict[str, StaticFile | None] = {}
    for path in paths:
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            log.warning("%s is missing: its URL answers 404", path)
            files[path.name] = None
            continue
        files[path.name] = StaticFile.of(body, MEDIA_TYPES[path.suffix], headers)
    return files


def static_router(js_dir: Path | None = None, dashboard_dir: Path = DASHBOARD_DIR) -> APIRouter:
    """The routes of the module docstring, over files read once, now (`js_dir`: where
    the client modules are, `js_client_dir()` by default)."""
    js_dir = js_dir or js_client_dir()
    scripts = read_files((js_dir / name for name in JS_FILES), _COMMON_HEADERS)
    assets = read_files((dashboard_dir / name for name in DASHBOARD_ASSETS), _COMMON_HEADERS)
    page = read_files([dashboard_dir / "index.html"], _PAGE_HEADERS)["index.html"]
    router = APIRouter(include_in_schema=False)
    for name in JS_FILES:
        _add(router, f"{API_PREFIX}/{name}", name, scripts[name])
    for name in DASHBOARD_ASSETS:
        _add(router, f"{DASHBOARD_ASSETS_PATH}/{name}", name, assets[name])
    _add(router, DASHBOARD_PATH, "index.html", page)
    return router


def _add(router: APIRouter, path: str, name: str, file: StaticFile | None) -> None:
    """`GET` and `HEAD` of `path`: `file`, or 404 when the build has none."""

    async def get_file(request: Request) -> Response:
        if file is None:
            raise NotFound(f"This installation of the service has no {name}.")
        return file.answer(request)

    get_file.__name__ = f"get_{name.replace('.', '_')}"
    router.add_api_route(path, get_file, methods=["GET", "HEAD"])
