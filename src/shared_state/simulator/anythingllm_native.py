"""The simulated AnythingLLM, "native" flavour: the real 1.16 developer API and internal login.

Routes here only render the world's data on the wire; the data lives in `world.py`.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from shared_state.simulator import tokens
from shared_state.simulator.control import (
    BOOLEAN,
    DURATION,
    HTML_PAGE,
    NUMBER,
    ApiError,
    FieldSpec,
    PathCounter,
    SettingsAccess,
    anythingllm_control_router,
    check_fields,
    install_error_handlers,
    json_error,
    parse_json,
    read_json_object,
    upstream_route_class,
)
from shared_state.simulator.world import (
    AnythingLLMWorld,
    JSONObject,
    Workspace,
    js_iso,
)

Check = Callable[[str, AnythingLLMWorld], str | None]
"""One `update-env` validity check of a value: an error message, or None when it passes."""

MASK = "******"
"""A value containing this is a masked secret posted back unchanged: `update-env` skips it."""


def _is_not_empty(value: str, _world: AnythingLLMWorld) -> str | None:
    return None if value else "Value cannot be empty"


def _valid_url(value: str, _world: AnythingLLMWorld) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return "Not a valid URL"
    return "URL cannot end with a slash" if value.endswith("/") else None


def _non_zero(value: str, _world: AnythingLLMWorld) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "Value must be a number"
    if math.isnan(number):
        return "Value must be a number"
    return "Value must be greater than zero" if number <= 0 else None


def _valid_openai_key(value: str, _world: AnythingLLMWorld) -> str | None:
    return None if value.startswith("sk-") else "OpenAI Key must start with sk-"


def _valid_anthropic_key(value: str, _world: AnythingLLMWorld) -> str | None:
    return None if value.startswith("sk-ant-") else "Anthropic Key must start with sk-ant-"


def _requires_force_mode(_value: str, _world: AnythingLLMWorld) -> str | None:
    return "Cannot set this setting."


SUPPORTED_LLM_PROVIDERS = [
    "openai",
    "azure",
    "anthropic",
    "gemini",
    "lmstudio",
    "localai",
    "ollama",
    "togetherai",
    "fireworksai",
    "mistral",
    "huggingface",
    "perplexity",
    "openrouter",
    "novita",
    "groq",
    "koboldcpp",
    "textgenwebui",
    "cohere",
    "litellm",
    "generic-openai",
    "bedrock",
    "deepseek",
    "apipie",
    "xai",
    "nvidia-nim",
    "ppio",
    "moonshotai",
    "cometapi",
    "foundry",
    "zai",
    "giteeai",
    "docker-model-runner",
    "privatemode",
    "sambanova",
    "lemonade",
    "minimax",
    "cerebras",
    "omlx",
]
SUPPORTED_EMBEDDING_ENGINES = [
    "openai",
    "azure",
    "localai",
    "native",
    "ollama",
    "lmstudio",
    "cohere",
    "voyageai",
    "litellm",
    "generic-openai",
    "mistral",
    "gemini",
    "openrouter",
    "lemonade",
]
SUPPORTED_VECTOR_DBS = [
    "lancedb",
    "chroma",
    "chromacloud",
    "pinecone",
    "weaviate",
    "qdrant",
    "milvus",
    "zilliz",
    "astra",
    "pgvector",
]


def _one_of(choices: list[str], message: Callable[[str], str]) -> Check:
    return lambda value, _world: None if value in choices else message(value)


def _supported_llm(value: str, world: AnythingLLMWorld) -> str | None:
    if value in SUPPORTED_LLM_PROVIDERS and value not in world.unsupported_providers:
        return None
    return f"{value} is not a valid LLM provider."


_supported_embedding = _one_of(
    SUPPORTED_EMBEDDING_ENGINES,
    lambda _v: (
        "Invalid Embedding model type. Must be one of "
        + ", ".join(SUPPORTED_EMBEDDING_ENGINES)
        + "."
    ),
)
_supported_vector_db = _one_of(
    SUPPORTED_VECTOR_DBS,
    lambda _v: "Invalid VectorDB type. Must be one of " + ", ".join(SUPPORTED_VECTOR_DBS) + ".",
)


@dataclass(frozen=True)
class EnvKey:
    """One settings key: whether it is secret, how `update-env` checks it, what it defaults to.

    `writable` is False for keys `GET /api/v1/system` shows but `update-env` does not know;
    `resets_vectors` marks the keys whose change wipes the vector store.
    """

    secret: bool = False
    checks: tuple[Check, ...] = ()
    default: str | None = None
    writable: bool = True
    resets_vectors: bool = False


_OTHER_MODEL_KEYS: dict[str, str] = {
    "fireworksai": "FireworksAiLLMModelPref",
    "perplexity": "PerplexityModelPref",
    "cohere": "CohereModelPref",
    "koboldcpp": "KoboldCPPModelPref",
    "novita": "NovitaLLMModelPref",
    "apipie": "ApipieLLMModelPref",
    "nvidia-nim": "NvidiaNimLLMModelPref",
    "ppio": "PPIOModelPref",
    "moonshotai": "MoonshotAiModelPref",
    "cometapi": "CometApiLLMModelPref",
    "foundry": "FoundryModelPref",
    "zai": "ZAiModelPref",
    "giteeai": "GiteeAIModelPref",
    "docker-model-runner": "DockerModelRunnerModelPref",
    "privatemode": "PrivateModeModelPref",
    "sambanova": "SambaNovaLLMModelPref",
    "lemonade": "LemonadeLLMModelPref",
    "omlx": "OMLXLLMModelPref",
    "minimax": "MinimaxModelPref",
    "cerebras": "CerebrasModelPref",
}
"""The model keys of the less common providers (reference A4.3)."""

_MODEL = EnvKey(checks=(_is_not_empty,))
_URL = EnvKey(checks=(_is_not_empty, _valid_url))
_LIMIT = EnvKey(checks=(_non_zero,))
_KEY = EnvKey(secret=True, checks=(_is_not_empty,))
_OPTIONAL_KEY = EnvKey(secret=True)

ENV_KEYS: dict[str, EnvKey] = {
    "AuthToken": EnvKey(secret=True, checks=(_requires_force_mode,)),
    "JWTSecret": EnvKey(secret=True, checks=(_requires_force_mode,)),
    "StorageDir": EnvKey(writable=False),
    # LLM
    "LLMProvider": EnvKey(checks=(_is_not_empty, _supported_llm)),
    "OpenAiKey": EnvKey(secret=True, checks=(_is_not_empty, _valid_openai_key)),
    "OpenAiModelPref": EnvKey(checks=(_is_not_empty,), default="gpt-4.1-nano"),
    "AzureOpenAiEndpoint": _URL,
    "AzureOpenAiKey": _KEY,
    "AzureOpenAiModelPref": _MODEL,
    "AzureOpenAiTokenLimit": _LIMIT,
    "AnthropicApiKey": EnvKey(secret=True, checks=(_is_not_empty, _valid_anthropic_key)),
    "AnthropicModelPref": EnvKey(checks=(_is_not_empty,), default="claude-sonnet-4-6"),
    "GeminiLLMApiKey": _KEY,
    "GeminiLLMModelPref": _MODEL,
    "LMStudioBasePath": _URL,
    "LMStudioModelPref": _MODEL,
    "LMStudioTokenLimit": _LIMIT,
    "LMStudioAuthToken": _OPTIONAL_KEY,
    "LocalAiBasePath": _URL,
    "LocalAiModelPref": EnvKey(),
    "LocalAiTokenLimit": _LIMIT,
    "LocalAiApiKey": _OPTIONAL_KEY,
    "OllamaLLMBasePath": _URL,
    "OllamaLLMModelPref": _MODEL,
    "OllamaLLMTokenLimit": _LIMIT,
    "OllamaLLMAuthToken": _OPTIONAL_KEY,
    "GenericOpenAiBasePath": _URL,
    "GenericOpenAiModelPref": _MODEL,
    "GenericOpenAiTokenLimit": _LIMIT,
    "GenericOpenAiMaxTokens": _LIMIT,
    "GenericOpenAiKey": _OPTIONAL_KEY,
    "LiteLLMBasePath": _URL,
    "LiteLLMModelPref": _MODEL,
    "LiteLLMTokenLimit": _LIMIT,
    "LiteLLMApiKey": _OPTIONAL_KEY,
    "OpenRouterApiKey": _KEY,
    "OpenRouterModelPref": _MODEL,
    "GroqApiKey": _KEY,
    "GroqModelPref": _MODEL,
    "MistralApiKey": _KEY,
    "MistralModelPref": _MODEL,
    "TogetherAiApiKey": _KEY,
    "TogetherAiModelPref": _MODEL,
    "DeepSeekApiKey": _KEY,
    "DeepSeekModelPref": _MODEL,
    "XAIApiKey": _KEY,
    "XAIModelPref": _MODEL,
    "AwsBedrockLLMModel": _MODEL,
    **{key: _MODEL for key in _OTHER_MODEL_KEYS.values()},
    # Embedder
    "EmbeddingEngine": EnvKey(
        checks=(_supported_embedding,), default="native", resets_vectors=True
    ),
    "EmbeddingModelPref": EnvKey(checks=(_is_not_empty,), resets_vectors=True),
    "EmbeddingBasePath": _URL,
    "GenericOpenAiEmbeddingApiKey": _OPTIONAL_KEY,
    # Vector database
    "VectorDB": EnvKey(checks=(_is_not_empty, _supported_vector_db), resets_vectors=True),
    "PineConeKey": _OPTIONAL_KEY,
    "PineConeIndex": EnvKey(),
    "ChromaEndpoint": EnvKey(checks=(_valid_url,)),
    "ChromaApiKey": _OPTIONAL_KEY,
    "QdrantEndpoint": EnvKey(checks=(_valid_url,)),
    "QdrantApiKey": _OPTIONAL_KEY,
    "WeaviateEndpoint": EnvKey(checks=(_valid_url,)),
    "WeaviateApiKey": _OPTIONAL_KEY,
    "MilvusAddress": EnvKey(checks=(_valid_url,)),
    "MilvusUsername": _MODEL,
    "MilvusPassword": _KEY,
    "PGVectorConnectionString": _OPTIONAL_KEY,
}
"""The settings keys this simulator knows, in the order `GET /api/v1/system` shows them."""

PROVIDER_MODEL_KEYS: dict[str, str] = {
    "openai": "OpenAiModelPref",
    "azure": "AzureOpenAiModelPref",
    "anthropic": "AnthropicModelPref",
    "gemini": "GeminiLLMModelPref",
    "lmstudio": "LMStudioModelPref",
    "localai": "LocalAiModelPref",
    "ollama": "OllamaLLMModelPref",
    "generic-openai": "GenericOpenAiModelPref",
    "litellm": "LiteLLMModelPref",
    "openrouter": "OpenRouterModelPref",
    "groq": "GroqModelPref",
    "mistral": "MistralModelPref",
    "togetherai": "TogetherAiModelPref",
    "deepseek": "DeepSeekModelPref",
    "xai": "XAIModelPref",
    "bedrock": "AwsBedrockLLMModel",
    **_OTHER_MODEL_KEYS,
}
"""Which `*ModelPref` key holds each provider's model: what `LLMModel` resolves."""


def _env_value(world: AnythingLLMWorld, key: str) -> str | None:
    """A setting's value as `currentSettings()` reads it: unset or empty means its default."""
    value = world.env.get(key)
    if value:
        return value
    spec = ENV_KEYS.get(key)
    return spec.default if spec is not None else None


def current_settings(world: AnythingLLMWorld) -> JSONObject:
    """`SystemSettings.currentSettings()`: secrets as booleans, unset keys left out."""
    multi_user = world.auth.multi_user
    has_embeddings = any(ws.documents > 0 for ws in world.workspaces)
    settings: JSONObject = {
        "RequiresAuth": multi_user or bool(world.env.get("AuthToken")),
        "MultiUserMode": multi_user,
        "DisableTelemetry": "false",
        "HasExistingEmbeddings": has_embeddings,
        "HasCachedEmbeddings": has_embeddings,
    }
    for key, spec in ENV_KEYS.items():
        if spec.secret:
            settings[key] = bool(world.env.get(key))
            continue
        value = _env_value(world, key)
        if value is not None:
            settings[key] = value
        if key == "LLMProvider" and (model := llm_model(world)) is not None:
            settings["LLMModel"] = model
    return settings


def update_env(world: AnythingLLMWorld, body: JSONObject) -> JSONObject | None:
    """Apply an `update-env` body as `updateENV` does; None where the real one throws (500).

    Unknown keys are ignored; a known key with a non-string value throws before anything is
    applied; masked values are skipped; the first key failing a check stops the loop.
    """
    keys = []
    for key, value in body.items():
        spec = ENV_KEYS.get(key)
        if spec is None or not spec.writable:
            continue
        if not isinstance(value, str):
            return None
        if MASK not in value:
            keys.append(key)
    new_values: JSONObject = {}
    error = ""
    for key in keys:
        spec, value = ENV_KEYS[key], body[key]
        errors = [m for check in spec.checks if (m := check(value, world)) is not None]
        if errors:
            error = "\n".join(errors)
            break
        previous = world.env.get(key)
        world.env[key] = value
        new_values[key] = value
        if spec.resets_vectors and previous != value:
            world.stats.vector_resets += 1
    return {"newValues": new_values, "error": error or False}


def env_view(world: AnythingLLMWorld) -> JSONObject:
    """The native settings as `/_sim` shows them: raw values (secrets too), plus `LLMModel`."""
    view: JSONObject = dict(world.env)
    model = llm_model(world)
    if model is not None:
        view["LLMModel"] = model
    return view


def llm_model(world: AnythingLLMWorld) -> str | None:
    """The active provider's model, as `getBaseLLMProviderModel` resolves it."""
    model_key = PROVIDER_MODEL_KEYS.get(world.env.get("LLMProvider") or "")
    return _env_value(world, model_key) if model_key else None


def merge_env(world: AnythingLLMWorld, changes: JSONObject) -> JSONObject:
    """The `/_sim/settings` merge of the native flavour: strings set a key, null unsets it."""
    for key, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"invalid value for {key}: expected a string or null")
    for key, value in changes.items():
        if value is None:
            world.env.pop(key, None)
        else:
            world.env[key] = value
    return env_view(world)


_WORKSPACE_DEFAULTS: JSONObject = {
    "vectorTag": None,
    "lastUpdatedAt": None,
    "openAiHistory": 20,
    "openAiPrompt": None,
    "similarityThreshold": 0.25,
    "topN": 4,
    "chatMode": "chat",
    "pfpFilename": None,
    "agentProvider": None,
    "agentModel": None,
    "queryRefusalResponse": None,
    "vectorSearchMode": "default",
    "router_id": None,
}


def workspace_row(workspace: Workspace) -> JSONObject:
    """A workspace's row of the `workspaces` table, as Prisma returns it."""
    options = {**_WORKSPACE_DEFAULTS, **workspace.options}
    created = js_iso(workspace.created_at)
    return {
        "id": workspace.id,
        "name": workspace.name,
        "slug": workspace.slug,
        "vectorTag": options["vectorTag"],
        "createdAt": created,
        "lastUpdatedAt": options["lastUpdatedAt"] or created,
        "openAiTemp": workspace.openai_temp,
        "openAiHistory": options["openAiHistory"],
        "openAiPrompt": options["openAiPrompt"],
        "similarityThreshold": options["similarityThreshold"],
        "chatProvider": workspace.chat_provider,
        "chatModel": workspace.chat_model,
        "topN": options["topN"],
        "chatMode": options["chatMode"],
        "pfpFilename": options["pfpFilename"],
        "agentProvider": options["agentProvider"],
        "agentModel": options["agentModel"],
        "queryRefusalResponse": options["queryRefusalResponse"],
        "vectorSearchMode": options["vectorSearchMode"],
        "router_id": options["router_id"],
    }


def workspace_json(workspace: Workspace) -> JSONObject:
    """A workspace as `GET /api/v1/workspaces` lists it: its row plus its threads."""
    threads = [
        {"user_id": t.get("user_id"), "slug": t.get("slug"), "name": t.get("name")}
        for t in workspace.threads
    ]
    return {**workspace_row(workspace), "threads": threads}


def _workspace_documents(workspace: Workspace) -> list[JSONObject]:
    created = js_iso(workspace.created_at)
    return [
        {
            "id": workspace.id * 1000 + n,
            "docId": f"{workspace.slug}-doc-{n}",
            "filename": f"document-{n}.json",
            "docpath": f"custom-documents/{workspace.slug}/document-{n}.json",
            "workspaceId": workspace.id,
            "metadata": "{}",
            "pinned": False,
            "watched": False,
            "createdAt": created,
            "lastUpdatedAt": created,
        }
        for n in range(1, workspace.documents + 1)
    ]


def _temperature(value: Any) -> float | None:
    """`Workspace.validations.openAiTemp`: a number >= 0, anything else becomes null."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or number < 0 else number


def _int_or(value: Any, default: int, minimum: int) -> int:
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return default
    return number if number >= minimum else default


def _float_or(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(number) else number


_WRITABLE_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "openAiHistory": lambda v: _int_or(v, 20, 0),
    "openAiPrompt": lambda v: None if v is None else str(v),
    "similarityThreshold": lambda v: _float_or(v, 0.25),
    "topN": lambda v: _int_or(v, 4, 1),
    "chatMode": lambda v: v if v in {"chat", "query", "automatic"} else "chat",
    "agentProvider": lambda v: None if v is None else str(v),
    "agentModel": lambda v: None if v is None else str(v),
    "queryRefusalResponse": lambda v: None if v is None else str(v),
    "vectorSearchMode": lambda v: v if v in {"default", "rerank"} else "default",
    "router_id": lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None,
    "lastUpdatedAt": lambda v: None if v is None else str(v),
}


def update_workspace(workspace: Workspace, body: JSONObject) -> JSONObject:
    """Apply `Workspace.update`'s writable fields; answer `{"workspace", "message"}`."""
    applied = False
    for key, value in body.items():
        if key == "name" and isinstance(value, str) and value.strip():
            workspace.name = value.strip()
        elif key == "openAiTemp":
            workspace.openai_temp = _temperature(value)
        elif key == "chatProvider":
            if value == "default":
                workspace.chat_provider = workspace.chat_model = None
            else:
                workspace.chat_provider = None if value is None else str(value)
        elif key == "chatModel":
            workspace.chat_model = None if value is None else str(value)
        elif key in _WRITABLE_OPTIONS:
            workspace.options[key] = _WRITABLE_OPTIONS[key](value)
        else:
            continue
        applied = True
    if not applied:
        return {"workspace": {"id": workspace.id}, "message": "No valid fields to update!"}
    return {"workspace": workspace_row(workspace), "message": None}


def _bare_status(status_code: int, text: str) -> Response:
    """What Express's `sendStatus` answers: the status's name as plain text."""
    return Response(text, status_code=status_code, media_type="text/plain; charset=utf-8")


def _server_error() -> Response:
    return _bare_status(500, "Internal Server Error")


def api_key_authorizer(api_key: str | None) -> Callable[[Request], Response | None]:
    """`validApiKey`: the second space-separated word of `Authorization` must be a key."""

    def authorize(request: Request) -> Response | None:
        if api_key is None:
            return None
        words = request.headers.get("authorization", "").split(" ")
        supplied = words[1] if len(words) > 1 else ""
        if supplied and secrets.compare_digest(supplied.encode(), api_key.encode()):
            return None
        return JSONResponse({"error": "No valid api key found."}, status_code=403)

    return authorize


def user_json(world: AnythingLLMWorld) -> JSONObject:
    """The user as `User.filterFields` leaves it: the table's columns, password removed."""
    user = world.user
    return {
        "id": user.get("id"),
        "username": user.get("username"),
        "pfpFilename": user.get("pfpFilename"),
        "role": user.get("role", "default"),
        "suspended": user.get("suspended", 0),
        "seen_recovery_codes": user.get("seen_recovery_codes", True),
        "createdAt": user.get("createdAt"),
        "lastUpdatedAt": user.get("lastUpdatedAt", user.get("createdAt")),
        "dailyMessageLimit": user.get("dailyMessageLimit"),
        "bio": user.get("bio", ""),
    }


def _issue_jwt(world: AnythingLLMWorld, payload: JSONObject) -> str:
    iat = int(time.time() + world.auth.token_clock_offset_s)
    ttl = world.auth.jwt_ttl_s
    exp = iat + (int(ttl) if float(ttl).is_integer() else ttl)
    return tokens.sign({**payload, "iat": iat, "exp": exp}, world.auth.jwt_secret)


def session_user(world: AnythingLLMWorld, request: Request) -> JSONObject | None:
    """The user a multi-user session's Bearer JWT names, if valid, unexpired and not suspended."""
    words = request.headers.get("authorization", "").split(" ")
    token = words[1] if len(words) > 1 else ""
    payload = tokens.verify(token, world.auth.jwt_secret) if token else None
    if payload is None or tokens.expired(payload, time.time()):
        return None
    if payload.get("id") != world.user.get("id") or world.user.get("suspended"):
        return None
    return user_json(world)


def _login_failure(code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"user": None, "valid": False, "token": None, "message": f"[{code}] {message}"}
    )


def auth_router(world: AnythingLLMWorld) -> APIRouter:
    """`POST /api/request-token`: the internal API's login (no faults, not a logged write)."""
    router = APIRouter(prefix="/api")

    @router.post("/request-token")
    async def request_token(request: Request) -> Response:
        """Log in: multi-user by username and password, single-user by the instance password."""
        world.stats.logins += 1
        try:
            body = await read_json_object(request)
        except ApiError:
            return _server_error()
        if not world.auth.multi_user:
            auth_token = world.env.get("AuthToken")
            if not auth_token or str(body.get("password")) != auth_token:
                return JSONResponse(
                    {"valid": False, "token": None, "message": "[003] Invalid password provided"},
                    status_code=401,
                )
            token = _issue_jwt(world, {"p": secrets.token_urlsafe(24)})
            return JSONResponse({"valid": True, "token": token, "message": None})
        if str(body.get("username")) != world.auth.username:
            return _login_failure("001", "Invalid login credentials.")
        if str(body.get("password")) != world.auth.password:
            return _login_failure("002", "Invalid login credentials.")
        if world.user.get("suspended"):
            return _login_failure("004", "Account suspended by admin.")
        user = user_json(world)
        token = _issue_jwt(world, {"id": user["id"], "username": user["username"]})
        return JSONResponse({"valid": True, "user": user, "token": token, "message": None})

    return router


def internal_router(world: AnythingLLMWorld) -> APIRouter:
    """The internal `/api` routes a client may read: the session's user and the mode."""
    router = APIRouter(prefix="/api", route_class=upstream_route_class(world, None))

    @router.get("/system/refresh-user")
    async def refresh_user(request: Request) -> JSONResponse:
        """The session's user; 200 with `success: false` when the session is not valid."""
        if not world.auth.multi_user:
            return JSONResponse({"success": True, "user": None, "message": None})
        user = session_user(world, request)
        if user is None:
            return JSONResponse(
                {"success": False, "user": None, "message": "Session expired or invalid."}
            )
        return JSONResponse({"success": True, "user": user, "message": None})

    @router.get("/system/multi-user-mode")
    async def multi_user_mode() -> JSONResponse:
        """Whether the instance is in multi-user mode (no auth)."""
        return JSONResponse({"multiUserMode": world.auth.multi_user})

    @router.get("/setup-complete")
    async def setup_complete() -> JSONResponse:
        """The same settings as `GET /api/v1/system`, under `results` (no auth)."""
        return JSONResponse({"results": current_settings(world)})

    return router


def developer_router(world: AnythingLLMWorld, api_key: str | None) -> APIRouter:
    """The developer API `/api/v1`, guarded by the API key and the world's faults."""
    router = APIRouter(
        prefix="/api/v1",
        route_class=upstream_route_class(world, authorize=api_key_authorizer(api_key)),
    )

    @router.get("/auth")
    async def auth() -> JSONResponse:
        """A cheap check of the API key."""
        return JSONResponse({"authenticated": True})

    @router.get("/system")
    async def system() -> JSONResponse:
        """The system settings, secrets as booleans."""
        return JSONResponse({"settings": current_settings(world)})

    @router.post("/system/update-env")
    async def system_update_env(request: Request) -> Response:
        """Write settings: string values only, non-atomic, `{"newValues", "error"}`."""
        try:
            body = parse_json(await request.body())
        except ApiError:
            return _server_error()
        result = update_env(world, body) if isinstance(body, dict) else None
        return _server_error() if result is None else JSONResponse(result)

    @router.get("/workspaces")
    async def workspaces() -> JSONResponse:
        """Every workspace, with its threads."""
        return JSONResponse({"workspaces": [workspace_json(ws) for ws in world.workspaces]})

    @router.get("/workspace/{slug}")
    async def workspace(slug: str) -> JSONResponse:
        """One workspace in an array (empty for an unknown slug), with documents and threads."""
        found = world.find_workspace(slug)
        if found is None:
            return JSONResponse({"workspace": []})
        threads = [{"user_id": t.get("user_id"), "slug": t.get("slug")} for t in found.threads]
        document = {
            **workspace_row(found),
            "documents": _workspace_documents(found),
            "threads": threads,
        }
        return JSONResponse({"workspace": [document]})

    @router.post("/workspace/{slug}/update")
    async def workspace_update(slug: str, request: Request) -> Response:
        """Change a workspace's writable fields; 400 for an unknown slug."""
        found = world.find_workspace(slug)
        if found is None:
            return _bare_status(400, "Bad Request")
        try:
            body = await read_json_object(request)
        except ApiError:
            return _server_error()
        return JSONResponse(update_workspace(found, body))

    @router.get("/admin/is-multi-user-mode")
    async def is_multi_user_mode() -> JSONResponse:
        """Whether the instance is in multi-user mode."""
        return JSONResponse({"isMultiUser": world.auth.multi_user})

    @router.get("/users")
    async def users() -> Response:
        """The users (id, username, role); 401 as text unless in multi-user mode."""
        if not world.auth.multi_user:
            return _bare_status(401, "Instance is not in Multi-User mode. Permission denied.")
        user = user_json(world)
        return JSONResponse({"users": [{k: user[k] for k in ("id", "username", "role")}]})

    return router


_AUTH_FIELDS: dict[str, FieldSpec] = {
    "multi_user": BOOLEAN,
    "jwt_ttl_s": DURATION,
    "token_clock_offset_s": NUMBER,
}
_PROVIDER_FIELDS: dict[str, FieldSpec] = {
    "unsupported": FieldSpec(
        "a list of strings", lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v)
    )
}


def _providers_json(world: AnythingLLMWorld) -> JSONObject:
    unsupported = world.unsupported_providers
    return {
        "supported": [p for p in SUPPORTED_LLM_PROVIDERS if p not in unsupported],
        "unsupported": list(unsupported),
    }


def _auth_json(world: AnythingLLMWorld) -> JSONObject:
    return {"multi_user": world.auth.multi_user, "jwt_ttl_s": world.auth.jwt_ttl_s}


def native_control_router(world: AnythingLLMWorld) -> APIRouter:
    """The `/_sim` routes only the native flavour has: login mode, JWT lifetime, providers."""
    router = APIRouter(prefix="/_sim", tags=["simulator control"])

    @router.get("/auth")
    async def get_auth() -> JSONResponse:
        """The login settings."""
        return JSONResponse(_auth_json(world))

    @router.put("/auth")
    async def put_auth(request: Request) -> JSONResponse:
        """Change `multi_user` and `jwt_ttl_s` (seconds), or `token_clock_offset_s` (added
        to the tokens' `iat`/`exp`: a skewed clock); keys left out keep their value."""
        changes = check_fields(await read_json_object(request), _AUTH_FIELDS)
        if "multi_user" in changes:
            world.auth.multi_user = changes["multi_user"]
        if "jwt_ttl_s" in changes:
            world.auth.jwt_ttl_s = float(changes["jwt_ttl_s"])
        if "token_clock_offset_s" in changes:
            world.auth.token_clock_offset_s = float(changes["token_clock_offset_s"])
        return JSONResponse(_auth_json(world))

    @router.get("/llm-providers")
    async def get_llm_providers() -> JSONResponse:
        """Which LLM providers `update-env` accepts."""
        return JSONResponse(_providers_json(world))

    @router.put("/llm-providers")
    async def put_llm_providers(request: Request) -> JSONResponse:
        """`{"unsupported": [...]}`: providers `update-env` refuses, as an older server would."""
        changes = check_fields(await read_json_object(request), _PROVIDER_FIELDS)
        if "unsupported" in changes:
            world.unsupported_providers = list(changes["unsupported"])
        return JSONResponse(_providers_json(world))

    return router


def install_catch_all(app: FastAPI) -> None:
    """Answer every path no route knows, `/api` included, with the SPA page (200 HTML)."""

    @app.api_route(
        "/{path:path}",
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )
    async def single_page_app(path: str) -> Response:
        if path == "_sim" or path.startswith("_sim/"):
            return json_error(404, "not found")
        return Response(HTML_PAGE, media_type="text/html; charset=utf-8")


def create_native_app(world: AnythingLLMWorld, api_key: str | None) -> FastAPI:
    """An ASGI app simulating AnythingLLM 1.16's real API over `world`."""
    app = FastAPI(
        title="Simulated AnythingLLM (native API)", docs_url=None, redoc_url=None, openapi_url=None
    )
    install_error_handlers(app)
    app.add_middleware(PathCounter, world=world)
    app.include_router(developer_router(world, api_key))
    app.include_router(internal_router(world))
    app.include_router(auth_router(world))
    app.include_router(
        anythingllm_control_router(
            world,
            workspace_json,
            settings=SettingsAccess(
                read=lambda: env_view(world), merge=lambda c: merge_env(world, c)
            ),
            extra_records=lambda: {"auth": _auth_json(world), "stats": world.stats.as_json()},
        )
    )
    app.include_router(native_control_router(world))
    install_catch_all(app)
    return app
