"""The API docs pages work air-gapped: every URL `/docs` and `/redoc` load is this
service's own, and each answers with the asset it names."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi import FastAPI

from shared_state.api.docs import install_offline_docs
from tests.api.conftest import Service

# src="…", href="…" and the url: '…' / spec-url of Swagger UI's and ReDoc's pages.
_REFERENCE = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*['"]([^'"]+)['"]""")
_JAVASCRIPT = {"text/javascript", "application/javascript"}


def _references(html: str) -> list[str]:
    return _REFERENCE.findall(html)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js": _JAVASCRIPT, "swagger-ui.css": {"text/css"}}),
        ("/redoc", {"redoc.standalone.js": _JAVASCRIPT}),
    ],
)
async def test_docs_page_loads_only_local_assets(
    service: Service, page: str, assets: dict[str, set[str]]
) -> None:
    """No reference leaves this host, and each one answers 200 with its content type."""
    response = await service.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = _references(response.text)
    assert references, response.text
    for reference in references:
        assert urlsplit(reference).netloc == "", f"{page} loads {reference} from another host"
    for name in assets:
        assert any(ref.endswith(f"/{name}") for ref in references), (name, references)
    for reference in references:
        asset = await service.client.get(urljoin(f"http://test{page}", reference))
        assert asset.status_code == 200, reference
        media_type = asset.headers["content-type"].split(";")[0]
        expected = next((t for n, t in assets.items() if reference.endswith(n)), None)
        if expected is not None:
            assert media_type in expected, (reference, media_type)
            assert len(asset.content) > 10_000  # the real bundle, not an error page
        elif reference.endswith(".png"):
            assert media_type == "image/png"
        else:  # the OpenAPI schema the page renders
            assert media_type == "application/json"
            assert asset.json()["info"]["title"] == "shared-state"


async def test_swagger_ui_does_not_call_the_online_validator(service: Service) -> None:
    """Swagger UI's validator badge would send the schema to validator.swagger.io."""
    html = (await service.client.get("/docs")).text
    assert '"validatorUrl": null' in html
    assert "swagger.io" not in html


async def test_docs_turned_off_stay_off() -> None:
    """An app built without docs URLs gets no docs pages, only nothing."""
    app = FastAPI(docs_url=None, redoc_url=None)
    install_offline_docs(app)
    paths = {getattr(route, "path", None) for route in app.router.routes}
    assert not paths & {"/docs", "/redoc"}
