"""The HTTP edge: routers, dependencies and the error mapping. Never imports adapters.

The names below are imported on first use: the answer models in `api.schemas` are also
the Python client's, and a client should not load FastAPI's routers to read them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared_state.api.edge import SharedStateEdge
    from shared_state.api.errors import add_exception_handlers
    from shared_state.api.events import router as events_router
    from shared_state.api.health import router as health_router
    from shared_state.api.routes import router

_LAZY = {
    "SharedStateEdge": ("shared_state.api.edge", "SharedStateEdge"),
    "add_exception_handlers": ("shared_state.api.errors", "add_exception_handlers"),
    "events_router": ("shared_state.api.events", "router"),
    "health_router": ("shared_state.api.health", "router"),
    "router": ("shared_state.api.routes", "router"),
}

__all__ = ["SharedStateEdge", "add_exception_handlers", "events_router", "health_router", "router"]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'shared_state.api' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)
