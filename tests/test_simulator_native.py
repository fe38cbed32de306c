"""Tests of the simulated AnythingLLM and LibreChat upstreams, native flavour, through HTTP."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared_state.simulator import (
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SimulatorServers,
    World,
    create_anythingllm_app,
    create_librechat_app,
)

JS_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ALLM_AUTH = {"Authorization": f"Bearer {SIM_ANYTHINGLLM_API_KEY}"}
LC_LOGIN = {"email": SIM_LIBRECHAT_EMAIL, "password": SIM_LIBRECHAT_PASSWORD}
ALLM_LOGIN = {"username": SIM_ANYTHINGLLM_USERNAME, "password": SIM_ANYTHINGLLM_PASSWORD}
ARCHIVED = {"c-0005", "c-0012", "c-0021"}
ACTIVE = {f"c-{n:04d}" for n in range(1, 41)} - ARCHIVED
NOT_FOUND = {"message": "Endpoint not found"}
WORKSPACE_KEYS = {
    "id",
    "name",
    "slug",
    "vectorTag",
    "createdAt",
    "lastUpdatedAt",
    "openAiTemp",
    "openAiHistory",
    "openAiPrompt",
    "similarityThreshold",
    "chatProvider",
    "chatModel",
    "topN",
    "chatMode",
    "pfpFilename",
    "agentProvider",
    "agentModel",
    "queryRefusalResponse",
    "vectorSearchMode",
    "router_id",
    "threads",
}


@pytest.fixture
def world() -> World:
    """A freshly seeded world."""
    return World.seed()


@pytest.fixture
async def allm(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the native simulated AnythingLLM, sending the right API key."""
    app = create_anythingllm_app(world.anythingllm, flavour="native")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers=ALLM_AUTH
    ) as client:
        yield client


@pytest.fixture
async def lc(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the native simulated LibreChat, with no credentials of its own."""
    app = create_librechat_app(world.librechat, flavour="native")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without checking its signature."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def cookie_value(response: httpx.Response, name: str) -> str:
    """The value a response's `Set-Cookie` gives the cookie `name`."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";")[0].split("=", 1)[1]
    raise AssertionError(f"no Set-Cookie for {name}")


async def login(lc: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    """Log in to the LibreChat simulator: (Bearer headers, refresh cookie value)."""
    response = await lc.post("/api/auth/login", json=LC_LOGIN)
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['token']}"}, cookie_value(
        response, "refreshToken"
    )


async def refresh(lc: httpx.AsyncClient, cookie: str) -> httpx.Response:
    """Ask for a refresh, sending the refresh cookie by hand (it is `Secure`, we are on http)."""
    return await lc.post("/api/auth/refresh", headers={"Cookie": f"refreshToken={cookie}"})


async def all_pages(lc: httpx.AsyncClient, auth: dict[str, str], query: str) -> list[str]:
    """Follow `nextCursor` through `GET /api/convos?<query>`; every conversation id, in order."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = httpx.QueryParams(query)
        if cursor:
            params = params.set("cursor", cursor)
        response = await lc.get("/api/convos", params=params, headers=auth)
        assert response.status_code == 200
        page = response.json()
        ids += [c["conversationId"] for c in page["conversations"]]
        cursor = page["nextCursor"]
        if cursor is None:
            return ids


# --- AnythingLLM ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": SIM_ANYTHINGLLM_API_KEY}],
)
async def test_allm_developer_api_needs_a_valid_key(world: World, headers: dict[str, str]) -> None:
    """A missing or unknown API key gets 403 with AnythingLLM's error object."""
    app = create_anythingllm_app(world.anythingllm, flavour="native")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        response = await client.get("/api/v1/auth", headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error": "No valid api key found."}


async def test_allm_auth_check_answers_authenticated(allm: httpx.AsyncClient) -> None:
    """`GET /api/v1/auth` with the key answers `{"authenticated": true}`."""
    response = await allm.get("/api/v1/auth")
    assert response.status_code == 200
    assert response.json() == {"authenticated": True}


async def test_allm_system_uses_real_names_and_secret_booleans(allm: httpx.AsyncClient) -> None:
    """`GET /api/v1/system` wraps the real settings keys, with every secret as a boolean."""
    response = await allm.get("/api/v1/system")
    assert response.headers["content-type"] == "application/json"
    settings = response.json()["settings"]
    assert settings["LLMProvider"] == "openai"
    assert settings["LLMModel"] == "gpt-4o"
    assert settings["OpenAiModelPref"] == "gpt-4o"
    assert settings["AnthropicModelPref"] == "claude-sonnet-4-6"
    assert settings["OllamaLLMModelPref"] == "llama3.1:8b"
    assert settings["EmbeddingEngine"] == "openai"
    assert settings["EmbeddingModelPref"] == "text-embedding-3-small"
    assert settings["VectorDB"] == "lancedb"
    assert settings["StorageDir"] == "/app/server/storage"
    assert settings["MultiUserMode"] is True
    assert settings["HasExistingEmbeddings"] is True
    for key, value in {
        "OpenAiKey": True,
        "AnthropicApiKey": False,
        "PineConeKey": False,
        "AuthToken": True,
        "JWTSecret": True,
    }.items():
        assert settings[key] is value
    assert "GroqModelPref" not in settings
    assert "Temperature" not in settings
    assert SECRET_CANARY not in response.text


async def test_allm_update_env_applies_and_echoes_values(
    allm: httpx.AsyncClient, world: World
) -> None:
    """A valid update answers `error: false` with the applied values, secrets included."""
    body = {
        "LLMProvider": "anthropic",
        "AnthropicModelPref": "claude-opus-4-1",
        "AnthropicApiKey": "sk-ant-new-key",
    }
    response = await allm.post("/api/v1/system/update-env", json=body)
    assert response.status_code == 200
    assert response.json() == {"newValues": body, "error": False}
    settings = (await allm.get("/api/v1/system")).json()["settings"]
    assert settings["LLMProvider"] == "anthropic"
    assert settings["LLMModel"] == "claude-opus-4-1"
    assert settings["AnthropicApiKey"] is True
    assert world.anythingllm.env["AnthropicApiKey"] == "sk-ant-new-key"
    assert world.anythingllm.settings["LLMProvider"] == "openai"  # the bizzy settings


async def test_allm_update_env_stops_at_the_first_invalid_key(
    allm: httpx.AsyncClient, world: World
) -> None:
    """Keys before the first invalid one stay applied, keys after it are not processed."""
    body = {"OpenAiModelPref": "gpt-4.1", "OpenAiKey": "not-a-key", "LLMProvider": "ollama"}
    response = await allm.post("/api/v1/system/update-env", json=body)
    assert response.status_code == 200
    assert response.json() == {
        "newValues": {"OpenAiModelPref": "gpt-4.1"},
        "error": "OpenAI Key must start with sk-",
    }
    assert world.anythingllm.env["OpenAiModelPref"] == "gpt-4.1"
    assert world.anythingllm.env["LLMProvider"] == "openai"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"LLMProvider": "skynet"}, "skynet is not a valid LLM provider."),
        ({"AuthToken": "new-password"}, "Cannot set this setting."),
        ({"JWTSecret": "new-secret"}, "Cannot set this setting."),
        ({"OllamaLLMModelPref": ""}, "Value cannot be empty"),
        ({"VectorDB": "faiss"}, "Invalid VectorDB type. Must be one of"),
        ({"OllamaLLMTokenLimit": "lots"}, "Value must be a number"),
    ],
)
async def test_allm_update_env_reports_check_failures_with_200(
    allm: httpx.AsyncClient, world: World, body: dict[str, str], error: str
) -> None:
    """A failed check answers 200 with the message under `error` and changes nothing."""
    before = dict(world.anythingllm.env)
    response = await allm.post("/api/v1/system/update-env", json=body)
    assert response.status_code == 200
    assert response.json()["newValues"] == {}
    assert response.json()["error"].startswith(error)
    assert world.anythingllm.env == before


@pytest.mark.parametrize(
    "content",
    [
        '{"OpenAiModelPref": "gpt-4.1", "GenericOpenAiMaxTokens": 4096}',
        '{"OpenAiModelPref": null}',
        '{"MultiUserMode": false, "LLMProvider": true}',
        '["LLMProvider"]',
        "not json",
    ],
)
async def test_allm_update_env_non_string_is_a_bare_500(
    allm: httpx.AsyncClient, world: World, content: str
) -> None:
    """A non-string value for a known key (or a body that is no object) is a bare 500."""
    before = dict(world.anythingllm.env)
    response = await allm.post(
        "/api/v1/system/update-env", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["content-type"].startswith("text/plain")
    assert world.anythingllm.env == before


async def test_allm_update_env_skips_masked_and_unknown_keys(
    allm: httpx.AsyncClient, world: World
) -> None:
    """Masked (`******`) values and unknown keys are left out without an error."""
    body = {"OpenAiKey": "sk-******", "Temperature": "0.5", "OpenAiModelPref": "gpt-4.1-mini"}
    response = await allm.post("/api/v1/system/update-env", json=body)
    assert response.json() == {"newValues": {"OpenAiModelPref": "gpt-4.1-mini"}, "error": False}
    assert world.anythingllm.env["OpenAiKey"] == f"sk-{SECRET_CANARY}-openai"
    assert "Temperature" not in world.anythingllm.env


async def test_allm_vector_setting_changes_count_as_resets(allm: httpx.AsyncClient) -> None:
    """Changing VectorDB, EmbeddingEngine or EmbeddingModelPref counts a vector reset each."""
    await allm.post(
        "/api/v1/system/update-env", json={"EmbeddingModelPref": "text-embedding-3-small"}
    )
    assert (await allm.get("/_sim/stats")).json()["vector_resets"] == 0
    await allm.post(
        "/api/v1/system/update-env", json={"VectorDB": "pinecone", "EmbeddingEngine": "ollama"}
    )
    assert (await allm.get("/_sim/stats")).json()["vector_resets"] == 2
    assert (await allm.get("/_sim/state")).json()["stats"]["vector_resets"] == 2


async def test_allm_workspaces_list_real_columns_and_threads(allm: httpx.AsyncClient) -> None:
    """`GET /api/v1/workspaces` wraps every workspace with its columns and threads."""
    workspaces = (await allm.get("/api/v1/workspaces")).json()["workspaces"]
    assert [w["slug"] for w in workspaces][:2] == ["general", "engineering-docs"]
    for workspace in workspaces:
        assert set(workspace) == WORKSPACE_KEYS
        assert JS_ISO.match(workspace["createdAt"])
        assert workspace["lastUpdatedAt"] == workspace["createdAt"]
    engineering = workspaces[1]
    assert engineering["openAiTemp"] == 0.2
    assert engineering["chatModel"] == "gpt-4o"
    assert engineering["chatMode"] == "query"
    assert engineering["threads"][0] == {
        "user_id": 1,
        "slug": "7a1d2e3f-4b5c-4d6e-8f90-a1b2c3d4e5f6",
        "name": "API review",
    }
    assert workspaces[3]["openAiHistory"] == 20


async def test_allm_workspace_read_and_update(allm: httpx.AsyncClient) -> None:
    """One workspace comes in an array; an update sets its fields; unknown slugs differ."""
    one = (await allm.get("/api/v1/workspace/research-notes")).json()["workspace"]
    assert len(one) == 1
    assert len(one[0]["documents"]) == 7
    assert (await allm.get("/api/v1/workspace/nope")).json() == {"workspace": []}
    response = await allm.post(
        "/api/v1/workspace/research-notes/update",
        json={"openAiTemp": "0.3", "chatProvider": "openai", "chatModel": "gpt-4o", "x": 1},
    )
    assert response.status_code == 200
    assert response.json()["message"] is None
    assert response.json()["workspace"]["openAiTemp"] == 0.3
    listed = (await allm.get("/api/v1/workspaces")).json()["workspaces"][3]
    assert (listed["openAiTemp"], listed["chatModel"]) == (0.3, "gpt-4o")
    unknown = await allm.post("/api/v1/workspace/nope/update", json={"openAiTemp": 1})
    assert unknown.status_code == 400


async def test_allm_login_and_refresh_user(allm: httpx.AsyncClient) -> None:
    """A multi-user login gives a JWT that `refresh-user` turns into the user, no password."""
    response = await allm.post("/api/request-token", json=ALLM_LOGIN, headers={"Authorization": ""})
    assert response.status_code == 200
    body = response.json()
    assert (body["valid"], body["message"]) == (True, None)
    assert "password" not in body["user"]
    claims = jwt_claims(body["token"])
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600
    me = await allm.get(
        "/api/system/refresh-user", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert me.json() == {
        "success": True,
        "user": {
            "id": 1,
            "username": "ada",
            "pfpFilename": None,
            "role": "admin",
            "suspended": 0,
            "seen_recovery_codes": True,
            "createdAt": "2026-08-01T12:00:00.000Z",
            "lastUpdatedAt": "2026-08-01T12:00:00.000Z",
            "dailyMessageLimit": None,
            "bio": "",
        },
        "message": None,
    }


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({"username": "grace", "password": SIM_ANYTHINGLLM_PASSWORD}, "[001] Invalid login"),
        ({"username": "ada", "password": "wrong"}, "[002] Invalid login"),
    ],
)
async def test_allm_bad_login_is_200_invalid(
    allm: httpx.AsyncClient, credentials: dict[str, str], message: str
) -> None:
    """Wrong login credentials answer HTTP 200 with `valid: false` and no token."""
    response = await allm.post("/api/request-token", json=credentials)
    assert response.status_code == 200
    body = response.json()
    assert (body["valid"], body["user"], body["token"]) == (False, None, None)
    assert body["message"].startswith(message)
    assert (await allm.get("/_sim/stats")).json()["logins"] == 1


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_allm_invalid_session_is_200_unsuccessful(
    allm: httpx.AsyncClient, token: str
) -> None:
    """`refresh-user` with a bad session answers 200 `success: false`."""
    response = await allm.get(
        "/api/system/refresh-user", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": False,
        "user": None,
        "message": "Session expired or invalid.",
    }


async def test_allm_jwt_lifetime_is_set_by_control(allm: httpx.AsyncClient) -> None:
    """With `jwt_ttl_s` 0 a fresh login token is already expired."""
    response = await allm.put("/_sim/auth", json={"jwt_ttl_s": 0})
    assert response.json() == {"multi_user": True, "jwt_ttl_s": 0.0}
    token = (await allm.post("/api/request-token", json=ALLM_LOGIN)).json()["token"]
    claims = jwt_claims(token)
    assert claims["exp"] == claims["iat"]
    me = await allm.get("/api/system/refresh-user", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["success"] is False


async def test_allm_single_user_mode(allm: httpx.AsyncClient) -> None:
    """In single-user mode there is no user, and a username login is a 401 `[003]`."""
    await allm.put("/_sim/auth", json={"multi_user": False})
    me = await allm.get("/api/system/refresh-user")
    assert me.json() == {"success": True, "user": None, "message": None}
    assert (await allm.get("/api/v1/system")).json()["settings"]["MultiUserMode"] is False
    assert (await allm.get("/api/v1/admin/is-multi-user-mode")).json() == {"isMultiUser": False}
    response = await allm.post("/api/request-token", json=ALLM_LOGIN)
    assert response.status_code == 401
    assert response.json()["message"] == "[003] Invalid password provided"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/me"),
        ("GET", "/api/system/settings"),
        ("POST", "/api/system/update"),
        ("GET", "/api/workspaces"),
        ("GET", "/api/v1/nothing-here"),
        ("POST", "/api/v1/system"),
        ("GET", "/settings/llm-preference"),
    ],
)
async def test_allm_unknown_paths_answer_the_spa_page(
    allm: httpx.AsyncClient, method: str, path: str
) -> None:
    """Any path no route knows, `/api` included, answers 200 with the HTML app page."""
    response = await allm.request(method, path, json={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lower().startswith("<!doctype html>")


@pytest.mark.parametrize("path", ["/api/v1/system", "/api/v1/workspaces", "/api/v1/auth"])
async def test_allm_read_faults_apply_to_native_routes(allm: httpx.AsyncClient, path: str) -> None:
    """The read faults change native reads as they change bizzy ones; `ok` restores them."""
    normal = (await allm.get(path)).json()
    await allm.put("/_sim/fault", json={"reads": "error"})
    assert (await allm.get(path)).status_code == 500
    await allm.put("/_sim/fault", json={"reads": "html"})
    assert (await allm.get(path)).headers["content-type"].startswith("text/html")
    await allm.put("/_sim/fault", json={"reads": "malformed"})
    with pytest.raises(json.JSONDecodeError):
        json.loads((await allm.get(path)).text)
    await allm.put("/_sim/fault", json={"reads": "wrong_shape"})
    assert (await allm.get(path)).json() == "ok"
    await allm.put("/_sim/fault", json={"reads": "ok"})
    assert (await allm.get(path)).json() == normal


async def test_allm_write_fault_fails_update_env(allm: httpx.AsyncClient, world: World) -> None:
    """With the writes fault, update-env answers 500, changes nothing and is logged."""
    await allm.put("/_sim/fault", json={"writes": "fail"})
    response = await allm.post("/api/v1/system/update-env", json={"LLMProvider": "ollama"})
    assert response.status_code == 500
    assert world.anythingllm.env["LLMProvider"] == "openai"
    assert (await allm.get("/_sim/writes")).json() == [
        {"path": "/api/v1/system/update-env", "body": {"LLMProvider": "ollama"}, "accepted": False}
    ]


async def test_allm_control_settings_patch_edits_native_settings(
    allm: httpx.AsyncClient,
) -> None:
    """`PATCH /_sim/settings` merges env-like strings (null unsets) into the native settings."""
    response = await allm.patch(
        "/_sim/settings", json={"LLMProvider": "anthropic", "JWTSecret": None}
    )
    assert response.json()["LLMProvider"] == "anthropic"
    settings = (await allm.get("/api/v1/system")).json()["settings"]
    assert settings["LLMModel"] == "claude-sonnet-4-6"
    assert settings["JWTSecret"] is False
    assert (await allm.patch("/_sim/settings", json={"MaxTokens": 1})).status_code == 400


async def test_allm_control_can_refuse_a_provider(allm: httpx.AsyncClient) -> None:
    """A provider the control marks unsupported fails update-env after earlier keys applied."""
    response = await allm.put("/_sim/llm-providers", json={"unsupported": ["cerebras"]})
    assert response.json()["unsupported"] == ["cerebras"]
    assert "cerebras" not in response.json()["supported"]
    body = {"CerebrasModelPref": "llama-3.3-70b", "LLMProvider": "cerebras"}
    answer = (await allm.post("/api/v1/system/update-env", json=body)).json()
    assert answer == {
        "newValues": {"CerebrasModelPref": "llama-3.3-70b"},
        "error": "cerebras is not a valid LLM provider.",
    }
    state = (await allm.get("/_sim/state")).json()
    assert (state["settings"]["LLMProvider"], state["settings"]["LLMModel"]) == ("openai", "gpt-4o")
    assert state["settings"]["CerebrasModelPref"] == "llama-3.3-70b"


# --- LibreChat: login, tokens, refresh ---------------------------------------------------------


async def test_lc_login_gives_token_and_secure_cookies(lc: httpx.AsyncClient) -> None:
    """A login answers a 15-minute access JWT, the user, and httpOnly secure cookies."""
    response = await lc.post("/api/auth/login", json=LC_LOGIN)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "user"}
    assert body["user"]["email"] == SIM_LIBRECHAT_EMAIL
    claims = jwt_claims(body["token"])
    assert set(claims) == {"id", "username", "provider", "email", "iat", "exp"}
    assert claims["exp"] - claims["iat"] == 900
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    refresh_cookie, provider_cookie = cookies
    assert refresh_cookie.startswith("refreshToken=")
    assert provider_cookie.startswith("token_provider=librechat;")
    for cookie in cookies:
        assert {"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} <= set(cookie.split("; "))
        assert "Expires=" in cookie
    assert (await lc.get("/_sim/stats")).json()["logins"] == 1


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (
            {"email": "grace@example.com", "password": SIM_LIBRECHAT_PASSWORD},
            "Email does not exist.",
        ),
        ({"email": SIM_LIBRECHAT_EMAIL, "password": "wrong-password"}, "Incorrect password."),
        ({"email": SIM_LIBRECHAT_EMAIL}, "Missing credentials"),
    ],
)
async def test_lc_bad_login_is_404(
    lc: httpx.AsyncClient, credentials: dict[str, str], message: str
) -> None:
    """Wrong credentials answer 404 with the strategy's message and set no cookie."""
    response = await lc.post("/api/auth/login", json=credentials)
    assert response.status_code == 404
    assert response.json() == {"message": message}
    assert response.headers.get_list("set-cookie") == []


async def test_lc_login_rate_limit_after_seven_attempts(lc: httpx.AsyncClient) -> None:
    """The eighth login attempt in the window is refused with 429, even with good credentials."""
    for _ in range(7):
        wrong = {**LC_LOGIN, "password": "wrong-password"}
        assert (await lc.post("/api/auth/login", json=wrong)).status_code == 404
    response = await lc.post("/api/auth/login", json=LC_LOGIN)
    assert response.status_code == 429
    assert response.json() == {
        "message": "Too many login attempts, please try again after 5 minutes."
    }
    stats = (await lc.get("/_sim/stats")).json()
    assert (stats["logins"], stats["login_rejections_429"]) == (8, 1)
    await lc.put("/_sim/auth", json={"login_max": 7})  # restarts the limiter
    assert (await lc.post("/api/auth/login", json=LC_LOGIN)).status_code == 200


async def test_lc_two_factor_login_is_pending(lc: httpx.AsyncClient) -> None:
    """With 2FA on, a right login answers `twoFAPending` and a temp token, no cookies."""
    assert (await lc.put("/_sim/auth", json={"two_factor": True})).json()["two_factor"] is True
    response = await lc.post("/api/auth/login", json=LC_LOGIN)
    assert response.status_code == 200
    assert set(response.json()) == {"twoFAPending", "tempToken"}
    assert response.json()["twoFAPending"] is True
    assert response.headers.get_list("set-cookie") == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic abc"}],
)
async def test_lc_requests_without_a_valid_bearer_are_401(
    lc: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """Without a valid Bearer access token the JWT routes answer 401 `Unauthorized`."""
    response = await lc.get("/api/user", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


async def test_lc_access_token_is_not_accepted_as_a_cookie(lc: httpx.AsyncClient) -> None:
    """The access token works as a Bearer header only, never as a cookie."""
    auth, _ = await login(lc)
    token = auth["Authorization"].removeprefix("Bearer ")
    assert (await lc.get("/api/user", headers={"Cookie": f"token={token}"})).status_code == 401
    assert (await lc.get("/api/user", headers=auth)).status_code == 200


async def test_lc_user_is_whitelisted(lc: httpx.AsyncClient, world: World) -> None:
    """`GET /api/user` answers the 0.8.7 public fields, never password or 2FA secrets."""
    auth, _ = await login(lc)
    response = await lc.get("/api/user", headers=auth)
    user = response.json()
    assert list(user) == [
        "_id",
        "id",
        "name",
        "username",
        "email",
        "emailVerified",
        "avatar",
        "provider",
        "role",
        "plugins",
        "twoFactorEnabled",
        "termsAccepted",
        "personalization",
        "favorites",
        "createdAt",
        "updatedAt",
    ]
    assert user["_id"] == user["id"] == "665f0c1a2b3c4d5e6f708192"
    assert user["role"] == "ADMIN"
    for secret in (world.librechat.user["password"], world.librechat.profile["totpSecret"]):
        assert SECRET_CANARY in secret
        assert secret not in response.text


async def test_lc_tiny_access_token_lifetime_expires_at_once(lc: httpx.AsyncClient) -> None:
    """With `access_token_ttl_s` 0 an access token is expired on arrival: 401 `jwt expired`."""
    await lc.put("/_sim/auth", json={"access_token_ttl_s": 0})
    auth, _ = await login(lc)
    claims = jwt_claims(auth["Authorization"].removeprefix("Bearer "))
    assert claims["exp"] == claims["iat"]
    response = await lc.get("/api/user", headers=auth)
    assert response.status_code == 401
    assert response.json() == {"message": "jwt expired"}


async def test_lc_expired_access_tokens_come_back_after_refresh(lc: httpx.AsyncClient) -> None:
    """After the control expires access tokens, a refresh gives a working one."""
    auth, cookie = await login(lc)
    assert (await lc.post("/_sim/auth/expire-access-tokens")).json() == {"expired": 1}
    assert (await lc.get("/api/user", headers=auth)).json() == {"message": "jwt expired"}
    renewed = await refresh(lc, cookie)
    assert renewed.status_code == 200
    assert set(renewed.json()) == {"token", "user"}
    new_auth = {"Authorization": f"Bearer {renewed.json()['token']}"}
    assert (await lc.get("/api/user", headers=new_auth)).status_code == 200


async def test_lc_refresh_rotates_the_cookie(lc: httpx.AsyncClient) -> None:
    """A refresh sets a new cookie with the same expiry; the previous cookie is refused."""
    login_response = await lc.post("/api/auth/login", json=LC_LOGIN)
    first = cookie_value(login_response, "refreshToken")
    renewed = await refresh(lc, first)
    assert renewed.status_code == 200
    second = cookie_value(renewed, "refreshToken")
    assert second != first
    expiry = re.compile(r"Expires=[^;]+")
    assert expiry.findall(renewed.headers["set-cookie"]) == expiry.findall(
        login_response.headers["set-cookie"]
    )
    stale = await refresh(lc, first)
    assert stale.status_code == 401
    assert stale.text == "Refresh token expired or not found for this user"
    assert not stale.headers["content-type"].startswith("application/json")
    assert (await refresh(lc, second)).status_code == 200
    stats = (await lc.get("/_sim/stats")).json()
    assert (stats["refreshes"], stats["refresh_failures"]) == (3, 1)


async def test_lc_refresh_without_cookie_is_200_text(lc: httpx.AsyncClient) -> None:
    """Without the cookie (a Secure cookie an http client jar keeps back) refresh is 200 text."""
    await login(lc)  # the client's jar now holds the Secure cookie, and will not send it
    response = await lc.post("/api/auth/refresh")
    assert response.status_code == 200
    assert response.text == "Refresh token not provided"
    assert response.headers["content-type"].startswith("text/")
    garbage = await refresh(lc, "garbage")
    assert (garbage.status_code, garbage.text) == (403, "Invalid refresh token")


async def test_lc_revoked_sessions_force_a_new_login(lc: httpx.AsyncClient) -> None:
    """After the control revokes sessions, a refresh fails and only a login helps."""
    _, cookie = await login(lc)
    assert (await lc.post("/_sim/auth/revoke-sessions")).json() == {"revoked": 1}
    response = await refresh(lc, cookie)
    assert response.status_code == 401
    assert response.text == "Refresh token expired or not found for this user"
    _, cookie = await login(lc)
    assert (await refresh(lc, cookie)).status_code == 200


async def test_lc_logout_ends_the_session(lc: httpx.AsyncClient) -> None:
    """A logout ends the session its refresh cookie belongs to."""
    auth, cookie = await login(lc)
    response = await lc.post(
        "/api/auth/logout", headers={**auth, "Cookie": f"refreshToken={cookie}"}
    )
    assert response.json() == {"message": "Logout successful"}
    assert (await refresh(lc, cookie)).status_code == 401


# --- LibreChat: conversations ------------------------------------------------------------------


async def test_lc_cursor_pages_visit_every_conversation_once(lc: httpx.AsyncClient) -> None:
    """Following `nextCursor` lists each unarchived conversation once, newest update first."""
    auth, _ = await login(lc)
    first = (await lc.get("/api/convos?limit=7", headers=auth)).json()
    assert set(first) == {"conversations", "nextCursor"}
    assert set(first["conversations"][0]) == {
        "_id",
        "conversationId",
        "endpoint",
        "title",
        "createdAt",
        "updatedAt",
        "user",
        "model",
    }
    decoded = json.loads(base64.b64decode(first["nextCursor"]))
    assert decoded == {
        "primary": first["conversations"][-1]["updatedAt"],
        "secondary": first["conversations"][-1]["updatedAt"],
    }
    ids = await all_pages(lc, auth, "limit=7")
    assert ids == [f"c-{n:04d}" for n in range(40, 0, -1) if f"c-{n:04d}" in ACTIVE]
    assert (await lc.get("/_sim/stats")).json()["convo_page_requests"] == 1 + 6


async def test_lc_cursor_pages_cover_a_thousand_bulk_conversations(lc: httpx.AsyncClient) -> None:
    """After a bulk add of 1000, paging by 100 visits all 1037 unarchived ones exactly once."""
    response = await lc.post("/_sim/conversations/bulk", json={"count": 1000})
    assert response.status_code == 201
    assert response.json()["added"] == 1000
    auth, _ = await login(lc)
    ids = await all_pages(lc, auth, "limit=100&sortBy=updatedAt&sortDirection=desc")
    assert len(ids) == len(set(ids)) == 1037
    assert ids[0] == "c-1040"
    assert (await lc.get("/_sim/stats")).json()["convo_page_requests"] == 11


@pytest.mark.parametrize(
    ("query", "key", "reverse"),
    [
        ("sortBy=title&sortDirection=asc", "title", False),
        ("sortBy=title", "title", True),
        ("sortBy=createdAt&sortDirection=asc", "createdAt", False),
        ("sortBy=updatedAt&sortDirection=asc", "updatedAt", False),
    ],
)
async def test_lc_cursor_pages_follow_other_sorts(
    lc: httpx.AsyncClient, world: World, query: str, key: str, reverse: bool
) -> None:
    """Paging by title or createdAt, either way, still visits each conversation once in order."""
    auth, _ = await login(lc)
    ids = await all_pages(lc, auth, f"limit=6&{query}")
    assert len(ids) == len(set(ids)) == 37
    documents = [(await lc.get(f"/api/convos/{i}", headers=auth)).json() for i in ids]
    values = [d[key] for d in documents]
    assert values == sorted(values, reverse=reverse)


async def test_lc_convos_query_options(lc: httpx.AsyncClient) -> None:
    """Default page size 25, archived-only listing, malformed cursors, and a bad sortBy."""
    auth, _ = await login(lc)
    default = (await lc.get("/api/convos", headers=auth)).json()
    assert len(default["conversations"]) == 25
    assert default["nextCursor"] is not None
    archived = (await lc.get("/api/convos?isArchived=true", headers=auth)).json()
    assert {c["conversationId"] for c in archived["conversations"]} == ARCHIVED
    assert archived["nextCursor"] is None
    malformed = {"cursor": "%%%not-base64"}
    restart = (await lc.get("/api/convos", params=malformed, headers=auth)).json()
    assert restart == default
    bad = await lc.get("/api/convos?sortBy=messages", headers=auth)
    assert bad.status_code == 500
    assert bad.json() == {"error": "Error fetching conversations"}
    pinned = {c["conversationId"]: c.get("pinned") for c in default["conversations"]}
    assert pinned["c-0039"] is True
    assert pinned["c-0038"] is None


async def test_lc_conversation_document(lc: httpx.AsyncClient) -> None:
    """`GET /api/convos/:id` answers the whole document; an unknown id is an empty 404."""
    auth, _ = await login(lc)
    document = (await lc.get("/api/convos/c-0010", headers=auth)).json()
    assert document["temperature"] == 0.2
    assert document["max_tokens"] == 2048
    assert document["isArchived"] is False
    assert document["user"] == "665f0c1a2b3c4d5e6f708192"
    assert len(document["messages"]) == 18
    assert {"_id", "__v", "files", "tags", "createdAt", "updatedAt"} <= set(document)
    archived = (await lc.get("/api/convos/c-0005", headers=auth)).json()
    assert archived["isArchived"] is True
    missing = await lc.get("/api/convos/c-9999", headers=auth)
    assert (missing.status_code, missing.content) == (404, b"")


async def test_lc_legacy_mode_serves_numbered_pages(lc: httpx.AsyncClient) -> None:
    """In legacy mode `GET /api/convos` answers LibreChat 0.7's numbered pages of documents."""
    assert (await lc.put("/_sim/mode", json={"legacy_convos": True})).json() == {
        "legacy_convos": True
    }
    auth, _ = await login(lc)
    page = (await lc.get("/api/convos?pageNumber=2&pageSize=10", headers=auth)).json()
    assert set(page) == {"conversations", "pages", "pageNumber", "pageSize"}
    assert (page["pages"], page["pageNumber"], page["pageSize"]) == (4, 2, 10)
    assert len(page["conversations"]) == 10
    assert "temperature" in page["conversations"][1]
    default = (await lc.get("/api/convos", headers=auth)).json()
    assert (default["pages"], default["pageNumber"], default["pageSize"]) == (2, 1, 25)
    second = (await lc.get("/api/convos?pageNumber=2", headers=auth)).json()
    ids = [c["conversationId"] for c in default["conversations"] + second["conversations"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == ACTIVE
    bad = await lc.get("/api/convos?pageNumber=0", headers=auth)
    assert bad.status_code == 400


async def test_lc_control_changes_bump_updated_at(lc: httpx.AsyncClient) -> None:
    """Conversations added or patched through `/_sim` come first; archiving moves them out."""
    auth, _ = await login(lc)
    created = (await lc.post("/_sim/conversations", json={"title": "Fresh"})).json()
    assert created["conversationId"] == "c-0041"
    first = (await lc.get("/api/convos?limit=1", headers=auth)).json()["conversations"][0]
    assert first["conversationId"] == "c-0041"
    patched = (
        await lc.patch("/_sim/conversations/c-0002", json={"isArchived": True, "temperature": 1.5})
    ).json()
    assert patched["updatedAt"] > created["updatedAt"]
    assert patched["temperature"] == 1.5
    archived = (await lc.get("/api/convos?isArchived=true", headers=auth)).json()
    assert archived["conversations"][0]["conversationId"] == "c-0002"
    assert (await lc.delete("/_sim/conversations/c-0041")).status_code == 204
    ids = await all_pages(lc, auth, "limit=50")
    assert "c-0041" not in ids
    assert "c-0002" not in ids


# --- LibreChat: presets, paths, stats -----------------------------------------------------------


async def test_lc_seed_presets(lc: httpx.AsyncClient) -> None:
    """The seed has the default preset first, then one other."""
    auth, _ = await login(lc)
    presets = (await lc.get("/api/presets", headers=auth)).json()
    assert [p["presetId"] for p in presets] == ["preset-default", "preset-creative"]
    default = presets[0]
    assert {k: default[k] for k in ("title", "endpoint", "model", "temperature", "max_tokens")} == {
        "title": "Default",
        "endpoint": "openAI",
        "model": "gpt-4o",
        "temperature": 0.7,
        "max_tokens": 4096,
    }
    assert default["defaultPreset"] is True
    assert "defaultPreset" not in presets[1]


async def test_lc_presets_upsert_default_and_delete(lc: httpx.AsyncClient) -> None:
    """Presets upsert by `presetId`, a new default clears the old one, and delete counts."""
    auth, _ = await login(lc)
    body = {"presetId": "fast", "title": "Fast", "endpoint": "openAI", "model": "gpt-4o-mini"}
    created = await lc.post(
        "/api/presets", headers=auth, json={**body, "temperature": 0.2, "defaultPreset": True}
    )
    assert created.status_code == 201
    assert created.json()["defaultPreset"] is True
    assert JS_ISO.match(created.json()["createdAt"])
    updated = await lc.post(
        "/api/presets", headers=auth, json={"presetId": "fast", "temperature": "0.4"}
    )
    assert updated.json()["temperature"] == 0.4
    assert updated.json()["model"] == "gpt-4o-mini"
    presets = (await lc.get("/api/presets", headers=auth)).json()
    assert presets[0]["presetId"] == "fast"
    assert [p.get("defaultPreset") for p in presets] == [True, None, None]
    anonymous = await lc.post("/api/presets", headers=auth, json={"title": "No id"})
    assert re.fullmatch(r"[0-9a-f-]{36}", anonymous.json()["presetId"])
    deleted = await lc.post("/api/presets/delete", headers=auth, json={"presetId": "fast"})
    assert (deleted.status_code, deleted.json()) == (201, {"acknowledged": True, "deletedCount": 1})
    none = await lc.post("/api/presets/delete", headers=auth, json={"presetId": "fast"})
    assert none.json()["deletedCount"] == 0


async def test_lc_preset_writes_need_a_token_and_are_logged(lc: httpx.AsyncClient) -> None:
    """A preset write without a token is refused with 401 and logged as not accepted."""
    response = await lc.post("/api/presets", json={"presetId": "x", "title": "X"})
    assert response.status_code == 401
    assert (await lc.get("/_sim/writes")).json() == [
        {"path": "/api/presets", "body": {"presetId": "x", "title": "X"}, "accepted": False}
    ]


async def test_lc_control_patches_a_preset(lc: httpx.AsyncClient) -> None:
    """`PATCH /_sim/presets/{id}` merges fields, as a user editing it in the UI would."""
    response = await lc.patch("/_sim/presets/preset-default", json={"temperature": 0.3})
    assert response.status_code == 200
    auth, _ = await login(lc)
    default = (await lc.get("/api/presets", headers=auth)).json()[0]
    assert (default["presetId"], default["temperature"]) == ("preset-default", 0.3)
    assert (await lc.patch("/_sim/presets/nope", json={})).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/user/me"),
        ("GET", "/api/user/settings"),
        ("POST", "/api/user/settings"),
        ("GET", "/api/conversations"),
        ("GET", "/api/nothing"),
        ("DELETE", "/api"),
    ],
)
async def test_lc_unknown_api_paths_are_json_404(
    lc: httpx.AsyncClient, method: str, path: str
) -> None:
    """Unknown `/api` paths, the bizzy ones included, answer 404 `Endpoint not found`."""
    auth, _ = await login(lc)
    response = await lc.request(method, path, headers=auth, json={})
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


async def test_lc_forbidden_paths_are_refused_and_counted(lc: httpx.AsyncClient) -> None:
    """Agents, assistants and keys paths answer 403 `Illegal request`, each call counted."""
    paths = ["/api/agents", "/api/agents/chat/active", "/api/assistants/v2", "/api/keys"]
    for path in paths:
        response = await lc.get(path)
        assert response.status_code == 403
        assert response.json() == {"message": "Illegal request"}
    assert (await lc.get("/_sim/stats")).json()["forbidden_calls"] == 4


async def test_lc_stats_count_paths_and_reset(lc: httpx.AsyncClient) -> None:
    """Stats count requests per path (not `/_sim`), and `DELETE /_sim/stats` zeroes them."""
    auth, _ = await login(lc)
    await lc.get("/api/user", headers=auth)
    await lc.get("/api/user", headers=auth)
    stats = (await lc.get("/_sim/stats")).json()
    assert stats["paths"] == {"/api/auth/login": 1, "/api/user": 2}
    assert (await lc.delete("/_sim/stats")).status_code == 204
    assert (await lc.get("/_sim/stats")).json() == {
        "logins": 0,
        "login_rejections_429": 0,
        "refreshes": 0,
        "refresh_failures": 0,
        "convo_page_requests": 0,
        "forbidden_calls": 0,
        "vector_resets": 0,
        "paths": {},
    }


@pytest.mark.parametrize("path", ["/api/user", "/api/convos", "/api/presets"])
async def test_lc_read_faults_apply_to_native_routes(lc: httpx.AsyncClient, path: str) -> None:
    """The read faults hit native LibreChat reads (after auth); `ok` restores them."""
    auth, _ = await login(lc)
    normal = (await lc.get(path, headers=auth)).json()
    await lc.put("/_sim/fault", json={"reads": "error"})
    assert (await lc.get(path, headers=auth)).status_code == 500
    await lc.put("/_sim/fault", json={"reads": "wrong_shape"})
    assert (await lc.get(path, headers=auth)).json() == "ok"
    await lc.put("/_sim/fault", json={"reads": "ok"})
    assert (await lc.get(path, headers=auth)).json() == normal


async def test_lc_write_fault_fails_preset_saves(lc: httpx.AsyncClient, world: World) -> None:
    """With the writes fault a preset save answers 500 and changes nothing."""
    auth, _ = await login(lc)
    await lc.put("/_sim/fault", json={"writes": "fail"})
    response = await lc.post("/api/presets", headers=auth, json={"presetId": "x", "title": "X"})
    assert response.status_code == 500
    assert len(world.librechat.presets) == 2


async def test_lc_reset_forgets_sessions_and_settings(lc: httpx.AsyncClient, world: World) -> None:
    """`POST /_sim/reset` ends sessions, restores auth settings, mode and the seed data."""
    auth, _ = await login(lc)
    await lc.put("/_sim/mode", json={"legacy_convos": True})
    await lc.put("/_sim/auth", json={"access_token_ttl_s": 5})
    state = (await lc.post("/_sim/reset")).json()
    assert state["auth"]["access_token_ttl_s"] == 900.0
    assert state["mode"] == {"legacy_convos": False}
    assert world.librechat == World.seed().librechat
    assert (await lc.get("/api/user", headers=auth)).status_code == 401


async def test_lc_favorites_read_and_write(lc: httpx.AsyncClient) -> None:
    """Favorites read back what was saved; a malformed entry is a 400."""
    auth, _ = await login(lc)
    saved = [{"model": "gpt-4o-mini", "endpoint": "openAI"}, {"spec": "fast"}]
    response = await lc.post(
        "/api/user/settings/favorites", headers=auth, json={"favorites": saved}
    )
    assert response.json() == saved
    assert (await lc.get("/api/user/settings/favorites", headers=auth)).json() == saved
    bad = await lc.post(
        "/api/user/settings/favorites", headers=auth, json={"favorites": [{"model": "x"}]}
    )
    assert bad.status_code == 400


# --- both --------------------------------------------------------------------------------------


async def test_native_answers_never_carry_secrets(
    allm: httpx.AsyncClient, lc: httpx.AsyncClient, world: World
) -> None:
    """Native answers carry only the canaries the real whitelists let through, never a
    password, key or session secret of the world."""
    answers = [
        await allm.get("/api/v1/system"),
        await allm.get("/api/v1/workspaces"),
        await allm.post("/api/request-token", json=ALLM_LOGIN),
        await allm.get("/api/setup-complete"),
    ]
    login_response = await lc.post("/api/auth/login", json=LC_LOGIN)
    auth = {"Authorization": f"Bearer {login_response.json()['token']}"}
    answers += [
        login_response,
        await lc.get("/api/user", headers=auth),
        await lc.get("/api/convos?limit=100", headers=auth),
        await lc.get("/api/presets", headers=auth),
    ]
    jwt_canary = f"eyJhbGciOiJIUzI1NiJ9.eyJ{SECRET_CANARY}.c2lnbmF0dXJl"
    user_canaries = [  # in the user's `personalization`, which LibreChat does send
        jwt_canary,
        f"{SECRET_CANARY}-session",
        f"otpauth://totp/LibreChat:ada?secret={SECRET_CANARY}",
        f"{SECRET_CANARY}-passphrase",
        f"{SECRET_CANARY}-mfa-seed",
        f"{SECRET_CANARY}-auth-pass",
    ]
    passed_through = {  # seeded on purpose, in fields the real applications do send
        "/api/v1/workspaces": [f"Bearer {SECRET_CANARY}-workspace-token"],
        "/api/auth/login": user_canaries,
        "/api/user": user_canaries,
        "/api/convos": [f"https://ada:{SECRET_CANARY}@icons.example/7.png", jwt_canary],
    }
    for answer in answers:
        assert answer.status_code == 200
        text = answer.text
        for seeded in passed_through.get(answer.url.path, []):
            text = text.replace(seeded, "")
        assert SECRET_CANARY not in text, answer.url.path
    assert SECRET_CANARY in world.anythingllm.env["OpenAiKey"]
    assert SECRET_CANARY in world.librechat.user["password"]


async def test_simulator_servers_serve_native_by_default() -> None:
    """A default SimulatorServers serves the native APIs over real loopback HTTP."""
    async with SimulatorServers() as servers, httpx.AsyncClient() as client:
        assert servers.flavour == "native"
        allm = await client.get(f"{servers.anythingllm_url}/api/v1/auth", headers=ALLM_AUTH)
        assert allm.json() == {"authenticated": True}
        login_response = await client.post(f"{servers.librechat_url}/api/auth/login", json=LC_LOGIN)
        cookie = cookie_value(login_response, "refreshToken")
        renewed = await client.post(
            f"{servers.librechat_url}/api/auth/refresh",
            headers={"Cookie": f"refreshToken={cookie}"},
        )
        auth = {"Authorization": f"Bearer {renewed.json()['token']}"}
        convos = await client.get(f"{servers.librechat_url}/api/convos?limit=5", headers=auth)
        assert len(convos.json()["conversations"]) == 5
        assert (await client.get(f"{servers.librechat_url}/api/user/me")).json() == NOT_FOUND
