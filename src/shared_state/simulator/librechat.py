"""The simulated LibreChat: `create_librechat_app` for either flavour, and the "bizzy"
flavour's routes (the paths of the older Node.js design); native ones are in `*_native.py`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from shared_state.simulator.control import (
    INTEGER,
    NUMBER,
    STRING,
    FieldSpec,
    PathCounter,
    check_fields,
    install_error_handlers,
    librechat_control_router,
    one_of,
    read_json_object,
    upstream_route_class,
)
from shared_state.simulator.librechat_native import create_native_app
from shared_state.simulator.world import (
    SIM_LIBRECHAT_TOKEN,
    Conversation,
    Flavour,
    JSONObject,
    LibreChatWorld,
    js_iso,
)

USER_SETTINGS: dict[str, FieldSpec] = {
    "defaultModelId": STRING,
    "defaultTemperature": NUMBER,
    "defaultMaxTokens": INTEGER,
    "theme": one_of("light", "dark", "system"),
    "fontSize": one_of("small", "medium", "large"),
}
"""The settings `POST /api/user/settings` may change, and what each must hold."""


def conversation_json(conversation: Conversation) -> JSONObject:
    """A conversation as `GET /api/conversations` lists it."""
    return {
        "conversationId": conversation.conversation_id,
        "title": conversation.title,
        "endpoint": conversation.endpoint,
        "model": conversation.model,
        "createdAt": js_iso(conversation.created_at),
        "updatedAt": js_iso(conversation.updated_at),
        "messageCount": conversation.message_count,
    }


def bizzy_router(world: LibreChatWorld, token: str | None) -> APIRouter:
    """The `/api` routes of the bizzy flavour, guarded by the token and the world's faults."""
    router = APIRouter(prefix="/api", route_class=upstream_route_class(world, token))

    @router.get("/user/me")
    async def me() -> JSONResponse:
        """The signed-in user, password hash and refresh token included."""
        return JSONResponse(world.user)

    @router.get("/user/settings")
    async def get_settings() -> JSONResponse:
        """The user's settings."""
        return JSONResponse(world.settings)

    @router.post("/user/settings")
    async def post_settings(request: Request) -> JSONResponse:
        """Change some of the user's settings; answer all of them."""
        changes = check_fields(await read_json_object(request), USER_SETTINGS)
        return JSONResponse(world.merge_settings(changes))

    @router.get("/conversations")
    async def conversations() -> JSONResponse:
        """Every conversation, most recently updated first."""
        return JSONResponse([conversation_json(c) for c in world.conversations])

    return router


def create_librechat_app(
    world: LibreChatWorld,
    *,
    token: str | None = SIM_LIBRECHAT_TOKEN,
    flavour: Flavour = "bizzy",
) -> FastAPI:
    """An ASGI app simulating LibreChat over `world`; `token=None` turns auth off.

    `flavour` picks the API: "bizzy" (the older design's paths, guarded by `token`) or
    "native" (the real one, where a client logs in by e-mail and password; `token` is unused).
    """
    if flavour == "native":
        return create_native_app(world)
    app = FastAPI(title="Simulated LibreChat (bizzy API)")
    install_error_handlers(app)
    app.add_middleware(PathCounter, world=world)
    app.include_router(bizzy_router(world, token))
    app.include_router(librechat_control_router(world, conversation_json))
    return app
