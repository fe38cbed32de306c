"""The simulated AnythingLLM: `create_anythingllm_app` for either flavour, and the "bizzy"
flavour's routes (the paths of the older Node.js design); native ones are in `*_native.py`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from shared_state.simulator.anythingllm_native import create_native_app
from shared_state.simulator.control import (
    INTEGER,
    NUMBER,
    STRING,
    FieldSpec,
    PathCounter,
    anythingllm_control_router,
    check_fields,
    install_error_handlers,
    read_json_object,
    upstream_route_class,
)
from shared_state.simulator.world import (
    SIM_ANYTHINGLLM_API_KEY,
    AnythingLLMWorld,
    Flavour,
    JSONObject,
    Workspace,
    js_iso,
)

LLM_SETTINGS: dict[str, FieldSpec] = {
    "LLMProvider": STRING,
    "OpenAiModelPref": STRING,
    "Temperature": NUMBER,
    "MaxTokens": INTEGER,
}
"""The settings `POST /api/system/update` may change, and what each must hold."""


def workspace_json(workspace: Workspace) -> JSONObject:
    """A workspace as `GET /api/workspaces` lists it."""
    return {
        "id": workspace.id,
        "name": workspace.name,
        "slug": workspace.slug,
        "createdAt": js_iso(workspace.created_at),
        "openAiTemp": workspace.openai_temp,
        "chatProvider": workspace.chat_provider,
        "chatModel": workspace.chat_model,
        "documents": workspace.documents,
    }


def bizzy_router(world: AnythingLLMWorld, api_key: str | None) -> APIRouter:
    """The `/api` routes of the bizzy flavour, guarded by the API key and the world's faults."""
    router = APIRouter(prefix="/api", route_class=upstream_route_class(world, api_key))

    @router.get("/me")
    async def me() -> JSONResponse:
        """The signed-in user, password hash included (the sidecar must strip it)."""
        return JSONResponse(world.user)

    @router.get("/system/settings")
    async def system_settings() -> JSONResponse:
        """Every system setting, secrets included."""
        return JSONResponse(world.settings)

    @router.post("/system/update")
    async def system_update(request: Request) -> JSONResponse:
        """Change some of the LLM settings; answer the four LLM settings."""
        changes = check_fields(await read_json_object(request), LLM_SETTINGS)
        settings = world.merge_settings(changes)
        return JSONResponse(
            {"success": True, "settings": {key: settings.get(key) for key in LLM_SETTINGS}}
        )

    @router.get("/workspaces")
    async def workspaces() -> JSONResponse:
        """Every workspace."""
        return JSONResponse([workspace_json(ws) for ws in world.workspaces])

    return router


def create_anythingllm_app(
    world: AnythingLLMWorld,
    *,
    api_key: str | None = SIM_ANYTHINGLLM_API_KEY,
    flavour: Flavour = "bizzy",
) -> FastAPI:
    """An ASGI app simulating AnythingLLM over `world`; `api_key=None` turns auth off.

    `flavour` picks the API: "bizzy" (the older design's paths) or "native" (the real one).
    """
    if flavour == "native":
        return create_native_app(world, api_key)
    app = FastAPI(title="Simulated AnythingLLM (bizzy API)")
    install_error_handlers(app)
    app.add_middleware(PathCounter, world=world)
    app.include_router(bizzy_router(world, api_key))
    app.include_router(anythingllm_control_router(world, workspace_json))
    return app
