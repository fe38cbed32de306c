"""The GET fast path on a real uvicorn server: the same answer as the routed handler
(reached with a query string), headers included, with and without the token."""

from __future__ import annotations

import pytest

from shared_state.simulator import SimulatorServers
from tests.e2e.conftest import run_service, sidecar_settings

TOKEN = "s3cret-token"
SECTIONS = ["", "/user", "/settings", "/workspaces", "/conversations"]


@pytest.mark.parametrize("token", [None, TOKEN])
async def test_fast_and_routed_answers_match_on_a_real_server(
    sims: SimulatorServers, token: str | None
) -> None:
    """For the state and each section: same status, headers (but the date) and bytes."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers["X-Request-ID"] = "same-request"  # otherwise each answer has its own
    async with run_service(sidecar_settings(sims, SHARED_STATE_API_TOKEN=token)) as service:
        await service.runtime.synchronizer.sync()
        pairs = [
            (
                await service.get(section, headers=headers),
                await service.get(section, headers=headers, params={"refresh": "false"}),
            )
            for section in SECTIONS
        ]

    for fast, routed in pairs:
        assert fast.status_code == routed.status_code == 200
        assert fast.content == routed.content
        assert _without_date(fast.headers.multi_items()) == _without_date(
            routed.headers.multi_items()
        )


def _without_date(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name != "date"]
