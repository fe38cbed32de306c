"""The API docs pages, `/docs` (Swagger UI) and `/redoc`, served with every asset from this
process: FastAPI's own pages load them from a CDN and stay blank in an air-gapped cluster.

The assets are the copies of swagger-ui-dist and redoc that the `fastapi-offline` package
ships and keeps current; only FastAPI's public page builders are used around them.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

DOCS_ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
"""swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""


def install_offline_docs(app: FastAPI) -> None:
    """Replace `app`'s CDN-backed `/docs` and `/redoc` pages (at whatever URLs the app was
    given; none when it turned them off) with pages whose assets `app` serves itself."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return
    docs_url, redoc_url = app.docs_url, app.redoc_url
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path in {docs_url, redoc_url})
    ]
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    # The online validator badge would send the schema to validator.swagger.io.
    swagger_parameters = {**(app.swagger_ui_parameters or {}), "validatorUrl": None}

    if docs_url is not None:

        async def swagger_ui(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
                swagger_js_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon.png",
                swagger_ui_parameters=swagger_parameters,
            )

        app.add_api_route(docs_url, swagger_ui, methods=["GET"], include_in_schema=False)

    if redoc_url is not None:

        async def redoc(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{DOCS_ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )

        app.add_api_route(redoc_url, redoc, methods=["GET"], include_in_schema=False)
