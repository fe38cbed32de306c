"""`diagnose(settings)`: build each configured upstream's client as `serve` does, run its
checks (both upstreams at once), and gather one redacted `Report`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from urllib.parse import urlsplit

import httpx
from pydantic import AnyHttpUrl, SecretStr

from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.app import upstream_client
from shared_state.config import ApiFlavour, Settings
from shared_state.doctor.anythingllm import check_anythingllm
from shared_state.doctor.librechat import check_librechat
from shared_state.doctor.report import Check, Report
from shared_state.doctor.store import check_store
from shared_state.doctor.target import Target

ONCE = RetryPolicy(attempts=1)
"""The doctor reports a failure as it happened: no second try."""

Checks = Callable[[Target, Settings, RetryPolicy], Awaitable[None]]


async def diagnose(settings: Settings) -> Report:
    """Every check of every upstream; the report never holds a configured secret."""
    secrets = [
        s.get_secret_value()
        for s in (
            settings.anythingllm_api_key,
            settings.anythingllm_password,
            settings.librechat_token,
            settings.librechat_password,
            settings.api_token,
            settings.redis_url,
        )
        if s is not None
    ]
    # A base URL may carry user:password; it is never shown, and blanked all the same.
    secrets += [
        url.password
        for url in (settings.anythingllm_base_url, settings.librechat_base_url)
        if url is not None and url.password
    ]
    if settings.redis_url is not None:
        secrets += [p for p in [urlsplit(settings.redis_url.get_secret_value()).password] if p]
    async with AsyncExitStack() as stack:
        runs = [
            _one(
                stack,
                settings,
                "anythingllm",
                "AnythingLLM",
                settings.anythingllm_base_url,
                settings.anythingllm_api,
                settings.anythingllm_api_key,
                3001,
                check_anythingllm,
            ),
            _one(
                stack,
                settings,
                "librechat",
                "LibreChat",
                settings.librechat_base_url,
                settings.librechat_api,
                settings.librechat_token if settings.librechat_api == "bizzy" else None,
                3080,
                check_librechat,
            ),
        ]
        results, store = await asyncio.gather(asyncio.gather(*runs), check_store(settings))
    checks = [check for targets in results for check in targets[0]]
    checks += store
    found = [secret for targets in results for secret in targets[1]]
    if settings.anythingllm_base_url is None and settings.librechat_base_url is None:
        # Most often a .env that was not found (another working directory) or not exported.
        checks.append(
            Check(
                "service",
                "configured",
                False,
                "no upstream is configured: the sidecar would serve an empty state",
                "set ANYTHINGLLM_BASE_URL and/or LIBRECHAT_BASE_URL (in the environment or "
                "in .env in the working directory)",
            )
        )
    return Report(tuple(checks)).redacted([*secrets, *found])


async def _one(
    stack: AsyncExitStack,
    settings: Settings,
    upstream: str,
    product: str,
    base_url: AnyHttpUrl | None,
    flavour: ApiFlavour,
    secret: SecretStr | None,
    default_port: int,
    checks: Checks,
) -> tuple[list[Check], list[str]]:
    prefix = upstream.upper()
    if base_url is None:
        line = Check(upstream, "disabled", True, f"{prefix}_BASE_URL is not set: not synced")
        return [line], []
    client = upstream_client(str(base_url), secret, settings)
    stack.push_async_callback(client.aclose)
    target = Target(
        upstream=upstream,
        product=product,
        prefix=prefix,
        flavour=flavour,
        base_url=httpx.URL(str(base_url)),
        timeout_s=settings.request_timeout_s,
        default_port=default_port,
        client=client,
        api=JsonApi(client, source=upstream),
    )
    await checks(target, settings, ONCE)
    return target.checks, target.secrets
