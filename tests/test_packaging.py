"""What ships besides the code: compose file, Dockerfile, .env.example, Makefile, CI."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from shared_state.config import Settings

ROOT = Path(__file__).resolve().parent.parent
KNOWN_VARIABLES = {field.alias for field in Settings.model_fields.values()}


def test_compose_file_parses_and_sets_only_known_variables() -> None:
    """Every variable the compose file gives the sidecar is one the settings know."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    sidecar = compose["services"]["shared-state"]
    assert set(sidecar["environment"]) <= KNOWN_VARIABLES
    assert sidecar["environment"]["ANYTHINGLLM_BASE_URL"].startswith("http://simulator:")
    simulator = compose["services"]["simulator"]
    assert simulator["command"][0] == "simulate"
    real = {name for name, svc in compose["services"].items() if "real" in svc.get("profiles", [])}
    assert {"anythingllm", "librechat"} <= real


def test_env_example_lists_every_variable_once() -> None:
    """.env.example names each contract variable (the legacy one as a comment)."""
    text = (ROOT / ".env.example").read_text()
    assigned = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE)
    assert set(assigned) == KNOWN_VARIABLES
    assert len(assigned) == len(set(assigned))


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    """The image drops root, checks /healthz, and serves on all interfaces."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\S+", dockerfile, flags=re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile
    assert "/healthz" in dockerfile
    assert '"serve", "--host", "0.0.0.0"' in dockerfile
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, flags=re.MULTILINE)


def test_ci_runs_the_readme_test_command() -> None:
    """CI calls `make test`, the command the README gives."""
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make demo" in readme
