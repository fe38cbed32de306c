"""shared-state: a sidecar that keeps one merged view of AnythingLLM and LibreChat state.

`create_app(settings)` gives the configured FastAPI app; `shared_state.api.router` can
be mounted into another FastAPI app (see the README). The names are imported on first
use, so that `shared_state.client` (the Python client a frontend imports) does not load
the whole service.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from shared_state.app import create_app, running
    from shared_state.config import Settings

_LAZY = {
    "create_app": "shared_state.app",
    "running": "shared_state.app",
    "Settings": "shared_state.config",
}

__all__ = ["Settings", "__version__", "create_app", "running"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shared_state' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
