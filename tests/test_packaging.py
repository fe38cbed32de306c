"""What ships besides the code: compose file, Dockerfile, .env.example, Makefile, CI."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import yaml

from shared_state.config import Settings
from shared_state.simulator import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
)

ROOT = Path(__file__).resolve().parent.parent
KNOWN_VARIABLES = {field.alias for field in Settings.model_fields.values()}


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose


def _in_profile(profile: str) -> dict[str, dict[str, Any]]:
    """The services `docker compose --profile <profile> up` starts: those with no profile
    and those of that profile."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if not service.get("profiles") or profile in service["profiles"]
    }


def _host_ports(service: dict[str, Any]) -> set[str]:
    return {str(port).rsplit(":", 1)[0].rsplit(":", 1)[-1] for port in service.get("ports", [])}


def test_compose_file_parses_and_sets_only_known_variables() -> None:
    """Every variable the compose file gives a sidecar is one the settings know."""
    services = _compose()["services"]
    sidecars = {name: svc for name, svc in services.items() if name.startswith("shared-state")}
    assert set(sidecars) == {"shared-state", "shared-state-real"}
    for sidecar in sidecars.values():
        assert set(sidecar["environment"]) <= KNOWN_VARIABLES
    assert services["shared-state"]["environment"]["ANYTHINGLLM_BASE_URL"].startswith(
        "http://simulator:"
    )
    assert services["simulator"]["command"][0] == "simulate"


def test_sim_profile_runs_one_sidecar_against_the_simulator() -> None:
    """`--profile sim`: the sidecar and the simulator, with the simulator's credentials."""
    started = _in_profile("sim")
    assert set(started) == {"shared-state", "simulator"}
    environment = started["shared-state"]["environment"]
    assert environment["ANYTHINGLLM_API_KEY"] == SIM_ANYTHINGLLM_API_KEY
    assert environment["ANYTHINGLLM_PASSWORD"] == SIM_ANYTHINGLLM_PASSWORD
    assert environment["LIBRECHAT_EMAIL"] == SIM_LIBRECHAT_EMAIL
    assert environment["LIBRECHAT_PASSWORD"] == SIM_LIBRECHAT_PASSWORD


def test_real_profile_starts_no_simulator_and_no_port_twice() -> None:
    """`--profile real`: real AnythingLLM, LibreChat and MongoDB and a sidecar pointed at
    them; the simulator, which would take the real applications' host ports, stays off."""
    started = _in_profile("real")
    assert set(started) == {"shared-state-real", "anythingllm", "librechat", "mongodb"}
    environment = started["shared-state-real"]["environment"]
    assert environment["ANYTHINGLLM_BASE_URL"] == "http://anythingllm:3001"
    assert environment["LIBRECHAT_BASE_URL"] == "http://librechat:3080"
    for profile in ("sim", "real"):
        ports = [port for svc in _in_profile(profile).values() for port in _host_ports(svc)]
        assert len(ports) == len(set(ports)), f"--profile {profile} binds a host port twice"


def test_replicas_profile_runs_two_sidecars_on_one_redis() -> None:
    """`--profile replicas`: two sidecars against the simulator, each with the same Redis
    URL and prefix (one deployment), each on a host port of its own; and the variables
    they get are ones the settings know. (`sim` and `replicas` together bind no port
    twice either: both can run at once.)"""
    started = _in_profile("replicas")
    replicas = {name: svc for name, svc in started.items() if name.startswith("replica")}
    assert set(started) == {*replicas, "redis", "simulator"}
    assert len(replicas) == 2
    environments = [svc["environment"] for svc in replicas.values()]
    for environment in environments:
        assert set(environment) <= KNOWN_VARIABLES
        assert environment["SHARED_STATE_REDIS_URL"] == "redis://redis:6379/0"
        assert environment["ANYTHINGLLM_BASE_URL"].startswith("http://simulator:")
    assert len({e.get("SHARED_STATE_REDIS_PREFIX") for e in environments}) == 1
    for profiles in (("replicas",), ("sim", "replicas")):
        chosen = {n: s for p in profiles for n, s in _in_profile(p).items()}
        ports = [port for svc in chosen.values() for port in _host_ports(svc)]
        assert len(ports) == len(set(ports)), f"{profiles} bind a host port twice"


def test_plain_up_starts_nothing_half_configured() -> None:
    """Every service belongs to a profile: `docker compose up` alone starts nothing."""
    assert all(svc.get("profiles") for svc in _compose()["services"].values())


def test_every_dependency_waits_for_a_healthcheck() -> None:
    """`depends_on` waits for health, and every service waited for has a healthcheck."""
    services = _compose()["services"]
    dependencies = 0
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must name conditions"
        for dependency, rule in depends_on.items():
            dependencies += 1
            assert rule == {"condition": "service_healthy"}, (name, dependency)
            assert services[dependency].get("healthcheck", {}).get("test"), dependency
            assert set(services[dependency].get("profiles", [])) >= set(service["profiles"])
    assert dependencies >= 4
    for name in ("shared-state", "shared-state-real"):
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_environments_caches_and_secrets_out_of_the_build() -> None:
    """The build context leaves out the virtualenv, git, caches, node_modules, a local
    .env and snapshot files (a 176 MB .venv went into it before)."""
    patterns = _dockerignore()
    for pattern in (
        ".venv",
        ".git",
        "**/__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "**/node_modules",
        ".env",
        "**/state-snapshot.json",
        "**/*snapshot*.json",
    ):
        assert pattern in patterns, pattern


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    """Nothing the Dockerfile COPYs from the context is ignored."""
    copied = re.findall(r"^COPY (?!--from)(.+?) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    sources = {source for line in copied for source in line.split()}
    assert sources == {
        "pyproject.toml",
        "README.md",
        "hatch_build.py",
        "clients/js/client.js",
        "clients/js/index.js",
        "clients/js/react.js",
        "src",
    }
    patterns = _dockerignore()
    for source in sources:
        assert not any(
            fnmatch.fnmatch(source, p) or p.startswith(source) for p in patterns if p[0] != "!"
        ), source


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
