"""Servers a misconfigured base URL can point at instead of an upstream's API: a web
frontend that answers every path with its HTML page, and an authenticating reverse proxy
that answers with its login page. `shared-state doctor`'s tests point the sidecar at them.
"""

from __future__ import annotations

from types import TracebackType
from typing import Literal, Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shared_state import embedded

Product = Literal["anythingllm", "librechat"]
ProxyStyle = Literal["redirect", "form"]

FRONTEND_TITLES: dict[Product, str] = {
    "anythingllm": "AnythingLLM | Your personal LLM trained on anything",
    "librechat": "LibreChat",
}
"""The `<title>` of each application's web frontend (its `index.html`)."""

LOGIN_PATH = "/login"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _page(title: str, body: str) -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


def create_web_frontend_app(product: Product) -> FastAPI:
    """A server that only serves `product`'s web pages: every path, `/api/...` included,
    answers 200 with the single-page app's HTML (a dev server, or nginx with the build)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    page = _page(FRONTEND_TITLES[product], '<div id="root"></div>')

    @app.api_route("/{path:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def spa(path: str) -> Response:
        return HTMLResponse(page)

    return app


def create_login_proxy_app(style: ProxyStyle) -> FastAPI:
    """An authenticating reverse proxy with no session: `redirect` answers every path with
    302 to its login page (oauth2-proxy, Authelia); `form` answers 200 with the login form."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    form = _page(
        "Sign in",
        f'<form method="post" action="{LOGIN_PATH}"><input name="username">'
        '<input type="password" name="password"><button>Sign in</button></form>',
    )

    @app.api_route("/{path:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def guard(path: str, request: Request) -> Response:
        if style == "form" or request.url.path == LOGIN_PATH:
            return HTMLResponse(form)
        return RedirectResponse(f"{LOGIN_PATH}?rd=/{path}", status_code=302)

    return app


class ServedApp:
    """An async context manager serving one ASGI app on a free loopback port (`url`)."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self.url = ""

    async def __aenter__(self) -> Self:
        self._sock = embedded.bind(self._host, self._port)
        self.url = embedded.url_of(self._sock)
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off")
        self._server = embedded.EmbeddedServer(config)
        self._task = await embedded.start(self._server, self._sock)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        await self._task
        self._sock.close()
