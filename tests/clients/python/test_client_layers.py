"""The client stands outside the service: it shares the models and the API's answer
shapes, never the service's running parts (checked by parsing imports, and by importing
it in a fresh interpreter)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[3] / "src" / "shared_state" / "client"
ALLOWED = ("shared_state.client", "shared_state.domain", "shared_state.api.schemas")


def test_the_client_imports_only_the_models_and_the_api_schemas() -> None:
    offenders: dict[str, list[str]] = {}
    modules = sorted(CLIENT.glob("*.py"))
    assert len(modules) >= 3, CLIENT
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.startswith("shared_state") and not n.startswith(ALLOWED)]
            if bad:
                offenders.setdefault(path.name, []).extend(bad)
    assert offenders == {}


def test_importing_the_client_loads_no_web_framework() -> None:
    """A Python frontend that imports the client does not load FastAPI, Starlette or the
    service's app (the package's names are imported on first use)."""
    probe = (
        "import sys, shared_state.client; "
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'shared_state.app') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
