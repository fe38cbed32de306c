"""shared-state: a sidecar that keeps one merged view of AnythingLLM and LibreChat state.

`create_app(settings)` gives the configured FastAPI app; `shared_state.api.router` can
be mounted into another FastAPI app (see the README).
"""

__version__ = "0.1.0"

from shared_state.app import create_app, running
from shared_state.config import Settings

__all__ = ["Settings", "__version__", "create_app", "running"]
