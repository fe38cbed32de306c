"""The simulated LibreChat, "native" flavour: the real 0.8.7 API (JWT login and refresh,
`/api/user`, cursor-paged `/api/convos`, presets), and the ≤ 0.7.7 page format on request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from shared_state.simulator import tokens
from shared_state.simulator.control import (
    BOOLEAN,
    COUNT,
    DURATION,
    HTML_PAGE,
    NUMBER,
    ApiError,
    FieldSpec,
    PathCounter,
    check_fields,
    install_error_handlers,
    json_error,
    librechat_control_router,
    parse_json,
    read_json_object,
    upstream_route_class,
)
from shared_state.simulator.world import (
    Conversation,
    JSONObject,
    LibreChatWorld,
    LoginWindow,
    RefreshSession,
    js_iso,
)

PUBLIC_USER_FIELDS = (
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
)
"""What `GET /api/user` keeps of the user document (0.8.6+), after `_id` and `id`."""

LISTED_OPTIONAL_FIELDS = (
    "agent_id",
    "assistant_id",
    "spec",
    "iconURL",
    "chatProjectId",
    "pinned",
)
"""Optional fields `GET /api/convos` projects, present only when the document has them."""

SORT_FIELDS = ("updatedAt", "createdAt", "title")
DEFAULT_PAGE_SIZE = 25
TWO_FA_TEMP_TOKEN_TTL_S = 300
MAX_FAVORITES = 50
MAX_FAVORITE_FIELD_LENGTH = 256
_ISSUED_TOKENS_KEPT = 1000  # expired access tokens are forgotten past this many

REFRESH_NOT_PROVIDED = "Refresh token not provided"
REFRESH_INVALID = "Invalid refresh token"
REFRESH_NOT_FOUND = "Refresh token expired or not found for this user"

PRESET_FIELDS = frozenset(
    {
        "title",
        "endpoint",
        "endpointType",
        "model",
        "modelLabel",
        "chatGptLabel",
        "promptPrefix",
        "system",
        "temperature",
        "top_p",
        "topP",
        "topK",
        "maxOutputTokens",
        "maxTokens",
        "max_tokens",
        "maxContextTokens",
        "presence_penalty",
        "frequency_penalty",
        "reasoning_effort",
        "resendFiles",
        "imageDetail",
        "iconURL",
        "greeting",
        "spec",
        "tools",
        "agent_id",
        "assistant_id",
        "instructions",
        "stop",
        "web_search",
        "order",
    }
)
"""The preset schema's fields this simulator keeps; Mongoose drops any other silently."""

NUMERIC_PRESET_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "topP",
        "topK",
        "maxOutputTokens",
        "maxTokens",
        "max_tokens",
        "maxContextTokens",
        "presence_penalty",
        "frequency_penalty",
        "order",
    }
)

FORBIDDEN_PREFIXES = ("/api/agents", "/api/assistants", "/api/keys", "/api/permissions")
"""Paths a non-browser client must never call: LibreChat bans it (non-browser User-Agent)."""


# --- rendering -------------------------------------------------------------------------------


def user_json(world: LibreChatWorld) -> JSONObject:
    """The user as 0.8.7's `GET /api/user` whitelists it: never a password or a 2FA secret."""
    document = {**world.profile, **world.user, "twoFactorEnabled": world.auth.two_factor}
    user_id = world.user.get("id")
    return {
        "_id": user_id,
        "id": user_id,
        **{key: document[key] for key in PUBLIC_USER_FIELDS if key in document},
    }


def _message_ids(conversation: Conversation) -> list[str]:
    prefix = conversation.mongo_id[:12] or "660000000000"
    return [f"{prefix}{n:012x}" for n in range(1, conversation.message_count + 1)]


def conversation_document(world: LibreChatWorld, conversation: Conversation) -> JSONObject:
    """The whole (lean) conversation document, as `GET /api/convos/:id` answers it."""
    return {
        "_id": conversation.mongo_id,
        "conversationId": conversation.conversation_id,
        "user": world.user.get("id"),
        "__v": 0,
        "createdAt": js_iso(conversation.created_at),
        "endpoint": conversation.endpoint,
        "files": [],
        "isArchived": conversation.is_archived,
        "messages": _message_ids(conversation),
        "model": conversation.model,
        "tags": [],
        "title": conversation.title,
        "updatedAt": js_iso(conversation.updated_at),
        **conversation.fields,
    }


def conversation_listed(world: LibreChatWorld, conversation: Conversation) -> JSONObject:
    """A conversation as `GET /api/convos` projects it."""
    listed: JSONObject = {
        "_id": conversation.mongo_id,
        "conversationId": conversation.conversation_id,
        "endpoint": conversation.endpoint,
        "title": conversation.title,
        "createdAt": js_iso(conversation.created_at),
        "updatedAt": js_iso(conversation.updated_at),
        "user": world.user.get("id"),
        "model": conversation.model,
    }
    for key in LISTED_OPTIONAL_FIELDS:
        if conversation.fields.get(key) is not None:
            listed[key] = conversation.fields[key]
    return listed


def _text(status_code: int, text: str) -> Response:
    """What Express's `res.status(n).send(string)` answers: the string as `text/html`."""
    return Response(text, status_code=status_code, media_type="text/html; charset=utf-8")


def _message(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status_code)


# --- tokens and sessions ---------------------------------------------------------------------


def _lifetime(iat: int, ttl: float) -> int | float:
    return iat + (int(ttl) if float(ttl).is_integer() else ttl)


def issue_access_token(world: LibreChatWorld) -> str:
    """Sign an access token for the user, valid `access_token_ttl_s`, and remember it."""
    auth, user = world.auth, world.user
    iat = int(time.time() + auth.token_clock_offset_s)
    exp = _lifetime(iat, auth.access_token_ttl_s)
    payload = {
        "id": user.get("id"),
        "username": user.get("username"),
        "provider": user.get("provider", "local"),
        "email": user.get("email"),
        "iat": iat,
        "exp": exp,
    }
    token = tokens.sign(payload, auth.jwt_secret)
    if len(auth.access_tokens) >= _ISSUED_TOKENS_KEPT:
        now = time.time()
        for old in [t for t, t_exp in auth.access_tokens.items() if now >= t_exp]:
            del auth.access_tokens[old]
    auth.access_tokens[token] = float(exp)
    return token


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _refresh_token(world: LibreChatWorld, session: RefreshSession) -> str:
    """A new refresh token for `session` (a JWT it alone matches), which rotates it."""
    payload = {
        "id": world.user.get("id"),
        "sessionId": session.session_id,
        "jti": secrets.token_hex(8),
        "iat": int(time.time()),
        "exp": int(session.expires_at),
    }
    token = tokens.sign(payload, world.auth.refresh_secret)
    session.token_hash = _token_hash(token)
    return token


def _set_auth_cookies(response: Response, refresh_token: str, expires_at: float) -> None:
    """`setAuthTokens`' cookies: httpOnly, secure, sameSite strict, ending with the session."""
    expires = format_datetime(datetime.fromtimestamp(expires_at, UTC), usegmt=True)
    for name, value in (("refreshToken", refresh_token), ("token_provider", "librechat")):
        response.headers.append(
            "set-cookie",
            f"{name}={value}; Path=/; Expires={expires}; HttpOnly; Secure; SameSite=Strict",
        )


def _clear_auth_cookies(response: Response) -> None:
    for name in ("refreshToken", "token_provider"):
        response.headers.append(
            "set-cookie", f"{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        )


def _bearer_token(request: Request) -> str | None:
    match = re.fullmatch(r"\s*(\S+)\s+(\S+)\s*", request.headers.get("authorization", ""))
    if match is None or match.group(1).lower() != "bearer":
        return None
    return match.group(2)


def jwt_authorizer(world: LibreChatWorld) -> Callable[[Request], Response | None]:
    """`requireJwtAuth`: a Bearer access token only (never a cookie); 401 otherwise."""

    def authorize(request: Request) -> Response | None:
        token = _bearer_token(request)
        payload = tokens.verify(token, world.auth.jwt_secret) if token else None
        if token is None or payload is None:
            return _message(401, "Unauthorized")
        if tokens.expired(payload, time.time()) or token not in world.auth.access_tokens:
            return _message(401, "jwt expired")
        if payload.get("id") != world.user.get("id"):
            return _message(401, "Unauthorized")
        return None

    return authorize


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _rate_limited(world: LibreChatWorld, address: str) -> bool:
    """Count one login attempt in the address's fixed window; True past `login_max`."""
    auth = world.auth
    now = time.monotonic()
    window = auth.login_windows.get(address)
    if window is None or now - window.started >= auth.login_window_s:
        window = auth.login_windows[address] = LoginWindow(started=now)
    window.attempts += 1
    return window.attempts > auth.login_max


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}"


def auth_router(world: LibreChatWorld) -> APIRouter:
    """`/api/auth`: login, refresh and logout (no faults, not logged as writes)."""
    router = APIRouter(prefix="/api/auth")

    @router.post("/login")
    async def login(request: Request) -> Response:
        """Log in by e-mail and password: an access token, and a refresh cookie."""
        world.stats.logins += 1
        auth = world.auth
        if _rate_limited(world, _client_address(request)):
            world.stats.login_rejections_429 += 1
            return _message(
                429,
                "Too many login attempts, please try again after "
                f"{_minutes(auth.login_window_s)} minutes.",
            )
        try:
            body = await read_json_object(request)
        except ApiError:
            body = {}
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not email or not isinstance(password, str):
            return _message(404, "Missing credentials")
        if not password:
            return _message(404, "Missing credentials")
        if email.strip().lower() != auth.email.lower():
            return _message(404, "Email does not exist.")
        if password != auth.password:
            return _message(404, "Incorrect password.")
        if auth.two_factor:
            iat = int(time.time())
            temp = {
                "userId": world.user.get("id"),
                "twoFAPending": True,
                "iat": iat,
                "exp": iat + TWO_FA_TEMP_TOKEN_TTL_S,
            }
            return JSONResponse(
                {"twoFAPending": True, "tempToken": tokens.sign(temp, auth.jwt_secret)}
            )
        session = RefreshSession(
            session_id=secrets.token_hex(12),
            token_hash="",
            expires_at=time.time() + auth.refresh_token_ttl_s,
        )
        auth.sessions[session.session_id] = session
        refresh_token = _refresh_token(world, session)
        response = JSONResponse({"token": issue_access_token(world), "user": user_json(world)})
        _set_auth_cookies(response, refresh_token, session.expires_at)
        return response

    @router.post("/refresh")
    async def refresh(request: Request) -> Response:
        """Swap the refresh cookie for a new access token and a new (rotated) cookie."""
        world.stats.refreshes += 1
        answer = _refresh(world, request)
        if answer.status_code != 200 or not isinstance(answer, JSONResponse):
            world.stats.refresh_failures += 1
        return answer

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        """End the session the refresh cookie belongs to, and clear the cookies."""
        refusal = jwt_authorizer(world)(request)
        if refusal is not None:
            return refusal
        cookie = request.cookies.get("refreshToken")
        payload = tokens.verify(cookie, world.auth.refresh_secret) if cookie else None
        if payload is not None:
            world.auth.sessions.pop(str(payload.get("sessionId")), None)
        response = _message(200, "Logout successful")
        _clear_auth_cookies(response)
        return response

    return router


def _refresh(world: LibreChatWorld, request: Request) -> Response:
    auth = world.auth
    cookie = request.cookies.get("refreshToken")
    if not cookie:
        return _text(200, REFRESH_NOT_PROVIDED)
    payload = tokens.verify(cookie, auth.refresh_secret)
    if payload is None:
        return _text(403, REFRESH_INVALID)
    session = auth.sessions.get(str(payload.get("sessionId")))
    if (
        session is not None
        and payload.get("id") == world.user.get("id")
        and secrets.compare_digest(session.token_hash, _token_hash(cookie))
        and session.expires_at > time.time()
    ):
        refresh_token = _refresh_token(world, session)
        response = JSONResponse({"token": issue_access_token(world), "user": user_json(world)})
        _set_auth_cookies(response, refresh_token, session.expires_at)
        return response
    if request.query_params.get("retry"):
        return _text(403, "No session found")
    return _text(401, REFRESH_NOT_FOUND)


# --- conversations ---------------------------------------------------------------------------


def parse_int(text: str | None) -> int | None:
    """JavaScript's `parseInt(text, 10)`: the leading integer, or None where it gives NaN."""
    match = re.match(r"\s*([+-]?\d+)", text or "")
    return int(match.group(1)) if match else None


def _is_enabled(text: str | None) -> bool:
    return (text or "").strip().lower() == "true"


SortKey = tuple[Any, datetime]


def _sort_key(conversation: Conversation, sort_by: str) -> SortKey:
    primary: Any = {
        "updatedAt": conversation.updated_at,
        "createdAt": conversation.created_at,
        "title": conversation.title,
    }[sort_by]
    return primary, conversation.updated_at


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def decode_cursor(cursor: str, sort_by: str) -> SortKey | None:
    """The position a v0.8.2+ cursor names, or None when it is malformed (page 1 again)."""
    try:
        decoded = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(decoded, dict):
        return None
    raw = decoded.get("primary")
    primary = _parse_date(raw) if sort_by != "title" else raw if isinstance(raw, str) else None
    secondary = _parse_date(decoded.get("secondary"))
    if primary is None or secondary is None:
        return None
    return primary, secondary


def encode_cursor(conversation: Conversation, sort_by: str) -> str:
    """The cursor after `conversation`: base64 of `{"primary", "secondary"}`."""
    primary, secondary = _sort_key(conversation, sort_by)
    composite = {
        "primary": primary if isinstance(primary, str) else js_iso(primary),
        "secondary": js_iso(secondary),
    }
    raw = json.dumps(composite, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(raw).decode("ascii")


def list_conversations(world: LibreChatWorld, request: Request) -> JSONResponse:
    """`getConvosByCursor`: one page, sorted, strictly after the cursor's position."""
    query = request.query_params
    limit = parse_int(query.get("limit"))
    if not limit or limit < 0:
        limit = DEFAULT_PAGE_SIZE
    sort_by = query.get("sortBy") or "updatedAt"
    if sort_by not in SORT_FIELDS:
        return JSONResponse({"error": "Error fetching conversations"}, status_code=500)
    descending = (query.get("sortDirection") or "desc") != "asc"
    archived = _is_enabled(query.get("isArchived"))
    position = decode_cursor(query["cursor"], sort_by) if query.get("cursor") else None

    def key(c: Conversation) -> SortKey:
        return _sort_key(c, sort_by)

    candidates = [c for c in world.conversations if c.is_archived == archived]
    if position is not None:
        if descending:
            candidates = [c for c in candidates if key(c) < position]
        else:
            candidates = [c for c in candidates if key(c) > position]
    ordered = sorted(candidates, key=lambda c: c.mongo_id, reverse=descending)
    ordered.sort(key=key, reverse=descending)
    page = ordered[: limit + 1]
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        next_cursor = encode_cursor(page[-1], sort_by)
    return JSONResponse(
        {
            "conversations": [conversation_listed(world, c) for c in page],
            "nextCursor": next_cursor,
        }
    )


def list_conversations_by_page(world: LibreChatWorld, request: Request) -> JSONResponse:
    """`getConvosByPage` of LibreChat ≤ 0.7.7: full documents, newest update first."""
    query = request.query_params
    page_number = parse_int(query.get("pageNumber") or "1")
    if page_number is None or page_number < 1:
        return JSONResponse({"error": "Invalid page number"}, status_code=400)
    page_size = parse_int(query.get("pageSize") or str(DEFAULT_PAGE_SIZE))
    if page_size is None or page_size < 1:
        return JSONResponse({"error": "Invalid page size"}, status_code=400)
    archived = query.get("isArchived") == "true"
    matching = [c for c in world.conversations if c.is_archived == archived]
    matching.sort(key=lambda c: c.updated_at, reverse=True)
    start = (page_number - 1) * page_size
    return JSONResponse(
        {
            "conversations": [
                conversation_document(world, c) for c in matching[start : start + page_size]
            ],
            "pages": math.ceil((len(matching) or 1) / page_size),
            "pageNumber": page_number,
            "pageSize": page_size,
        }
    )


# --- presets and favorites -------------------------------------------------------------------


def _js_truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, float) and value != value)


def preset_changes(body: JSONObject) -> JSONObject | None:
    """The preset fields Mongoose would keep, numbers cast; None where the cast fails."""
    changes: JSONObject = {}
    for key, value in body.items():
        if key not in PRESET_FIELDS:
            continue
        if key in NUMERIC_PRESET_FIELDS and value is not None:
            if isinstance(value, bool):
                return None
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    return None
                value = int(value) if value.is_integer() else value
            elif not isinstance(value, int | float) or not math.isfinite(value):
                return None
        changes[key] = value
    if "defaultPreset" in body:
        flag = body["defaultPreset"]
        if _js_truthy(flag):
            changes["defaultPreset"] = True
        elif flag is False:
            changes["defaultPreset"] = False
    return changes


def _favorite_error(favorite: Any) -> str | None:
    if not isinstance(favorite, dict):
        return "Each favorite must be an object"
    kinds = [
        set(favorite) == {"agentId"},
        set(favorite) == {"model", "endpoint"},
        set(favorite) == {"spec"},
    ]
    if sum(kinds) != 1:
        return "Each favorite must have exactly one of agentId, model and endpoint, or spec"
    for value in favorite.values():
        if not isinstance(value, str) or not value or len(value) > MAX_FAVORITE_FIELD_LENGTH:
            return f"Favorite fields must be strings of 1 to {MAX_FAVORITE_FIELD_LENGTH} characters"
    return None


# --- routers ---------------------------------------------------------------------------------


def api_router(world: LibreChatWorld) -> APIRouter:
    """The JWT-guarded `/api` routes, subject to the world's faults."""
    router = APIRouter(
        prefix="/api",
        route_class=upstream_route_class(world, authorize=jwt_authorizer(world)),
    )

    @router.get("/user")
    async def user() -> JSONResponse:
        """The signed-in user, whitelisted."""
        return JSONResponse(user_json(world))

    @router.get("/user/settings/favorites")
    async def get_favorites() -> JSONResponse:
        """The user's favorite models, agents and specs."""
        return JSONResponse(world.profile.get("favorites", []))

    @router.post("/user/settings/favorites")
    async def post_favorites(request: Request) -> JSONResponse:
        """Replace the favorites; answer the saved array."""
        try:
            body = await read_json_object(request)
        except ApiError:
            body = {}
        favorites = body.get("favorites")
        if not isinstance(favorites, list):
            return _message(400, "Favorites must be an array")
        if len(favorites) > MAX_FAVORITES:
            return JSONResponse(
                {
                    "code": "MAX_FAVORITES_EXCEEDED",
                    "message": f"Maximum {MAX_FAVORITES} favorites allowed",
                    "limit": MAX_FAVORITES,
                },
                status_code=400,
            )
        for favorite in favorites:
            error = _favorite_error(favorite)
            if error is not None:
                return _message(400, error)
        world.profile["favorites"] = favorites
        world.profile["updatedAt"] = js_iso(datetime.now(UTC))
        return JSONResponse(favorites)

    @router.get("/convos")
    async def convos(request: Request) -> JSONResponse:
        """One page of conversations: cursor format, or page format in legacy mode."""
        world.stats.convo_page_requests += 1
        if world.legacy_convos:
            return list_conversations_by_page(world, request)
        return list_conversations(world, request)

    @router.get("/convos/{conversation_id}")
    async def convo(conversation_id: str) -> Response:
        """One whole conversation document; 404 with an empty body when unknown."""
        found = world.find_conversation(conversation_id)
        if found is None:
            return Response(status_code=404)
        return JSONResponse(conversation_document(world, found))

    @router.get("/presets")
    async def presets() -> JSONResponse:
        """The user's presets, by order then newest update."""
        return JSONResponse([dict(p) for p in world.presets_in_order()])

    @router.post("/presets")
    async def save_preset(request: Request) -> Response:
        """Create or update a preset by `presetId` (a new id when absent); 201 with it."""
        try:
            body = parse_json(await request.body())
        except ApiError:
            body = None
        changes = preset_changes(body) if isinstance(body, dict) else None
        if changes is None or body is None:
            return _text(500, "There was an error when saving the preset")
        preset_id = body.get("presetId")
        if not _js_truthy(preset_id):
            preset_id = str(uuid.uuid4())
        preset = world.save_preset(str(preset_id), changes)
        return JSONResponse(dict(preset), status_code=201)

    @router.post("/presets/delete")
    async def delete_presets(request: Request) -> JSONResponse:
        """Delete the preset `{"presetId"}` names, or every preset without one; 201."""
        try:
            body = await read_json_object(request)
        except ApiError:
            body = {}
        preset_id = body.get("presetId")
        deleted = world.delete_presets(str(preset_id) if _js_truthy(preset_id) else None)
        return JSONResponse({"acknowledged": True, "deletedCount": deleted}, status_code=201)

    return router


_AUTH_FIELDS: dict[str, FieldSpec] = {
    "access_token_ttl_s": DURATION,
    "refresh_token_ttl_s": DURATION,
    "login_max": COUNT,
    "login_window_s": FieldSpec("a number > 0", lambda v: DURATION.check(v) and v > 0),
    "two_factor": BOOLEAN,
    "token_clock_offset_s": NUMBER,
}
_MODE_FIELDS: dict[str, FieldSpec] = {"legacy_convos": BOOLEAN}


def _auth_json(world: LibreChatWorld) -> JSONObject:
    auth = world.auth
    return {
        "access_token_ttl_s": auth.access_token_ttl_s,
        "refresh_token_ttl_s": auth.refresh_token_ttl_s,
        "login_max": auth.login_max,
        "login_window_s": auth.login_window_s,
        "two_factor": auth.two_factor,
        "token_clock_offset_s": auth.token_clock_offset_s,
        "access_tokens": len(auth.access_tokens),
        "sessions": len(auth.sessions),
    }


def _mode_json(world: LibreChatWorld) -> JSONObject:
    return {"legacy_convos": world.legacy_convos}


def native_control_router(world: LibreChatWorld) -> APIRouter:
    """The `/_sim` routes only the native flavour has: login settings, token expiry, mode."""
    router = APIRouter(prefix="/_sim", tags=["simulator control"])

    @router.get("/auth")
    async def get_auth() -> JSONResponse:
        """The login settings, and how many access tokens and sessions are live."""
        return JSONResponse(_auth_json(world))

    @router.put("/auth")
    async def put_auth(request: Request) -> JSONResponse:
        """Change login settings; a new login limit or window also restarts the limiter."""
        changes = check_fields(await read_json_object(request), _AUTH_FIELDS)
        auth = world.auth
        for key in ("access_token_ttl_s", "refresh_token_ttl_s", "login_window_s"):
            if key in changes:
                setattr(auth, key, float(changes[key]))
        if "login_max" in changes:
            auth.login_max = changes["login_max"]
        if "two_factor" in changes:
            auth.two_factor = changes["two_factor"]
        if "token_clock_offset_s" in changes:
            auth.token_clock_offset_s = float(changes["token_clock_offset_s"])
        if {"login_max", "login_window_s"} & set(changes):
            auth.login_windows.clear()
        return JSONResponse(_auth_json(world))

    @router.post("/auth/expire-access-tokens")
    async def expire_access_tokens() -> JSONResponse:
        """Make every access token issued so far expire now (401 `jwt expired`)."""
        expired = len(world.auth.access_tokens)
        world.auth.access_tokens.clear()
        return JSONResponse({"expired": expired})

    @router.post("/auth/revoke-sessions")
    async def revoke_sessions() -> JSONResponse:
        """End every login session: no refresh cookie works any more."""
        revoked = len(world.auth.sessions)
        world.auth.sessions.clear()
        return JSONResponse({"revoked": revoked})

    @router.get("/mode")
    async def get_mode() -> JSONResponse:
        """Which `GET /api/convos` format is served."""
        return JSONResponse(_mode_json(world))

    @router.put("/mode")
    async def put_mode(request: Request) -> JSONResponse:
        """`{"legacy_convos": true}` serves the ≤ 0.7.7 page format; false the cursor one."""
        changes = check_fields(await read_json_object(request), _MODE_FIELDS)
        if "legacy_convos" in changes:
            world.legacy_convos = changes["legacy_convos"]
        return JSONResponse(_mode_json(world))

    return router


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def install_catch_alls(app: FastAPI, world: LibreChatWorld) -> None:
    """Forbidden paths (403, counted), unknown `/api` paths (JSON 404), then the SPA."""

    @app.api_route("/api", methods=_ALL_METHODS, include_in_schema=False)
    @app.api_route("/api/{path:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def api_not_found(request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if any(path == p or path.startswith(p + "/") for p in FORBIDDEN_PREFIXES):
            world.stats.forbidden_calls += 1
            return _message(403, "Illegal request")
        return _message(404, "Endpoint not found")

    @app.api_route("/{path:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def single_page_app(path: str, request: Request) -> Response:
        if path == "_sim" or path.startswith("_sim/"):
            return json_error(404, "not found")
        if request.method in {"GET", "HEAD"}:
            return Response(HTML_PAGE, media_type="text/html; charset=utf-8")
        return _text(404, f"<pre>Cannot {request.method} /{path}</pre>")


def create_native_app(world: LibreChatWorld) -> FastAPI:
    """An ASGI app simulating LibreChat 0.8.7's real API over `world`."""
    app = FastAPI(
        title="Simulated LibreChat (native API)", docs_url=None, redoc_url=None, openapi_url=None
    )
    install_error_handlers(app)
    app.add_middleware(PathCounter, world=world)
    app.include_router(auth_router(world))
    app.include_router(api_router(world))
    app.include_router(
        librechat_control_router(
            world,
            lambda c: conversation_document(world, c),
            extra_records=lambda: {
                "presets": [dict(p) for p in world.presets_in_order()],
                "auth": _auth_json(world),
                "mode": _mode_json(world),
                "stats": world.stats.as_json(),
            },
        )
    )
    app.include_router(native_control_router(world))
    install_catch_alls(app, world)
    return app
