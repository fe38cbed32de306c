"""The simulated AnythingLLM, "bizzy" flavour: the paths of the older Node.js design.

Routes here only render the world's data on the wire; the data lives in `world.py`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from shared_state.simulator.control import (
    INTEGER,
    NUMBER,
    STRING,
    FieldSpec,
    anythingllm_control_router,
    check_fields,
    install_error_handlers,
    js_iso,
    read_json_object,
    upstream_route_class,
)
from shared_state.simulator.world import (
    SIM_ANYTHINGLLM_API_KEY,
    AnythingLLMWorld,
    JSONObject,
    Workspace,
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
    world: AnythingLLMWorld, *, api_key: str | None = SIM_ANYTHINGLLM_API_KEY
) -> FastAPI:
    """An ASGI app simulating AnythingLLM over `world`; `api_key=None` turns auth off."""
    app = FastAPI(title="Simulated AnythingLLM (bizzy API)")
    install_error_handlers(app)
    app.include_router(bizzy_router(world, api_key))
    app.include_router(anythingllm_control_router(world, workspace_json))
    return app
