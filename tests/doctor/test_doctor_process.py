"""`shared-state doctor` as a user runs it: a subprocess, its stdout and exit code."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from shared_state.simulator import SECRET_CANARY, SimulatorServers
from tests.doctor.conftest import free_port, healthy_env


async def _doctor(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared_state",
        "doctor",
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_doctor_as_a_process(tmp_path: Path) -> None:
    """Healthy: exit 0, every line passed. The wrong LibreChat port: exit 1, the
    `reachable` line failed with its fix. No secret either time."""
    async with SimulatorServers(flavour="native") as sims:
        env = healthy_env(sims)
        healthy = await _doctor(env, tmp_path)
        broken = await _doctor(
            env | {"LIBRECHAT_BASE_URL": f"http://127.0.0.1:{free_port()}"}, tmp_path
        )
    code, out, err = healthy
    assert code == 0, out + err
    assert out.count("\n") >= 20
    assert all(line.startswith("✓ ") for line in out.splitlines())
    code, out, err = broken
    assert code == 1, out + err
    failed = [line for line in out.splitlines() if line.startswith("✗ ")]
    assert len(failed) == 1
    assert failed[0].startswith("✗ librechat    reachable")
    assert "→ fix: set LIBRECHAT_BASE_URL" in failed[0]
    for secret in (env["ANYTHINGLLM_API_KEY"], env["LIBRECHAT_PASSWORD"], SECRET_CANARY):
        assert secret not in healthy[1] + healthy[2] + out + err
