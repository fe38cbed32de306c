"""The architecture's import rules, checked by parsing imports: dependencies point inward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "shared_state"


def _imports(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (PACKAGE / folder).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path.relative_to(PACKAGE))] = names
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("domain", ("fastapi", "httpx", "starlette", "shared_state.adapters", "shared_state.api")),
        ("state", ("fastapi", "httpx", "shared_state.adapters", "shared_state.api")),
        ("adapters", ("fastapi", "shared_state.api", "shared_state.service")),
        ("api", ("httpx", "shared_state.adapters")),
        ("service", ("fastapi", "shared_state.api")),
        ("store", ("fastapi", "httpx", "shared_state.adapters", "shared_state.api")),
    ],
)
def test_layer_imports_point_inward(folder: str, forbidden: tuple[str, ...]) -> None:
    """No module of a layer imports what sits outside it."""
    offenders = {
        module: sorted(n for n in names if n.startswith(forbidden))
        for module, names in _imports(folder).items()
        if any(n.startswith(forbidden) for n in names)
    }
    assert offenders == {}


def test_only_the_store_imports_redis() -> None:
    """With `SHARED_STATE_REDIS_URL` unset the service never loads `redis`: only
    `shared_state.store` may import it."""
    offenders = {
        module: sorted(n for n in names if n == "redis" or n.startswith("redis."))
        for module, names in _imports(".").items()
        if not module.startswith("store/") and any(n.split(".")[0] == "redis" for n in names)
    }
    assert offenders == {}
