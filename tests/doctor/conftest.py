"""Running `shared-state doctor` in-process, as a user runs it (`cli.main`, the
environment, stdout), against the packaged simulators on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared_state import cli
from shared_state.config import Settings
from shared_state.logs import UVICORN_LOGGERS
from shared_state.simulator import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SIM_LIBRECHAT_TOKEN,
    Flavour,
    SimulatorServers,
)

_LINE = re.compile(r"(✓|✗) (\S+) +(\S+(?: \S+)*) {2,}(.*)")
DOCTOR_TIMEOUT_S = 60  # generous: a run against loopback takes well under a second


@dataclass(frozen=True)
class Run:
    """One run of `shared-state doctor`: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def rows(self) -> list[tuple[bool, str, str, str]]:
        """The text report parsed: (passed, upstream, check, detail and fix) per line."""
        rows = []
        for line in self.out.splitlines():
            match = _LINE.fullmatch(line)
            assert match is not None, f"not a report line: {line!r}"
            mark, upstream, check, rest = match.groups()
            rows.append((mark == "✓", upstream, check, rest))
        return rows

    def line(self, upstream: str, check: str) -> str:
        """The detail (and fix) of the first `check` line of `upstream`."""
        found = [r[3] for r in self.rows() if r[1:3] == (upstream, check)]
        assert found, f"no {check} line for {upstream} in:\n{self.out}"
        return found[0]

    def failed(self, upstream: str) -> list[str]:
        """The names of the checks of `upstream` that failed, in order."""
        return [r[2] for r in self.rows() if not r[0] and r[1] == upstream]

    def json(self) -> Any:
        return json.loads(self.out)


def healthy_env(sims: SimulatorServers) -> dict[str, str]:
    """The configuration the simulators accept, in their flavour."""
    env = {
        "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "ANYTHINGLLM_API": sims.flavour,
        "LIBRECHAT_BASE_URL": sims.librechat_url,
        "LIBRECHAT_API": sims.flavour,
        "SHARED_STATE_REQUEST_TIMEOUT_S": "5",
    }
    if sims.flavour == "native":
        env |= {
            "ANYTHINGLLM_USERNAME": SIM_ANYTHINGLLM_USERNAME,
            "ANYTHINGLLM_PASSWORD": SIM_ANYTHINGLLM_PASSWORD,
            "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
            "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        }
    else:
        env["LIBRECHAT_TOKEN"] = SIM_LIBRECHAT_TOKEN
    return env


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Doctor:
    """Runs `cli.main(["doctor", ...])` with exactly the given environment, from an
    empty directory (no `.env`), in a thread: the simulators keep serving in the loop."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path
    ) -> None:
        self._monkeypatch = monkeypatch
        self._capsys = capsys
        monkeypatch.chdir(cwd)

    async def __call__(self, env: dict[str, str], *args: str) -> Run:
        for field in Settings.model_fields.values():
            if field.alias:
                self._monkeypatch.delenv(field.alias, raising=False)
        for name, value in env.items():
            self._monkeypatch.setenv(name, value)
        self._capsys.readouterr()
        code = await asyncio.wait_for(
            asyncio.to_thread(cli.main, ["doctor", *args]), DOCTOR_TIMEOUT_S
        )
        captured = self._capsys.readouterr()
        return Run(code, captured.out, captured.err)


@pytest.fixture
def doctor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[Doctor]:
    """A `Doctor`; afterwards the logging that `cli.main` configured is undone, so that
    later tests see the process's logging as it was."""
    names = ["", "httpx", "apscheduler", *UVICORN_LOGGERS]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.level, lg.handlers[:], lg.propagate) for lg in loggers]
    yield Doctor(monkeypatch, capsys, tmp_path)
    for logger, level, handlers, propagate in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture(params=["native", "bizzy"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    value: Flavour = request.param
    return value
