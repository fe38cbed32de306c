"""The HTTP edge: routers, dependencies and the error mapping. Never imports adapters."""

from shared_state.api.edge import SharedStateEdge
from shared_state.api.errors import add_exception_handlers
from shared_state.api.events import router as events_router
from shared_state.api.health import router as health_router
from shared_state.api.routes import router

__all__ = ["SharedStateEdge", "add_exception_handlers", "events_router", "health_router", "router"]
