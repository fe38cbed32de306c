"""`shared-state serve` with `SHARED_STATE_LOG_FORMAT=json`: every line on stderr is one
JSON object, uvicorn's own lines included, and the lines about a request carry the
`X-Request-ID` it sent (which it also gets back)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_process_e2e import serve, stop


async def test_json_logs_are_one_object_per_line_and_carry_the_request_id(
    tmp_path: Path,
) -> None:
    """A UI write and a `POST /sync`, each with its own request id, under `serve`: both
    ids come back, stderr parses line by line, uvicorn's start-up and access lines are
    among the objects, and the write's and the sync's lines name their request."""
    env = {"SHARED_STATE_LOG_FORMAT": "json", "SHARED_STATE_ACCESS_LOG": "true"}
    async with serve(env, tmp_path) as served:
        async with httpx.AsyncClient(base_url=served.url) as client:
            write = await client.post(
                "/api/shared-state/ui-settings",
                json={"theme": "dark"},
                headers={"X-Request-ID": "write-4711"},
            )
            sync = await client.post(
                "/api/shared-state/sync", headers={"X-Request-ID": "sync-4712"}
            )
        code, stderr, _ = await stop(served.process)

    assert code == 0, stderr
    assert (write.status_code, write.headers["x-request-id"]) == (200, "write-4711")
    assert (sync.status_code, sync.headers["x-request-id"]) == (200, "sync-4712")
    lines: list[dict[str, Any]] = [json.loads(line) for line in stderr.splitlines()]
    assert all(
        {"time", "level", "logger", "message", "request_id"} <= line.keys() for line in lines
    )
    by_logger = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access"} <= by_logger, by_logger
    assert any(
        line["logger"] == "shared_state.api.routes"
        and line["message"].startswith("ui settings written")
        and line["request_id"] == "write-4711"
        for line in lines
    ), lines
    assert any(
        line["logger"] == "shared_state.service.sync"
        and line["message"].startswith("sync finished")
        and line["request_id"] == "sync-4712"
        for line in lines
    ), lines
    assert any(
        line["logger"] == "uvicorn.access"
        and "POST /api/shared-state/sync" in line["message"]
        and line["request_id"] == "sync-4712"
        for line in lines
    ), lines
