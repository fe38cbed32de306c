"""The doctor's checks of AnythingLLM, either flavour: the developer API key (native:
`GET /api/v1/auth`; bizzy: `GET /api/me`), the optional user login, the reads, what
writes need, and the clock."""

from __future__ import annotations

import time
from collections.abc import Mapping

from shared_state.adapters.anythingllm_auth import AnythingLLMLogin
from shared_state.adapters.anythingllm_bizzy import AnythingLLMBizzy
from shared_state.adapters.anythingllm_native import AnythingLLMNative
from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.config import ApiFlavour, Settings
from shared_state.doctor.answers import Answer
from shared_state.doctor.reads import read_sections
from shared_state.doctor.target import Recogniser, Target, identify
from shared_state.errors import UpstreamAuthError, UpstreamError

KEY_FIX = (
    "set ANYTHINGLLM_API_KEY to a developer API key that AnythingLLM lists under "
    "Settings → Tools → Developer API (or generate a new one there)"
)


def _is_native(answer: Answer) -> bool:
    body = answer.body
    return (
        answer.kind == "json"
        and isinstance(body, dict)
        and (
            (answer.status == 200 and body.get("authenticated") is True)
            or (answer.status == 403 and "error" in body)
        )
    )


def _is_bizzy(answer: Answer) -> bool:
    return answer.kind == "json" and answer.status in (200, 401, 403)


PROBES: Mapping[ApiFlavour, tuple[str, Recogniser]] = {
    "native": ("/api/v1/auth", _is_native),
    "bizzy": ("/api/me", _is_bizzy),
}


async def check_anythingllm(target: Target, settings: Settings, retry: RetryPolicy) -> None:
    """Every AnythingLLM check, appended to `target.checks` in order."""
    answer = await identify(target, PROBES)
    if answer is None:
        return
    if settings.anythingllm_api_key is None:
        target.failed(
            "credentials",
            "ANYTHINGLLM_API_KEY is not set: AnythingLLM answers 403 to every request",
            KEY_FIX,
        )
        return
    if answer.status != 200:
        target.failed(
            "credentials",
            f"AnythingLLM refused the developer API key ({answer.describe()})",
            KEY_FIX,
        )
        return
    target.passed("credentials", f"AnythingLLM accepted the API key (GET {answer.path})")
    if target.flavour == "bizzy":
        target.passed("version", "not told by the bizzy API")
        await read_sections(
            target,
            AnythingLLMBizzy(_api(target, retry)),
            ("user", "settings", "workspaces"),
        )
        target.passed(
            "write access",
            "cannot check without writing (POST /api/system/update); the key reads settings",
        )
        _clock_from_date(target)
        return
    login, token, token_at = await _log_in(target, settings)
    await _version(target)
    user_api = None
    if login is not None:
        user_api = JsonApi(target.client, source="anythingllm", retry=retry, credentials=login)
    sections = ("user", "settings", "workspaces") if user_api else ("settings", "workspaces")
    await read_sections(target, AnythingLLMNative(_api(target, retry), user_api=user_api), sections)
    target.passed(
        "write access",
        "writes go through POST /api/v1/system/update-env with the developer API key, "
        "which AnythingLLM binds to no user or role: the key accepted above may write "
        "(not tried: that cannot be checked without writing)",
    )
    if token is None or not target.clock_from_token(token, token_at, "session JWT"):
        _clock_from_date(target)


def _api(target: Target, retry: RetryPolicy) -> JsonApi:
    return JsonApi(target.client, source="anythingllm", retry=retry)


def _clock_from_date(target: Target) -> None:
    first = target.first
    target.clock_from_date(first.date if first else None, first.received_at if first else 0)


async def _log_in(
    target: Target, settings: Settings
) -> tuple[AnythingLLMLogin | None, str | None, float]:
    """The user login, when ANYTHINGLLM_USERNAME is set, as the sync does it (once)."""
    username, password = settings.anythingllm_username, settings.anythingllm_password
    if username is None or password is None:
        return None, None, 0.0
    login = AnythingLLMLogin(
        JsonApi(target.client, source="anythingllm"),
        username=username,
        password=password.get_secret_value(),
    )
    try:
        headers = await login.headers()
    except UpstreamAuthError as exc:
        multi_user = await _is_multi_user(target)
        if multi_user is False:
            target.failed(
                "credentials",
                f"the login of ANYTHINGLLM_USERNAME {username!r} was refused: this "
                "AnythingLLM is in single-user mode, which has no users",
                "unset ANYTHINGLLM_USERNAME and ANYTHINGLLM_PASSWORD",
            )
        else:
            target.failed(
                "credentials",
                f"AnythingLLM refused the login of ANYTHINGLLM_USERNAME {username!r} "
                f"({exc.reason})",
                "set ANYTHINGLLM_USERNAME and ANYTHINGLLM_PASSWORD to an AnythingLLM "
                "user's name and password",
            )
        return None, None, 0.0
    except UpstreamError as exc:
        target.failed(
            "credentials",
            f"the login of ANYTHINGLLM_USERNAME failed: {exc.reason}",
            "look at AnythingLLM's log for POST /api/request-token",
        )
        return None, None, 0.0
    token = headers["Authorization"].removeprefix("Bearer ")
    target.secrets.append(token)
    target.passed(
        "credentials",
        f"AnythingLLM accepted the login of {username!r} (POST /api/request-token)",
    )
    return login, token, time.time()


async def _is_multi_user(target: Target) -> bool | None:
    try:
        reply = await target.request("GET", "/api/v1/admin/is-multi-user-mode")
    except UpstreamError:
        return None
    body = reply.answer.body
    if isinstance(body, dict) and isinstance(body.get("isMultiUser"), bool):
        return bool(body["isMultiUser"])
    return None


async def _version(target: Target) -> None:
    """AnythingLLM tells no version over its API; `LLMModel` (1.8.2+) dates it a little."""
    try:
        reply = await target.request("GET", "/api/v1/system")
    except UpstreamError:
        target.passed("version", "not told by AnythingLLM's API")
        return
    body = reply.answer.body
    settings = body.get("settings") if isinstance(body, dict) else None
    if isinstance(settings, dict) and "LLMModel" in settings:
        target.passed(
            "version",
            "not told by AnythingLLM's API; GET /api/v1/system has LLMModel: 1.8.2 or later",
        )
    else:
        target.passed("version", "not told by AnythingLLM's API")
