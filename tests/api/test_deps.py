"""Nothing on a route's path runs in a worker thread: FastAPI runs a plain `def`
endpoint or dependency in the thread pool, one hop per request."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shared_state.api import health_router, router


def calls_of(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from calls_of(dependency)


def is_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 (a dependency may be a callable object)
    )


ROUTES = [route for route in [*router.routes, *health_router.routes] if isinstance(route, APIRoute)]


@pytest.mark.parametrize("route", ROUTES, ids=[route.path for route in ROUTES])
def test_every_endpoint_and_dependency_is_async(route: APIRoute) -> None:
    """Each API route's endpoint and every dependency under it is `async`."""
    assert is_async(route.endpoint)
    assert all(is_async(call) for call in calls_of(route.dependant))


def test_the_walk_finds_the_dependencies() -> None:
    """The check above sees the token and runtime dependencies (it is not vacuous)."""
    names = {getattr(call, "__name__", "") for r in ROUTES for call in calls_of(r.dependant)}
    assert {"require_api_token", "get_runtime", "get_manager"} <= names
    assert len(ROUTES) >= 12
