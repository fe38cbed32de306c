"""Tests of the simulated AnythingLLM and LibreChat upstreams, bizzy flavour, through HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared_state.simulator import (
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_LIBRECHAT_TOKEN,
    AnythingLLMWorld,
    LibreChatWorld,
    SimulatorServers,
    World,
    create_anythingllm_app,
    create_librechat_app,
)
from shared_state.simulator.control import release_slow_reads

JS_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ALLM_AUTH = {"Authorization": f"Bearer {SIM_ANYTHINGLLM_API_KEY}"}
LC_AUTH = {"Authorization": f"Bearer {SIM_LIBRECHAT_TOKEN}"}
ALLM_READS = ("/api/me", "/api/system/settings", "/api/workspaces")
LC_READS = ("/api/user/me", "/api/user/settings", "/api/conversations")


@pytest.fixture
def world() -> World:
    """A freshly seeded world."""
    return World.seed()


@pytest.fixture
async def allm(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the simulated AnythingLLM, sending the right API key."""
    app = create_anythingllm_app(world.anythingllm)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers=ALLM_AUTH
    ) as client:
        yield client


@pytest.fixture
async def lc(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the simulated LibreChat, sending the right token."""
    app = create_librechat_app(world.librechat)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers=LC_AUTH
    ) as client:
        yield client


def secrets_in(value: Any) -> list[str]:
    """Every string inside a JSON value that contains the canary."""
    return [s for s in re.findall(r'"((?:[^"\\]|\\.)*)"', json.dumps(value)) if SECRET_CANARY in s]


def test_seed_is_deterministic_and_sized() -> None:
    """Two seeds are equal, with five workspaces and forty conversations newest first."""
    first, second = World.seed(), World.seed()
    assert first == second
    assert len(first.anythingllm.workspaces) == 5
    conversations = first.librechat.conversations
    assert len(conversations) == 40
    assert len({c.title for c in conversations}) == 40
    updated = [c.updated_at for c in conversations]
    assert updated == sorted(updated, reverse=True)
    assert conversations[0].conversation_id == "c-0040"


def test_world_reset_restores_seed_in_place() -> None:
    """Resetting a world restores the seed data without replacing the upstream objects."""
    world = World.seed()
    allm, lc = world.anythingllm, world.librechat
    allm.settings["LLMProvider"] = "anthropic"
    allm.faults.reads = "error"
    allm.record_write("/api/system/update", {}, accepted=True)
    lc.add_conversation("new")
    world.reset()
    assert world.anythingllm is allm
    assert world.librechat is lc
    assert world == World.seed()


@pytest.mark.parametrize(
    ("factory", "path", "headers"),
    [
        (create_anythingllm_app, "/api/me", {}),
        (create_anythingllm_app, "/api/workspaces", {"Authorization": "Bearer nope"}),
        (
            create_anythingllm_app,
            "/api/system/settings",
            {"Authorization": SIM_ANYTHINGLLM_API_KEY},
        ),
        (create_librechat_app, "/api/user/me", {}),
        (
            create_librechat_app,
            "/api/conversations",
            {"Authorization": f"Basic {SIM_LIBRECHAT_TOKEN}"},
        ),
        (create_librechat_app, "/api/user/settings", ALLM_AUTH),
    ],
)
async def test_api_routes_reject_missing_or_wrong_credentials(
    world: World, factory: Any, path: str, headers: dict[str, str]
) -> None:
    """An `/api` request without the right bearer credential gets 401 `unauthorized`."""
    upstream = world.anythingllm if factory is create_anythingllm_app else world.librechat
    transport = httpx.ASGITransport(app=factory(upstream))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}


async def test_unauthorized_write_is_not_applied(world: World) -> None:
    """A write without the right key changes nothing and is logged as not accepted."""
    transport = httpx.ASGITransport(app=create_anythingllm_app(world.anythingllm))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        response = await client.post("/api/system/update", json={"LLMProvider": "anthropic"})
        writes = (await client.get("/_sim/writes")).json()
    assert response.status_code == 401
    assert world.anythingllm.settings["LLMProvider"] == "openai"
    assert writes == [
        {"path": "/api/system/update", "body": {"LLMProvider": "anthropic"}, "accepted": False}
    ]


async def test_credential_none_turns_auth_off(world: World) -> None:
    """With api_key/token None, requests without credentials are answered."""
    for app, path in (
        (create_anythingllm_app(world.anythingllm, api_key=None), "/api/me"),
        (create_librechat_app(world.librechat, token=None), "/api/user/me"),
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            response = await client.get(path)
        assert response.status_code == 200


async def test_control_routes_need_no_auth(world: World) -> None:
    """The `/_sim` routes answer without any credential."""
    transport = httpx.ASGITransport(app=create_librechat_app(world.librechat))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        response = await client.get("/_sim/state")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "ada"


async def test_anythingllm_reads(allm: httpx.AsyncClient) -> None:
    """The AnythingLLM reads answer the user, the settings and the workspaces as bare JSON."""
    me = await allm.get("/api/me")
    assert me.headers["content-type"] == "application/json"
    assert me.json() == {
        "id": 1,
        "username": "ada",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "role": "admin",
        "password": f"{SECRET_CANARY}-pw",
        "createdAt": "2026-08-01T12:00:00.000Z",
        "recoveryCodes": [f"{SECRET_CANARY}-recovery"],
        "web_push_subscription_config": {"keys": {"p256dh": f"{SECRET_CANARY}-push"}},
    }
    settings = (await allm.get("/api/system/settings")).json()
    assert settings["LLMProvider"] == "openai"
    assert settings["MaxTokens"] == 4096
    assert settings["MultiUserMode"] is False
    assert settings["VectorDBSettings"]["path"] == "/storage/lancedb"
    workspaces = (await allm.get("/api/workspaces")).json()
    assert isinstance(workspaces, list)
    assert [w["id"] for w in workspaces] == [1, 2, 3, 4, 5]
    for workspace in workspaces:
        assert set(workspace) == {
            "id",
            "name",
            "slug",
            "createdAt",
            "openAiTemp",
            "chatProvider",
            "chatModel",
            "documents",
        }
        assert JS_ISO.match(workspace["createdAt"])
    assert workspaces[1]["slug"] == "engineering-docs"


async def test_librechat_reads(lc: httpx.AsyncClient) -> None:
    """The LibreChat reads answer the user, the settings and the conversations newest first."""
    me = (await lc.get("/api/user/me")).json()
    assert me["id"] == "665f0c1a2b3c4d5e6f708192"
    assert me["role"] == "ADMIN"
    assert me["provider"] == "local"
    settings = (await lc.get("/api/user/settings")).json()
    assert settings == {
        "defaultModelId": "openai/gpt-4o",
        "defaultTemperature": 0.7,
        "defaultMaxTokens": 4096,
        "theme": "dark",
        "fontSize": "medium",
    }
    conversations = (await lc.get("/api/conversations")).json()
    assert len(conversations) == 40
    assert conversations[0]["conversationId"] == "c-0040"
    assert conversations[-1]["conversationId"] == "c-0001"
    assert all(c["endpoint"] == "openAI" and c["model"] == "gpt-4o" for c in conversations)
    assert all(JS_ISO.match(c["createdAt"]) and JS_ISO.match(c["updatedAt"]) for c in conversations)
    updated = [c["updatedAt"] for c in conversations]
    assert updated == sorted(updated, reverse=True)


async def test_every_secret_carries_the_canary(
    allm: httpx.AsyncClient, lc: httpx.AsyncClient
) -> None:
    """Passwords, tokens and keys in the answers all contain SECRET_CANARY, nothing else does."""
    allm_secrets = secrets_in((await allm.get("/api/me")).json()) + secrets_in(
        (await allm.get("/api/system/settings")).json()
    )
    assert allm_secrets == [
        f"{SECRET_CANARY}-pw",
        f"{SECRET_CANARY}-recovery",
        f"{SECRET_CANARY}-push",
        f"{SECRET_CANARY}-vdb",
        f"sk-{SECRET_CANARY}-openai",
        f"{SECRET_CANARY}-auth",
    ]
    lc_secrets = secrets_in((await lc.get("/api/user/me")).json())
    assert lc_secrets == [
        f"{SECRET_CANARY}-lc",
        f"{SECRET_CANARY}-rt",
        f"eyJhbGciOiJIUzI1NiJ9.eyJ{SECRET_CANARY}.c2lnbmF0dXJl",
        f"{SECRET_CANARY}-session",
        f"otpauth://totp/LibreChat:ada?secret={SECRET_CANARY}",
        f"{SECRET_CANARY}-passphrase",
        f"{SECRET_CANARY}-mfa-seed",
        f"{SECRET_CANARY}-auth-pass",
    ]
    assert secrets_in((await lc.get("/api/user/settings")).json()) == []
    assert secrets_in((await allm.get("/api/workspaces")).json()) == []


async def test_system_update_applies_and_is_logged(allm: httpx.AsyncClient) -> None:
    """A valid settings update is applied, answered with the four LLM keys and logged."""
    body = {"LLMProvider": "anthropic", "Temperature": 1, "MaxTokens": 8192}
    response = await allm.post("/api/system/update", json=body)
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "settings": {
            "LLMProvider": "anthropic",
            "OpenAiModelPref": "gpt-4o",
            "Temperature": 1,
            "MaxTokens": 8192,
        },
    }
    settings = (await allm.get("/api/system/settings")).json()
    assert settings["LLMProvider"] == "anthropic"
    assert settings["EmbeddingEngine"] == "openai"
    writes = (await allm.get("/_sim/writes")).json()
    assert writes == [{"path": "/api/system/update", "body": body, "accepted": True}]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('{"LLMProvider": "x", "VectorDB": "pinecone"}', "unknown key VectorDB"),
        ('{"Temperature": "hot"}', "invalid value for Temperature: expected a number"),
        ('{"Temperature": true}', "invalid value for Temperature: expected a number"),
        ('{"MaxTokens": 10.5}', "invalid value for MaxTokens: expected an integer"),
        ('{"LLMProvider": null}', "invalid value for LLMProvider: expected a string"),
        ('{"Temperature": NaN}', "invalid JSON"),
        ('["LLMProvider"]', "the body must be a JSON object"),
        ('{"LLMProvider": ', "invalid JSON"),
    ],
)
async def test_system_update_rejects_bad_bodies(
    allm: httpx.AsyncClient, world: World, content: str, error: str
) -> None:
    """A bad settings update gets 400 with a reason, changes nothing and is logged as rejected."""
    before = dict(world.anythingllm.settings)
    response = await allm.post(
        "/api/system/update", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert world.anythingllm.settings == before
    (write,) = (await allm.get("/_sim/writes")).json()
    assert write["accepted"] is False


async def test_librechat_settings_update(lc: httpx.AsyncClient) -> None:
    """A LibreChat settings update answers the whole settings object after the change."""
    response = await lc.post("/api/user/settings", json={"theme": "light", "defaultMaxTokens": 1})
    assert response.status_code == 200
    assert response.json()["theme"] == "light"
    assert response.json()["defaultMaxTokens"] == 1
    assert response.json()["fontSize"] == "medium"
    assert (await lc.get("/api/user/settings")).json() == response.json()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"theme": "neon"}, "invalid value for theme: expected one of light, dark, system"),
        ({"fontSize": 12}, "invalid value for fontSize: expected one of small, medium, large"),
        ({"defaultTemperature": "0.5"}, "invalid value for defaultTemperature: expected a number"),
        ({"language": "fr"}, "unknown key language"),
    ],
)
async def test_librechat_settings_update_rejects_bad_bodies(
    lc: httpx.AsyncClient, body: dict[str, Any], error: str
) -> None:
    """A bad LibreChat settings update gets 400 with a reason and changes nothing."""
    response = await lc.post("/api/user/settings", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert (await lc.get("/api/user/settings")).json()["theme"] == "dark"


async def test_unknown_paths_answer_json_404(allm: httpx.AsyncClient) -> None:
    """An unknown path answers a JSON error, not HTML."""
    response = await allm.get("/api/v1/workspaces")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


@pytest.mark.parametrize("path", ALLM_READS)
async def test_read_faults_on_anythingllm(allm: httpx.AsyncClient, path: str) -> None:
    """Each read fault changes every AnythingLLM read as described; `ok` restores it."""
    await check_read_faults(allm, path)


@pytest.mark.parametrize("path", LC_READS)
async def test_read_faults_on_librechat(lc: httpx.AsyncClient, path: str) -> None:
    """Each read fault changes every LibreChat read as described; `ok` restores it."""
    await check_read_faults(lc, path)


async def check_read_faults(client: httpx.AsyncClient, path: str) -> None:
    """Check the error, html, malformed and wrong_shape read faults on one path."""
    normal = (await client.get(path)).json()

    await client.put("/_sim/fault", json={"reads": "error"})
    response = await client.get(path)
    assert response.status_code == 500
    assert response.json() == {"error": "simulated failure"}

    await client.put("/_sim/fault", json={"reads": "html"})
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lower().startswith("<!doctype html><html>")

    await client.put("/_sim/fault", json={"reads": "malformed"})
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert json.dumps(normal, separators=(",", ":"), ensure_ascii=False).startswith(response.text)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)

    await client.put("/_sim/fault", json={"reads": "wrong_shape"})
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == "ok"

    await client.put("/_sim/fault", json={"reads": "ok"})
    assert (await client.get(path)).json() == normal


async def test_slow_fault_delays_reads_then_answers(lc: httpx.AsyncClient) -> None:
    """With the slow fault a read answers normally, after at least `delay_s`."""
    await lc.put("/_sim/fault", json={"reads": "slow", "delay_s": 0.05})
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await lc.get("/api/user/settings")
    assert loop.time() - started >= 0.05
    assert response.status_code == 200
    assert response.json()["theme"] == "dark"


async def test_released_slow_reads_answer_at_once(world: World) -> None:
    """Once an app's slow reads are released (as on a server stop), they answer without delay."""
    app = create_anythingllm_app(world.anythingllm)
    world.anythingllm.faults.reads = "slow"
    release_slow_reads(app)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://sim", headers=ALLM_AUTH) as client,
        asyncio.timeout(5),
    ):
        response = await client.get("/api/me")
    assert response.status_code == 200


async def test_read_faults_spare_writes_and_control(allm: httpx.AsyncClient) -> None:
    """Read faults touch neither `/api` writes nor the `/_sim` routes."""
    await allm.put("/_sim/fault", json={"reads": "error"})
    response = await allm.post("/api/system/update", json={"MaxTokens": 10})
    assert response.status_code == 200
    assert (await allm.get("/_sim/state")).status_code == 200


async def test_write_fault_fails_without_changing_anything(
    allm: httpx.AsyncClient, lc: httpx.AsyncClient
) -> None:
    """With the writes fault, posts answer 500, change nothing, and are logged as rejected."""
    for client, path, body in (
        (allm, "/api/system/update", {"LLMProvider": "anthropic"}),
        (lc, "/api/user/settings", {"theme": "light"}),
    ):
        assert (await client.put("/_sim/fault", json={"writes": "fail"})).status_code == 200
        response = await client.post(path, json=body)
        assert response.status_code == 500
        assert response.json() == {"error": "simulated write failure"}
        assert (await client.get("/_sim/writes")).json() == [
            {"path": path, "body": body, "accepted": False}
        ]
    assert (await allm.get("/api/system/settings")).json()["LLMProvider"] == "openai"
    assert (await lc.get("/api/user/settings")).json()["theme"] == "dark"


async def test_fault_settings_merge_and_validate(allm: httpx.AsyncClient) -> None:
    """`PUT /_sim/fault` keeps keys it is not given and rejects unknown values."""
    default = (await allm.put("/_sim/fault", json={})).json()
    assert default == {"reads": "ok", "writes": "ok", "delay_s": 30.0}
    await allm.put("/_sim/fault", json={"reads": "slow", "delay_s": 2})
    response = await allm.put("/_sim/fault", json={"writes": "fail"})
    assert response.json() == {"reads": "slow", "writes": "fail", "delay_s": 2.0}
    for bad in ({"reads": "boom"}, {"writes": "error"}, {"delay_s": -1}, {"speed": 1}):
        response = await allm.put("/_sim/fault", json=bad)
        assert response.status_code == 400
        assert "error" in response.json()
    assert (await allm.get("/_sim/state")).json()["faults"] == {
        "reads": "slow",
        "writes": "fail",
        "delay_s": 2.0,
    }


async def test_write_log_keeps_order_and_clears(lc: httpx.AsyncClient) -> None:
    """The write log lists writes in order, odd bodies included, until it is cleared."""
    await lc.post("/api/user/settings", json={"theme": "system"})
    await lc.post("/api/user/settings", content=b"not json")
    writes = (await lc.get("/_sim/writes")).json()
    assert writes == [
        {"path": "/api/user/settings", "body": {"theme": "system"}, "accepted": True},
        {"path": "/api/user/settings", "body": "not json", "accepted": False},
    ]
    assert (await lc.delete("/_sim/writes")).status_code == 204
    assert (await lc.get("/_sim/writes")).json() == []


async def test_control_patches_settings_and_user(allm: httpx.AsyncClient) -> None:
    """Settings and user patches merge into what `/api` serves and what the state shows."""
    response = await allm.patch("/_sim/settings", json={"OpenAiModelPref": "gpt-4.1", "New": 1})
    assert response.json()["OpenAiModelPref"] == "gpt-4.1"
    assert response.json()["LLMProvider"] == "openai"
    await allm.patch("/_sim/user", json={"name": "Ada King"})
    assert (await allm.get("/api/me")).json()["name"] == "Ada King"
    assert (await allm.get("/api/system/settings")).json()["New"] == 1
    state = (await allm.get("/_sim/state")).json()
    assert set(state) == {"user", "settings", "workspaces", "faults", "writes"}
    assert state["settings"]["OpenAiModelPref"] == "gpt-4.1"
    assert (await allm.patch("/_sim/user", json=["name"])).status_code == 400


async def test_control_creates_and_deletes_workspaces(allm: httpx.AsyncClient) -> None:
    """Workspaces created through `/_sim` get the next id and a unique slug, and can go."""
    response = await allm.post("/_sim/workspaces", json={"name": "Legal & Compliance!"})
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == 6
    assert created["slug"] == "legal-compliance"
    assert created["documents"] == 0
    assert created["chatModel"] is None
    assert JS_ISO.match(created["createdAt"])
    again = (await allm.post("/_sim/workspaces", json={"name": "legal compliance"})).json()
    assert again["slug"] == "legal-compliance-2"
    listed = (await allm.get("/api/workspaces")).json()
    assert [w["slug"] for w in listed][-2:] == ["legal-compliance", "legal-compliance-2"]

    assert (await allm.delete("/_sim/workspaces/legal-compliance")).status_code == 204
    missing = await allm.delete("/_sim/workspaces/legal-compliance")
    assert missing.status_code == 404
    assert "error" in missing.json()
    assert len((await allm.get("/api/workspaces")).json()) == 6
    assert (await allm.post("/_sim/workspaces", json={})).status_code == 400
    assert (await allm.post("/_sim/workspaces", json={"name": " "})).status_code == 400


async def test_control_edits_conversations(lc: httpx.AsyncClient) -> None:
    """Conversations can be created first in line, patched to the front, and deleted."""
    response = await lc.post("/_sim/conversations", json={"title": "Brand new chat"})
    assert response.status_code == 201
    created = response.json()
    assert created["conversationId"] == "c-0041"
    assert created["createdAt"] == created["updatedAt"]
    assert created["messageCount"] == 0
    listed = (await lc.get("/api/conversations")).json()
    assert listed[0] == created
    assert len(listed) == 41

    response = await lc.patch("/_sim/conversations/c-0007", json={"title": "Renamed"})
    assert response.status_code == 200
    patched = response.json()
    assert patched["title"] == "Renamed"
    assert patched["updatedAt"] > listed[-7]["updatedAt"]
    assert (await lc.get("/api/conversations")).json()[0] == patched
    bad = await lc.patch("/_sim/conversations/c-0007", json={"conversationId": "x"})
    assert bad.status_code == 400
    assert (await lc.patch("/_sim/conversations/c-9999", json={})).status_code == 404

    assert (await lc.delete("/_sim/conversations/c-0007")).status_code == 204
    assert (await lc.delete("/_sim/conversations/c-0007")).status_code == 404
    ids = [c["conversationId"] for c in (await lc.get("/api/conversations")).json()]
    assert "c-0007" not in ids
    assert len(ids) == 40


async def test_control_reset_restores_everything(lc: httpx.AsyncClient, world: World) -> None:
    """`POST /_sim/reset` brings back the seed data and clears faults and the write log."""
    await lc.post("/api/user/settings", json={"theme": "light"})
    await lc.post("/_sim/conversations", json={"title": "x"})
    await lc.put("/_sim/fault", json={"reads": "error", "writes": "fail"})
    response = await lc.post("/_sim/reset")
    assert response.status_code == 200
    assert response.json()["faults"] == {"reads": "ok", "writes": "ok", "delay_s": 30.0}
    assert response.json()["writes"] == []
    assert world.librechat == LibreChatWorld.seed()
    assert (await lc.get("/api/user/settings")).json()["theme"] == "dark"


async def test_apps_share_nothing_between_worlds() -> None:
    """Two apps over two worlds do not see each other's changes."""
    one, two = AnythingLLMWorld.seed(), AnythingLLMWorld.seed()
    transport = httpx.ASGITransport(app=create_anythingllm_app(one))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        await client.patch("/_sim/settings", json={"LLMProvider": "ollama"})
    assert one.settings["LLMProvider"] == "ollama"
    assert two.settings["LLMProvider"] == "openai"


async def test_simulator_servers_serve_both_apps_on_loopback() -> None:
    """SimulatorServers serves both apps on ephemeral loopback ports until the context exits."""
    world = World.seed()
    sigint_handler = signal.getsignal(signal.SIGINT)
    async with SimulatorServers(world, flavour="bizzy") as servers:
        assert servers.world is world
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", servers.anythingllm_url)
        assert servers.anythingllm_url != servers.librechat_url
        async with httpx.AsyncClient() as client:
            me = await client.get(f"{servers.anythingllm_url}/api/me", headers=ALLM_AUTH)
            convos = await client.get(f"{servers.librechat_url}/api/conversations", headers=LC_AUTH)
            await client.patch(f"{servers.librechat_url}/_sim/user", json={"name": "A. L."})
        assert me.json()["username"] == "ada"
        assert len(convos.json()) == 40
        assert world.librechat.user["name"] == "A. L."
        url = servers.librechat_url
    with pytest.raises(RuntimeError):
        _ = servers.librechat_url
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{url}/_sim/state")
    assert signal.getsignal(signal.SIGINT) is sigint_handler
