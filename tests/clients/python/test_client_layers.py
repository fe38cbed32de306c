"""The client stands outside the service: it shares the models and the API's answer
shapes, never the service's running parts (checked by parsing imports)."""

from __future__ import annotations

import ast
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "src" / "shared_state" / "client"
ALLOWED = ("shared_state.client", "shared_state.domain", "shared_state.api.schemas")


def test_the_client_imports_only_the_models_and_the_api_schemas() -> None:
    offenders: dict[str, list[str]] = {}
    for path in CLIENT.glob("*.py"):
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
