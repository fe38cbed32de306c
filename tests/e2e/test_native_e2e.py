"""The sidecar end to end in the default `native` flavour: real HTTP on loopback against
the simulator of the real AnythingLLM and LibreChat APIs (logins, JWT expiry and refresh,
cursor pages, presets, string-only update-env, HTML for unknown paths)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared_state import Settings
from shared_state.simulator import (
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SimulatorServers,
)
from tests.e2e.conftest import Service, run_service

Sims = tuple[httpx.AsyncClient, httpx.AsyncClient]


def native_settings(sims: SimulatorServers, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "ANYTHINGLLM_USERNAME": SIM_ANYTHINGLLM_USERNAME,
        "ANYTHINGLLM_PASSWORD": SIM_ANYTHINGLLM_PASSWORD,
        "LIBRECHAT_BASE_URL": sims.librechat_url,
        "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
        "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        "SHARED_STATE_SYNC_INTERVAL_S": 3600,
        "SHARED_STATE_REQUEST_TIMEOUT_S": 5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def native_sims() -> AsyncIterator[SimulatorServers]:
    async with SimulatorServers(flavour="native") as servers:
        yield servers


@pytest.fixture
async def sims(native_sims: SimulatorServers) -> AsyncIterator[Sims]:
    """Control clients: (AnythingLLM, LibreChat)."""
    async with (
        httpx.AsyncClient(base_url=native_sims.anythingllm_url) as anythingllm,
        httpx.AsyncClient(base_url=native_sims.librechat_url) as librechat,
    ):
        yield anythingllm, librechat


@pytest.fixture
async def service(native_sims: SimulatorServers) -> AsyncIterator[Service]:
    async with run_service(native_settings(native_sims)) as running:
        await running.runtime.synchronizer.sync()
        yield running


async def _stats(client: httpx.AsyncClient) -> dict[str, Any]:
    stats: dict[str, Any] = (await client.get("/_sim/stats")).json()
    return stats


async def test_every_section_is_filled_from_the_real_apis(service: Service, sims: Sims) -> None:
    """User, LLM settings, embedding, vector DB, workspaces and conversations all arrive."""
    state = (await service.get("")).json()
    assert {s["status"] for s in state["sources"].values()} == {"ok"}
    user = state["user"]
    assert user["anythingLLM"] is not None
    assert user["libreChat"]["email"] == SIM_LIBRECHAT_EMAIL
    llm = state["settings"]["llm"]
    assert (llm["provider"], llm["model"]) == ("openai", "gpt-4o")
    assert (llm["temperature"], llm["maxTokens"]) == (0.7, 4096)  # the default preset
    assert state["settings"]["vectorDb"] == {"provider": "lancedb", "settings": {}}
    assert state["settings"]["ui"] == {"theme": "system", "fontSize": "medium"}
    assert len(state["workspaces"]) == 5
    assert all("threads" in w for w in state["workspaces"])
    assert len(state["conversations"]) == 37  # 40 seeded, 3 archived
    assert all(c["id"] == c["conversationId"] for c in state["conversations"])
    updated = [c["updatedAt"] for c in state["conversations"]]
    assert updated == sorted(updated, reverse=True)
    assert SECRET_CANARY not in (await service.get("")).text


async def test_an_expired_access_token_is_refreshed_without_a_new_login(
    service: Service, sims: Sims
) -> None:
    """LibreChat's access token expiring mid-run costs a refresh, not a login."""
    _, librechat = sims
    logins = (await _stats(librechat))["logins"]
    await librechat.post("/_sim/auth/expire-access-tokens")
    report = (await service.post("/sync")).json()
    stats = await _stats(librechat)
    assert report["sources"]["librechat"]["status"] == "ok"
    assert stats["logins"] == logins
    assert stats["refreshes"] >= 1


async def test_a_failed_refresh_costs_exactly_one_new_login(service: Service, sims: Sims) -> None:
    """With the refresh session gone too, the sidecar logs in again exactly once."""
    _, librechat = sims
    logins = (await _stats(librechat))["logins"]
    await librechat.post("/_sim/auth/revoke-sessions")
    await librechat.post("/_sim/auth/expire-access-tokens")
    report = (await service.post("/sync")).json()
    assert report["sources"]["librechat"]["status"] == "ok"
    assert (await _stats(librechat))["logins"] == logins + 1


async def test_the_login_rate_limit_backs_off_and_is_reported(service: Service, sims: Sims) -> None:
    """A 429 on login: the source goes stale saying so, and the next sync does not log in."""
    _, librechat = sims
    await librechat.put("/_sim/auth", json={"login_max": 0})
    await librechat.post("/_sim/auth/revoke-sessions")
    await librechat.post("/_sim/auth/expire-access-tokens")

    await service.post("/sync")
    after_first = await _stats(librechat)
    await service.post("/sync")
    after_second = await _stats(librechat)

    source = (await service.get("/status")).json()["sources"]["librechat"]
    assert source["status"] == "stale"
    assert "rate-limited" in source["lastError"]
    assert after_first["login_rejections_429"] == 1
    assert after_second["logins"] == after_first["logins"]  # backed off: no second attempt
    assert after_second["forbidden_calls"] == 0
    assert len((await service.get("/conversations")).json()) == 37  # data kept


async def test_a_sync_where_nothing_changed_reads_one_conversation_page(
    service: Service, sims: Sims
) -> None:
    """After the first full scan, an unchanged LibreChat costs one `GET /api/convos`."""
    _, librechat = sims
    await librechat.delete("/_sim/stats")
    report = (await service.post("/sync")).json()
    assert report["changed"] == []
    assert (await _stats(librechat))["convo_page_requests"] == 1


async def test_ten_thousand_conversations_are_paginated(
    native_sims: SimulatorServers, sims: Sims
) -> None:
    """10,000 new conversations arrive through cursor pages, capped at the most recent."""
    _, librechat = sims
    await librechat.post("/_sim/conversations/bulk", json={"count": 10_000})
    async with run_service(native_settings(native_sims)) as service:
        await service.runtime.synchronizer.sync()
        conversations = (await service.get("/conversations")).json()
    assert len(conversations) == 10_000
    assert len({c["id"] for c in conversations}) == 10_000
    stats = await _stats(librechat)
    assert stats["convo_page_requests"] >= 100


async def test_an_updated_conversation_arrives_at_an_incremental_sync(
    service: Service, sims: Sims
) -> None:
    """A conversation renamed upstream is picked up without a full scan."""
    _, librechat = sims
    await librechat.patch("/_sim/conversations/c-0001", json={"title": "Renamed plan"})
    report = (await service.post("/sync")).json()
    assert report["changed"] == ["conversations"]
    first = (await service.get("/conversations")).json()[0]
    assert (first["id"], first["title"]) == ("c-0001", "Renamed plan")


async def test_a_deleted_conversation_stays_until_a_full_scan(
    native_sims: SimulatorServers, sims: Sims
) -> None:
    """Incremental syncs cannot see deletions; a full scan removes the conversation."""
    _, librechat = sims
    settings = native_settings(native_sims, LIBRECHAT_FULL_SCAN_EVERY=1000)
    async with run_service(settings) as service:
        await service.runtime.synchronizer.sync()
        await librechat.delete("/_sim/conversations/c-0040")
        await service.post("/sync")
        assert (await service.get("/conversations/c-0040")).status_code == 200

    async with run_service(native_settings(native_sims, LIBRECHAT_FULL_SCAN_EVERY=1)) as service:
        await service.runtime.synchronizer.sync()
        await librechat.delete("/_sim/conversations/c-0039")
        await service.post("/sync")
        assert (await service.get("/conversations/c-0039")).status_code == 404


async def test_html_from_anythingllm_is_a_failure_and_data_is_kept(
    service: Service, sims: Sims
) -> None:
    """AnythingLLM's 200 HTML page (what it answers for unknown paths) never becomes data."""
    anythingllm, _ = sims
    before = (await service.get("")).json()
    await anythingllm.put("/_sim/fault", json={"reads": "html"})
    await service.post("/sync")
    after = (await service.get("")).json()
    assert after["sources"]["anythingllm"]["status"] == "stale"
    assert "text/html" in after["sources"]["anythingllm"]["lastError"]
    assert after["workspaces"] == before["workspaces"]
    assert after["settings"] == before["settings"]


async def test_an_llm_write_lands_in_anythingllm_and_the_default_preset(
    service: Service, sims: Sims
) -> None:
    """Provider and model go to update-env as strings; all four fields to the preset."""
    anythingllm, librechat = sims
    answer = await service.post(
        "/llm-settings",
        json={"provider": "anthropic", "model": "claude-sonnet-4-6", "temperature": 0.3},
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
        "temperature": 0.3,
        "maxTokens": 4096,
    }
    allm = (await anythingllm.get("/_sim/state")).json()["settings"]
    assert (allm["LLMProvider"], allm["AnthropicModelPref"]) == ("anthropic", "claude-sonnet-4-6")
    presets = (await librechat.get("/_sim/state")).json()["presets"]
    default = next(p for p in presets if p.get("defaultPreset"))
    assert (default["endpoint"], default["model"], default["temperature"]) == (
        "anthropic",
        "claude-sonnet-4-6",
        0.3,
    )
    after_sync = (await service.get("/settings", params={"refresh": "true"})).json()
    assert after_sync["llm"] == answer.json()
    assert (await _stats(anythingllm))["vector_resets"] == 0


async def test_update_env_stopping_at_an_invalid_key_is_rolled_back_with_502(
    service: Service, sims: Sims
) -> None:
    """AnythingLLM refusing the provider after taking the model: 502, both put back."""
    anythingllm, librechat = sims
    await anythingllm.put("/_sim/llm-providers", json={"unsupported": ["cerebras"]})
    before = (await service.get("")).json()
    answer = await service.post(
        "/llm-settings", json={"provider": "cerebras", "model": "llama-3.3-70b"}
    )
    assert answer.status_code == 502
    assert answer.json()["results"] == {"anythingllm": "failed", "librechat": "rolled_back"}
    allm = (await anythingllm.get("/_sim/state")).json()["settings"]
    assert (allm["LLMProvider"], allm["LLMModel"]) == ("openai", "gpt-4o")
    presets = (await librechat.get("/_sim/state")).json()["presets"]
    default = next(p for p in presets if p.get("defaultPreset"))
    assert (default["endpoint"], default["model"]) == ("openAI", "gpt-4o")
    assert (await service.get("")).json() == before


async def test_ui_settings_are_kept_by_the_service_in_native_mode(
    service: Service, sims: Sims
) -> None:
    """LibreChat keeps theme and font size in the browser: the service keeps them."""
    anythingllm, librechat = sims
    answer = await service.post("/ui-settings", json={"theme": "dark", "fontSize": "large"})
    assert answer.json() == {"theme": "dark", "fontSize": "large"}
    assert (await anythingllm.get("/_sim/writes")).json() == []
    assert (await librechat.get("/_sim/writes")).json() == []
    await service.post("/sync")
    assert (await service.get("/settings")).json()["ui"] == {"theme": "dark", "fontSize": "large"}


async def test_the_sidecar_never_calls_paths_that_ban_non_browser_clients(
    service: Service, sims: Sims
) -> None:
    """After syncs and writes, LibreChat saw no call to agents, assistants or keys."""
    _, librechat = sims
    await service.post("/sync")
    await service.post("/llm-settings", json={"temperature": 0.5})
    stats = await _stats(librechat)
    assert stats["forbidden_calls"] == 0
    assert not [
        p for p in stats["paths"] if p.startswith(("/api/agents", "/api/assistants", "/api/keys"))
    ]
