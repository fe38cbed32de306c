"""No secret leaves the sidecar (issue 6, item 5), end to end: the real app under uvicorn
against the simulators, whose users, workspaces and conversations carry canaries (nested
in LibreChat's `personalization`, under ordinary names, shaped like credentials)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state import Settings
from shared_state.logs import configure_logging
from shared_state.simulator import (
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SIM_LIBRECHAT_TOKEN,
    Flavour,
    SimulatorServers,
)
from tests.e2e.conftest import Service, run_service


class _RawLines(logging.Handler):
    """Keeps each record's message as the libraries wrote it, before any redaction: the
    proof that a secret really passed through the logging calls."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def verbose_log() -> Iterator[tuple[io.StringIO, _RawLines]]:
    """What `-v` writes (the command's handler at DEBUG), and the raw records beside it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "apscheduler")}
    raw = _RawLines()
    root.addHandler(raw)  # before the command's handler, so it sees records unredacted
    written = io.StringIO()
    configure_logging(verbose=True, stream=written)
    yield written, raw
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def settings_for(sims: SimulatorServers, flavour: Flavour, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ANYTHINGLLM_API": flavour,
        "LIBRECHAT_API": flavour,
        "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "LIBRECHAT_BASE_URL": sims.librechat_url,
        "SHARED_STATE_SYNC_INTERVAL_S": 3600,
        "SHARED_STATE_REQUEST_TIMEOUT_S": 5,
    }
    if flavour == "native":
        values |= {
            "ANYTHINGLLM_USERNAME": SIM_ANYTHINGLLM_USERNAME,
            "ANYTHINGLLM_PASSWORD": SIM_ANYTHINGLLM_PASSWORD,
            "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
            "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        }
    else:
        values["LIBRECHAT_TOKEN"] = SIM_LIBRECHAT_TOKEN
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(params=["native", "bizzy"])
async def flavoured_sims(request: pytest.FixtureRequest) -> AsyncIterator[SimulatorServers]:
    async with SimulatorServers(flavour=request.param) as servers:
        yield servers


async def every_answer(service: Service) -> list[httpx.Response]:
    """Every route a client can read: the state, each section, each item, status, sync."""
    answers = [await service.post("/sync")]
    for path in ("", "/user", "/settings", "/workspaces", "/conversations", "/status"):
        answers.append(await service.get(path))
    for section in ("workspaces", "conversations"):
        for item in (await service.get(f"/{section}")).json():
            answers.append(await service.get(f"/{section}/{item['id']}"))
    assert all(answer.status_code == 200 for answer in answers)
    return answers


async def test_no_canary_in_any_answer_the_snapshot_or_the_verbose_log(
    flavoured_sims: SimulatorServers,
    tmp_path: Path,
    verbose_log: tuple[io.StringIO, _RawLines],
) -> None:
    """Responses, the snapshot file and the `-v` log hold none of the seeded secrets."""
    flavour = flavoured_sims.flavour
    snapshot = tmp_path / "snapshot.json"
    settings = settings_for(flavoured_sims, flavour, SHARED_STATE_SNAPSHOT_PATH=str(snapshot))
    written, _ = verbose_log

    async with run_service(settings) as service:
        answers = await every_answer(service)
        state = (await service.get("")).json()

    assert {source["status"] for source in state["sources"].values()} == {"ok"}
    for answer in answers:
        assert SECRET_CANARY not in answer.text, answer.url.path
    assert SECRET_CANARY.encode() not in snapshot.read_bytes()
    assert SECRET_CANARY not in written.getvalue()
    # The seeded objects did arrive, only without their secrets.
    assert state["user"]["libreChat"]["personalization"] == {"memories": True}
    if flavour == "native":
        research = next(w for w in state["workspaces"] if w["slug"] == "research-notes")
        assert "openAiPrompt" not in research
        assert research["openAiTemp"] == 0.9
        conversation = next(c for c in state["conversations"] if c["id"] == "c-0007")
        assert "iconURL" not in conversation
        assert conversation["title"]


async def test_verbose_log_through_a_token_refresh_holds_no_token_or_password(
    verbose_log: tuple[io.StringIO, _RawLines],
) -> None:
    """With `-v`, httpcore logs LibreChat's `set-cookie: refreshToken=…` on every login and
    refresh; what the command writes holds neither that cookie, the access tokens, nor any
    password or key."""
    written, raw = verbose_log
    async with SimulatorServers(flavour="native") as sims:
        world = sims.world.librechat
        async with (
            run_service(settings_for(sims, "native")) as service,
            httpx.AsyncClient(base_url=sims.librechat_url) as librechat,
        ):
            await service.runtime.synchronizer.sync()
            await librechat.post("/_sim/auth/expire-access-tokens")
            report = (await service.post("/sync")).json()
            stats = (await librechat.get("/_sim/stats")).json()
        access_tokens = list(world.auth.access_tokens)

    assert report["sources"]["librechat"]["status"] == "ok"
    assert stats["refreshes"] >= 1
    refresh_tokens = re.findall(r"refreshToken=([^;'\"]+)", "\n".join(raw.lines))
    assert refresh_tokens  # httpcore really logged the cookie
    assert access_tokens
    output = written.getvalue()
    assert "set-cookie" in output.lower()  # the lines are there, their values are not
    secrets = [
        *refresh_tokens,
        *access_tokens,
        SIM_LIBRECHAT_PASSWORD,
        SIM_ANYTHINGLLM_PASSWORD,
        SIM_ANYTHINGLLM_API_KEY,
        SECRET_CANARY,
    ]
    for secret in secrets:
        assert secret not in output


async def test_credentials_in_a_base_url_never_show(
    verbose_log: tuple[io.StringIO, _RawLines],
) -> None:
    """`http://user:pass@host` base URLs, reachable or not, show in no log line, no
    `/status` (`lastError`) and no answer."""
    written, raw = verbose_log
    password = f"{SECRET_CANARY}-in-url"
    async with SimulatorServers(flavour="bizzy") as sims:
        reachable = sims.anythingllm_url.replace("http://", f"http://admin:{password}@")
        unreachable = f"http://ada:{password}@127.0.0.1:9"  # discard port: refused
        settings = settings_for(
            sims, "bizzy", ANYTHINGLLM_BASE_URL=reachable, LIBRECHAT_BASE_URL=unreachable
        )
        async with run_service(settings) as service:
            answers = [await service.post("/sync")]
            answers += [await service.get(path) for path in ("", "/status")]

    status = answers[-1].json()
    assert status["sources"]["librechat"]["status"] == "stale"
    assert status["sources"]["librechat"]["lastError"]
    assert any(password in line for line in raw.lines)  # httpx did log the URL
    for answer in answers:
        assert password not in answer.text
    assert password not in written.getvalue()
