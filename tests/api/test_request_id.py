"""`X-Request-ID` on every answer: the client's own when it is 1 to 128 printable
characters, a new one otherwise; a write's log line carries it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared_state.logs import configure_logging
from tests.api.conftest import Service, make_settings, start_service


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The command's handler in JSON format, writing to a buffer; removed afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "apscheduler")}
    stream = io.StringIO()
    configure_logging(verbose=False, stream=stream, log_format="json")
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.parametrize(
    "path",
    [
        "/api/shared-state/settings",  # the fast path
        "/api/shared-state/workspaces/research",  # routed
        "/api/shared-state/workspaces/nope",  # a routed 404
        "/no/such/path",  # no route
        "/healthz",
    ],
)
async def test_a_request_id_sent_in_comes_back(service: Service, path: str) -> None:
    """Whatever answers (fast path, handler, error, no route), the id sent is returned."""
    response = await service.client.get(path, headers={"X-Request-ID": "req 42/abc:~"})

    assert response.headers["x-request-id"] == "req 42/abc:~"


async def test_refusals_at_the_edge_carry_a_request_id_too() -> None:
    """A 401 (no token) and a 400 (Host not allowed) are answers as well."""
    settings = make_settings(
        SHARED_STATE_API_TOKEN="s3cret-token", SHARED_STATE_ALLOWED_HOSTS="test"
    )
    async with start_service(settings) as service:
        unauthorized = await service.client.get(
            "/api/shared-state", headers={"X-Request-ID": "r-401"}
        )
        wrong_host = await service.client.get(
            "/api/shared-state", headers={"X-Request-ID": "r-400", "Host": "evil.example"}
        )

    assert (unauthorized.status_code, unauthorized.headers["x-request-id"]) == (401, "r-401")
    assert (wrong_host.status_code, wrong_host.headers["x-request-id"]) == (400, "r-400")


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(None, id="none"),
        pytest.param(b"x" * 129, id="too-long"),
        pytest.param(b"", id="empty"),
        pytest.param(b"bad\x7fid", id="not-printable"),
        pytest.param("caf\u00e9".encode(), id="not-ascii"),
    ],
)
@pytest.mark.parametrize("path", ["/api/shared-state", "/api/shared-state/status"])
async def test_without_a_usable_id_each_answer_gets_a_new_one(
    service: Service, given: bytes | None, path: str
) -> None:
    """No id, or one that is not 1-128 printable characters: a fresh id, different for
    every request, never the one sent."""
    headers = [] if given is None else [(b"x-request-id", given)]
    first = await service.client.get(path, headers=headers)
    second = await service.client.get(path, headers=headers)

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    sent = None if given is None else given.decode(errors="replace")
    assert all(0 < len(i) <= 128 and i.isprintable() and i != sent for i in ids)


async def test_the_longest_allowed_id_is_kept(service: Service) -> None:
    given = "y" * 128
    response = await service.client.get("/api/shared-state", headers={"X-Request-ID": given})

    assert response.headers["x-request-id"] == given


async def test_a_writes_log_line_carries_its_request_id(
    service: Service, json_log: io.StringIO
) -> None:
    """The write's one line names the request it was for; lines after it do not."""
    response = await service.client.post(
        "/api/shared-state/ui-settings", json={"theme": "dark"}, headers={"X-Request-ID": "w-1"}
    )
    logging.getLogger("shared_state.test").info("after the request")

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    written = [line for line in lines if line["logger"] == "shared_state.api.routes"]
    assert response.status_code == 200
    assert len(written) == 1
    assert written[0]["message"].startswith("ui settings written (theme)")
    assert written[0]["request_id"] == "w-1"
    assert lines[-1]["request_id"] == "-"
