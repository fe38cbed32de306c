"""The log line of a write: one per write that went through, field names, no values."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import Service


async def test_a_write_logs_one_line_without_its_values(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """A write logs its section, its field names and the new version, not what was sent."""
    with caplog.at_level(logging.INFO, logger="shared_state.api.routes"):
        response = await service.client.post(
            "/api/shared-state/llm-settings", json={"model": "model-canary-42", "temperature": 0.5}
        )

    lines = [r.getMessage() for r in caplog.records if r.name == "shared_state.api.routes"]
    assert response.status_code == 200
    assert lines == ["llm settings written (model, temperature): version 2"]
    assert "model-canary-42" not in caplog.text


async def test_a_refused_write_logs_no_write_line(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """An invalid body is not a write: no line from the routes."""
    with caplog.at_level(logging.INFO, logger="shared_state.api.routes"):
        response = await service.client.post("/api/shared-state/ui-settings", json={})

    assert response.status_code == 422
    assert not [r for r in caplog.records if r.name == "shared_state.api.routes"]
