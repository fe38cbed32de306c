"""The sidecar end to end: real HTTP on loopback, against the simulated upstreams."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from shared_state.errors import SubscriptionDropped
from shared_state.simulator import SECRET_CANARY, SimulatorServers
from tests.e2e.conftest import Service, run_service, sidecar_settings

SimClients = tuple[httpx.AsyncClient, httpx.AsyncClient]


async def test_every_get_endpoint_answers_from_the_synced_state(service: Service) -> None:
    """Each section GET returns the matching part of the merged state of both upstreams."""
    state = (await service.get("")).json()
    assert state["version"] == 1
    assert state["user"]["username"] == "ada"
    assert state["user"]["anythingLLM"]["id"] == 1
    assert state["user"]["libreChat"]["id"] == "665f0c1a2b3c4d5e6f708192"
    assert state["settings"]["llm"] == {
        "provider": "openai",
        "model": "gpt-4o",
        "temperature": 0.7,
        "maxTokens": 4096,
    }
    assert state["settings"]["ui"] == {"theme": "dark", "fontSize": "medium"}
    assert len(state["workspaces"]) == 5
    assert len(state["conversations"]) == 40
    assert {s["status"] for s in state["sources"].values()} == {"ok"}

    assert (await service.get("/user")).json() == state["user"]
    assert (await service.get("/settings")).json() == state["settings"]
    assert (await service.get("/workspaces")).json() == state["workspaces"]
    assert (await service.get("/conversations")).json() == state["conversations"]
    by_slug = (await service.get("/workspaces/engineering-docs")).json()
    assert (await service.get(f"/workspaces/{by_slug['id']}")).json() == by_slug
    assert (await service.get("/conversations/c-0040")).json()["id"] == "c-0040"
    missing = await service.get("/conversations/c-9999")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")

    status = (await service.get("/status")).json()
    assert status["version"] == 1
    assert status["syncIntervalS"] == 3600
    assert set(status) == {
        "version",
        "syncTimestamp",
        "sources",
        "syncIntervalS",
        "subscribers",
        "uptimeS",
        "propagation",
        "store",
    }
    assert (await service.client.get("/healthz")).status_code == 200
    assert (await service.client.get("/readyz")).status_code == 200


async def test_a_change_upstream_appears_after_sync_with_a_new_version_and_one_event(
    service: Service, sim_clients: SimClients
) -> None:
    """A workspace added in the simulator shows up after POST /sync, with one `changed` event."""
    anythingllm, _ = sim_clients
    async with service.runtime.manager.subscribe() as events:
        created = await anythingllm.post("/_sim/workspaces", json={"name": "Field notes"})
        assert created.status_code == 201

        report = (await service.post("/sync")).json()
        assert report["version"] == 2
        assert report["changed"] == ["workspaces"]
        assert set(report) == {"version", "changed", "sources", "durationMs"}

        event = await asyncio.wait_for(anext(events), timeout=5)
    assert event.type == "changed"
    assert (event.version, event.previous_version) == (2, 1)
    assert [w["slug"] for w in event.changes["workspaces"].added] == ["field-notes"]
    assert (await service.get("/workspaces/field-notes")).json()["name"] == "Field notes"

    again = (await service.post("/sync")).json()
    assert (again["version"], again["changed"]) == (2, [])


async def test_refresh_true_syncs_before_answering(
    service: Service, sim_clients: SimClients
) -> None:
    """A GET answers from memory; the same GET with ?refresh=true sees the upstream's change."""
    _, librechat = sim_clients
    await librechat.patch("/_sim/settings", json={"theme": "light"})
    assert (await service.get("/settings")).json()["ui"]["theme"] == "dark"
    refreshed = (await service.get("/settings", params={"refresh": "true"})).json()
    assert refreshed["ui"]["theme"] == "light"


@pytest.mark.parametrize("fault", ["error", "html", "malformed", "wrong_shape"])
async def test_an_upstream_failure_marks_it_stale_and_keeps_its_data(
    service: Service, sim_clients: SimClients, fault: str
) -> None:
    """LibreChat failing (500, HTML 200, bad JSON, wrong shape) keeps all its data."""
    _, librechat = sim_clients
    before = (await service.get("")).json()
    await librechat.put("/_sim/fault", json={"reads": fault})

    report = (await service.post("/sync")).json()

    after = (await service.get("")).json()
    assert after["sources"]["librechat"]["status"] == "stale"
    assert after["sources"]["librechat"]["lastError"]
    assert after["sources"]["anythingllm"]["status"] == "ok"
    assert after["conversations"] == before["conversations"]
    assert after["settings"] == before["settings"]
    assert after["user"] == before["user"]
    assert report["changed"] == ["sources"]
    assert after["version"] == before["version"] + 1


async def test_a_slow_upstream_times_out_and_is_reported(
    sims: SimulatorServers, sim_clients: SimClients
) -> None:
    """An upstream slower than SHARED_STATE_REQUEST_TIMEOUT_S goes stale with a timeout error."""
    _, librechat = sim_clients
    settings = sidecar_settings(sims, SHARED_STATE_REQUEST_TIMEOUT_S=0.2)
    async with run_service(settings) as service:
        await librechat.put("/_sim/fault", json={"reads": "slow", "delay_s": 5})
        await service.post("/sync")
        source = (await service.get("/status")).json()["sources"]["librechat"]
    assert source["status"] == "stale"
    assert "timed out" in source["lastError"]


async def test_an_llm_write_lands_in_both_upstreams(
    service: Service, sim_clients: SimClients
) -> None:
    """POST /llm-settings writes through to both simulators and the state takes it at once."""
    anythingllm, librechat = sim_clients
    answer = await service.post("/llm-settings", json={"model": "gpt-4o-mini", "temperature": 0})
    assert answer.status_code == 200
    assert answer.json() == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "temperature": 0,
        "maxTokens": 4096,
    }
    assert (await service.get("")).json()["version"] == 2
    allm_settings = (await anythingllm.get("/_sim/state")).json()["settings"]
    assert (allm_settings["OpenAiModelPref"], allm_settings["Temperature"]) == ("gpt-4o-mini", 0)
    lc_settings = (await librechat.get("/_sim/state")).json()["settings"]
    assert lc_settings["defaultModelId"] == "openai/gpt-4o-mini"
    assert lc_settings["defaultTemperature"] == 0


async def test_a_write_one_upstream_refuses_is_rolled_back(
    service: Service, sim_clients: SimClients
) -> None:
    """LibreChat refusing a write: 502, AnythingLLM put back (seen in the simulator), state kept."""
    anythingllm, librechat = sim_clients
    before = (await service.get("")).json()
    await librechat.put("/_sim/fault", json={"writes": "fail"})

    answer = await service.post("/llm-settings", json={"model": "gpt-4.1", "maxTokens": 8192})

    assert answer.status_code == 502
    body = answer.json()
    assert body["code"] == "upstream_write_failed"
    assert body["results"] == {"anythingllm": "rolled_back", "librechat": "failed"}
    writes = (await anythingllm.get("/_sim/writes")).json()
    assert [w["body"] for w in writes] == [
        {"OpenAiModelPref": "gpt-4.1", "MaxTokens": 8192},
        {"OpenAiModelPref": "gpt-4o", "MaxTokens": 4096},
    ]
    allm_settings = (await anythingllm.get("/_sim/state")).json()["settings"]
    assert (allm_settings["OpenAiModelPref"], allm_settings["MaxTokens"]) == ("gpt-4o", 4096)
    assert (await service.get("")).json() == before


async def test_a_ui_write_goes_to_librechat_only(service: Service, sim_clients: SimClients) -> None:
    """UI settings are stored by LibreChat; AnythingLLM is not asked."""
    anythingllm, librechat = sim_clients
    answer = await service.post("/ui-settings", json={"theme": "light", "fontSize": "large"})
    assert answer.json() == {"theme": "light", "fontSize": "large"}
    assert (await anythingllm.get("/_sim/writes")).json() == []
    lc_settings = (await librechat.get("/_sim/state")).json()["settings"]
    assert (lc_settings["theme"], lc_settings["fontSize"]) == ("light", "large")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/llm-settings", {}),
        ("/llm-settings", {"temperature": 3}),
        ("/llm-settings", {"model": "x", "apiKey": "sk-1"}),
        ("/llm-settings", {"maxTokens": "4096"}),
        ("/ui-settings", {"theme": "neon"}),
        ("/ui-settings", b"{not json"),
    ],
)
async def test_bad_input_gets_422_and_changes_nothing(
    service: Service, sim_clients: SimClients, path: str, body: object
) -> None:
    """Invalid write bodies are refused before any upstream is asked."""
    anythingllm, librechat = sim_clients
    before = (await service.get("")).json()
    if isinstance(body, bytes):
        answer = await service.post(
            path, content=body, headers={"content-type": "application/json"}
        )
    else:
        answer = await service.post(path, json=body)
    assert answer.status_code == 422
    assert isinstance(answer.json()["detail"], list)
    assert (await service.get("")).json() == before
    assert (await anythingllm.get("/_sim/writes")).json() == []
    assert (await librechat.get("/_sim/writes")).json() == []


async def test_secrets_never_reach_responses_logs_or_the_snapshot(
    sims: SimulatorServers, snapshot_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulator's secret canary appears in no answer, no log line and no snapshot byte."""
    caplog.set_level(logging.DEBUG)
    settings = sidecar_settings(sims, SHARED_STATE_SNAPSHOT_PATH=str(snapshot_path))
    answers: list[str] = []
    async with run_service(settings) as service:
        await service.post("/sync")
        for path in ["", "/user", "/settings", "/workspaces", "/conversations", "/status"]:
            answers.append((await service.get(path)).text)
        answers.append((await service.post("/llm-settings", json={"temperature": 0.5})).text)
        answers.append((await service.client.get("/openapi.json")).text)
    assert all(SECRET_CANARY not in answer for answer in answers)
    assert "password" not in answers[0]
    assert SECRET_CANARY not in caplog.text
    assert snapshot_path.exists()
    assert SECRET_CANARY.encode() not in snapshot_path.read_bytes()


async def test_restart_from_snapshot_with_both_upstreams_down(
    sims: SimulatorServers, snapshot_path: Path
) -> None:
    """After a restart with both upstreams down: ready at once, last data served, version on."""
    settings = sidecar_settings(sims, SHARED_STATE_SNAPSHOT_PATH=str(snapshot_path))
    async with run_service(settings) as first:
        await first.post("/sync")
        await first.post("/ui-settings", json={"theme": "light"})
        saved = (await first.get("")).json()
    assert saved["version"] == 2

    dead = sidecar_settings(
        sims,
        ANYTHINGLLM_BASE_URL="http://127.0.0.1:9",  # discard port: nothing listens
        LIBRECHAT_BASE_URL="http://127.0.0.1:9",
        SHARED_STATE_SNAPSHOT_PATH=str(snapshot_path),
    )
    async with run_service(dead) as second:
        assert (await second.client.get("/readyz")).status_code == 200
        restored = (await second.get("")).json()
        assert restored["version"] == saved["version"] + 1
        assert {s["status"] for s in restored["sources"].values()} == {"stale"}
        for section in ("user", "settings", "workspaces", "conversations"):
            assert restored[section] == saved[section]

        await second.post("/sync")
        after_failed_sync = (await second.get("")).json()
    assert after_failed_sync["version"] == restored["version"]
    assert after_failed_sync["settings"]["ui"]["theme"] == "light"
    assert after_failed_sync["sources"]["anythingllm"]["lastError"]


async def test_a_subscriber_that_stops_reading_is_dropped_without_blocking_syncs(
    service: Service, sim_clients: SimClients
) -> None:
    """Syncs go on while a subscriber never reads; that subscriber is told it was dropped."""
    _, librechat = sim_clients
    stalled = service.runtime.manager.subscribe()
    for n in range(300):
        await librechat.patch("/_sim/conversations/c-0001", json={"title": f"Draft {n}"})
        await service.runtime.synchronizer.sync()
    assert (await service.get("")).json()["version"] == 301
    with pytest.raises(SubscriptionDropped):
        async for _ in stalled:
            pass
