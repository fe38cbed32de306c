"""Propagation end to end (contract §10): the sidecar under uvicorn against the simulated
AnythingLLM and LibreChat on loopback, in both API flavours. Changes are made through the
simulators' control API, as each application's own UI would make them; writes are
counted in the simulators' write logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state import Settings
from shared_state.simulator import SimulatorServers
from shared_state.simulator.world import Flavour
from tests.e2e.conftest import Service, run_service, sidecar_settings
from tests.e2e.test_native_e2e import native_settings

SETTINGS_WRITE_PATHS = {
    "/api/v1/system/update-env",  # AnythingLLM, native
    "/api/system/update",  # AnythingLLM, bizzy
    "/api/presets",  # LibreChat, native
    "/api/user/settings",  # LibreChat, bizzy
}


@dataclass
class World:
    """Both simulators in one flavour, their control clients, and how each stores the model."""

    sims: SimulatorServers
    anythingllm: httpx.AsyncClient
    librechat: httpx.AsyncClient

    @property
    def flavour(self) -> str:
        return self.sims.flavour

    def settings(self, **overrides: Any) -> Settings:
        values = {"SHARED_STATE_PROPAGATE": "llm", **overrides}
        if self.flavour == "native":
            return native_settings(self.sims, **values)
        return sidecar_settings(self.sims, **values)

    async def set_anythingllm_model(self, model: str, provider: str = "openai") -> None:
        """Choose the model in AnythingLLM's own settings page."""
        if self.flavour == "bizzy" or provider == "openai":
            changes = {"LLMProvider": provider, "OpenAiModelPref": model}
        else:
            key = {"ollama": "OllamaLLMModelPref", "anthropic": "AnthropicModelPref"}[provider]
            changes = {"LLMProvider": provider, key: model}
        answer = await self.anythingllm.patch("/_sim/settings", json=changes)
        answer.raise_for_status()

    async def set_librechat_model(self, model: str) -> None:
        """Choose the model of LibreChat's default preset (bizzy: its `defaultModelId`)."""
        if self.flavour == "bizzy":
            answer = await self.librechat.patch(
                "/_sim/settings", json={"defaultModelId": f"openai/{model}"}
            )
        else:
            answer = await self.librechat.patch(
                "/_sim/presets/preset-default", json={"model": model}
            )
        answer.raise_for_status()

    async def librechat_model(self) -> str:
        """The model LibreChat itself holds now."""
        state = (await self.librechat.get("/_sim/state")).json()
        if self.flavour == "bizzy":
            return str(state["settings"]["defaultModelId"]).partition("/")[2]
        [default] = [p for p in state["presets"] if p.get("defaultPreset")]
        return str(default["model"])

    async def anythingllm_model(self) -> str:
        settings = (await self.anythingllm.get("/_sim/state")).json()["settings"]
        return str(settings["OpenAiModelPref"])

    async def settings_writes(self) -> dict[str, int]:
        """Settings writes each upstream accepted so far."""
        counts = {}
        for name, client in (("anythingllm", self.anythingllm), ("librechat", self.librechat)):
            writes = (await client.get("/_sim/writes")).json()
            counts[name] = sum(
                1 for w in writes if w["accepted"] and w["path"] in SETTINGS_WRITE_PATHS
            )
        return counts


@asynccontextmanager
async def simulated(flavour: Flavour) -> AsyncIterator[World]:
    async with (
        SimulatorServers(flavour=flavour) as sims,
        httpx.AsyncClient(base_url=sims.anythingllm_url) as anythingllm,
        httpx.AsyncClient(base_url=sims.librechat_url) as librechat,
    ):
        yield World(sims, anythingllm, librechat)


@pytest.fixture(params=["native", "bizzy"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    async with simulated(request.param) as both:
        yield both


@pytest.fixture
async def native_world() -> AsyncIterator[World]:
    async with simulated("native") as both:
        yield both


async def synced(service: Service) -> dict[str, Any]:
    answer = await service.post("/sync")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def propagation(service: Service) -> dict[str, Any]:
    status: dict[str, Any] = (await service.get("/status")).json()["propagation"]
    return status


async def test_a_model_chosen_in_anythingllm_reaches_librechat_after_one_sync(
    world: World,
) -> None:
    """One sync carries the change to LibreChat; the next writes nothing; the state's
    version moves and a `changed` event carries the new settings."""
    async with run_service(world.settings()) as service:
        await synced(service)
        before = await world.settings_writes()
        version = (await service.get("")).json()["version"]
        await world.set_anythingllm_model("gpt-4.1")

        report = await synced(service)

        assert await world.librechat_model() == "gpt-4.1"
        assert "settings" in report["changed"]
        after = await world.settings_writes()
        assert after == {**before, "librechat": before["librechat"] + 1}
        events = service.runtime.manager.changes_since(version) or []
        assert events[-1].changes["settings"].llm.model == "gpt-4.1"
        last = (await propagation(service))["lastPropagation"]
        assert (last["field"], last["from"], last["to"]) == (
            "provider+model",
            "anythingllm",
            "librechat",
        )
        assert last["value"] == {"provider": "openai", "model": "gpt-4.1"}

        await synced(service)
        assert await world.settings_writes() == after


async def test_a_model_chosen_in_librechat_reaches_anythingllm(world: World) -> None:
    """The reverse direction: LibreChat's default preset changed, AnythingLLM follows."""
    async with run_service(world.settings()) as service:
        await synced(service)
        await world.set_librechat_model("gpt-4o-mini")

        await synced(service)
        writes = await world.settings_writes()
        await synced(service)

        assert await world.anythingllm_model() == "gpt-4o-mini"
        assert (await service.get("/settings")).json()["llm"]["model"] == "gpt-4o-mini"
        assert await world.settings_writes() == writes


async def test_both_changed_to_the_same_model_writes_nothing(world: World) -> None:
    """The same change made in both applications just moves the base."""
    async with run_service(world.settings()) as service:
        await synced(service)
        before = await world.settings_writes()
        await world.set_anythingllm_model("gpt-4.1")
        await world.set_librechat_model("gpt-4.1")

        await synced(service)
        await synced(service)

        assert await world.settings_writes() == before
        assert (await propagation(service))["conflicts"] == []


@pytest.mark.parametrize(("policy", "winner"), [("anythingllm", "a"), ("librechat", "l")])
async def test_a_conflict_goes_to_the_policys_side(world: World, policy: str, winner: str) -> None:
    """Both changed differently: the policy's upstream wins and the other follows."""
    async with run_service(world.settings(SHARED_STATE_CONFLICT_POLICY=policy)) as service:
        await synced(service)
        await world.set_anythingllm_model("a-model")
        await world.set_librechat_model("l-model")

        await synced(service)

        expected = f"{winner}-model"
        assert await world.anythingllm_model() == expected
        assert await world.librechat_model() == expected
        assert (await propagation(service))["conflicts"] == []


async def test_a_manual_conflict_is_listed_until_an_api_write_settles_it(world: World) -> None:
    """`manual`: nothing written, the conflict in `/status` and `/metrics`, until a write."""
    settings = world.settings(SHARED_STATE_CONFLICT_POLICY="manual")
    async with run_service(settings) as service:
        await synced(service)
        before = await world.settings_writes()
        await world.set_anythingllm_model("a-model")
        await world.set_librechat_model("l-model")

        await synced(service)
        await synced(service)

        assert await world.settings_writes() == before
        status = await propagation(service)
        assert (status["groups"], status["policy"]) == (["llm"], "manual")
        [conflict] = status["conflicts"]
        assert conflict["field"] == "provider+model"
        assert conflict["values"] == {
            "anythingllm": {"provider": "openai", "model": "a-model"},
            "librechat": {"provider": "openai", "model": "l-model"},
        }
        assert conflict["base"] == {"provider": "openai", "model": "gpt-4o"}
        assert conflict["since"].endswith("Z")
        metrics = (await service.client.get("/metrics")).text
        assert "shared_state_propagation_conflicts 1.0" in metrics

        written = await service.post("/llm-settings", json={"model": "settled"})
        assert written.status_code == 200
        await synced(service)

        assert (await propagation(service))["conflicts"] == []
        assert await world.anythingllm_model() == await world.librechat_model() == "settled"
        metrics = (await service.client.get("/metrics")).text
        assert "shared_state_propagation_conflicts 0.0" in metrics


async def test_a_failed_propagation_write_is_retried_and_then_lands(world: World) -> None:
    """LibreChat refuses the first write: AnythingLLM keeps its change, the next sync lands it."""
    async with run_service(world.settings()) as service:
        await synced(service)
        fault = await world.librechat.put("/_sim/fault", json={"fail_next_writes": 1})
        assert fault.json()["fail_next_writes"] == 1
        await world.set_anythingllm_model("gpt-4.1")

        await synced(service)

        assert await world.librechat_model() == "gpt-4o"
        assert await world.anythingllm_model() == "gpt-4.1"
        metrics = (await service.client.get("/metrics")).text
        assert (
            'shared_state_propagations_total{field="provider+model",from="anythingllm",'
            'outcome="failed",to="librechat"} 1.0'
        ) in metrics

        await synced(service)

        assert await world.librechat_model() == "gpt-4.1"
        metrics = (await service.client.get("/metrics")).text
        assert 'outcome="ok",to="librechat"} 1.0' in metrics


async def test_a_provider_the_other_side_cannot_express_is_reported(world: World) -> None:
    """Neither provider nor model is written; the pair is listed in `unwritable`."""
    # Native LibreChat has no endpoint for ollama; bizzy's `provider/model` cannot hold a '/'.
    provider = "ollama" if world.flavour == "native" else "my/provider"
    async with run_service(world.settings()) as service:
        await synced(service)
        before = await world.settings_writes()
        await world.set_anythingllm_model("llama3", provider=provider)

        await synced(service)
        await synced(service)

        assert await world.settings_writes() == before
        assert await world.librechat_model() == "gpt-4o"
        assert (await propagation(service))["unwritable"] == [
            {
                "field": "provider+model",
                "from": "anythingllm",
                "value": {"provider": provider, "model": "llama3"},
            }
        ]


async def test_a_stale_source_never_propagates(world: World) -> None:
    """While AnythingLLM cannot be read, LibreChat's change is not written to it, nor is
    AnythingLLM's last good data written to LibreChat."""
    async with run_service(world.settings()) as service:
        await synced(service)
        before = await world.settings_writes()
        await world.anythingllm.put("/_sim/fault", json={"reads": "error"})
        await world.set_librechat_model("gpt-4o-mini")

        report = await synced(service)

        assert report["sources"]["anythingllm"]["status"] == "stale"
        assert await world.settings_writes() == before
        assert await world.anythingllm_model() == "gpt-4o"


async def test_a_restart_keeps_the_base(world: World, tmp_path: Path) -> None:
    """With a snapshot file, a restart does not settle an old difference by who answered
    first (an open manual conflict stays open), but a change made while the service was
    down propagates."""
    settings = world.settings(
        SHARED_STATE_SNAPSHOT_PATH=str(tmp_path / "snapshot.json"),
        SHARED_STATE_CONFLICT_POLICY="manual",
    )
    async with run_service(settings) as service:
        await synced(service)
        await world.set_anythingllm_model("a-model")
        await world.set_librechat_model("l-model")
        await synced(service)
        assert len((await propagation(service))["conflicts"]) == 1
    before = await world.settings_writes()

    async with run_service(settings) as service:
        await synced(service)
        assert await world.settings_writes() == before
        [conflict] = (await propagation(service))["conflicts"]
        assert conflict["base"] == {"provider": "openai", "model": "gpt-4o"}
        assert (await service.post("/llm-settings", json={"model": "agreed"})).status_code == 200

    await world.set_anythingllm_model("while-down")  # the service is not running
    async with run_service(settings) as service:
        await synced(service)
        assert await world.librechat_model() == "while-down"


async def test_with_propagation_off_nothing_is_written(world: World) -> None:
    """`SHARED_STATE_PROPAGATE` empty: the service only merges, as before."""
    async with run_service(world.settings(SHARED_STATE_PROPAGATE="")) as service:
        await synced(service)
        before = await world.settings_writes()
        await world.set_anythingllm_model("gpt-4.1")

        await synced(service)

        assert await world.settings_writes() == before
        assert await world.librechat_model() == "gpt-4o"
        status = await propagation(service)
        assert status == {
            "groups": [],
            "policy": "anythingllm",
            "fields": [],
            "lastPropagation": None,
            "conflicts": [],
            "unwritable": [],
        }


async def test_an_endpoint_anythingllm_cannot_express_is_reported(native_world: World) -> None:
    """The other direction: a LibreChat endpoint with no AnythingLLM provider (native; the
    bizzy AnythingLLM stores any provider name)."""
    world = native_world
    async with run_service(world.settings()) as service:
        await synced(service)
        before = await world.settings_writes()
        patched = await world.librechat.patch(
            "/_sim/presets/preset-default", json={"endpoint": "agents", "model": "agent_x"}
        )
        patched.raise_for_status()

        await synced(service)

        assert await world.settings_writes() == before
        assert await world.anythingllm_model() == "gpt-4o"
        [unwritable] = (await propagation(service))["unwritable"]
        assert unwritable["from"] == "librechat"
        assert unwritable["value"] == {"provider": "agents", "model": "agent_x"}


async def test_temperature_propagates_where_both_store_it(world: World) -> None:
    """The bizzy flavours both store temperature: it propagates on its own; natively only
    the pair does (AnythingLLM has no global temperature)."""
    async with run_service(world.settings()) as service:
        await synced(service)
        fields = (await propagation(service))["fields"]
        if world.flavour == "native":
            assert fields == ["provider+model"]
            return
        assert fields == ["provider+model", "temperature", "maxTokens"]
        await world.anythingllm.patch("/_sim/settings", json={"Temperature": 0.3})

        await synced(service)

        settings = (await world.librechat.get("/_sim/state")).json()["settings"]
        assert settings["defaultTemperature"] == 0.3
        assert settings["defaultModelId"] == "openai/gpt-4o"
