"""The composition root: builds every part from `Settings`, wires them, and closes them
in reverse order. Nothing is built at import time.

`create_app()` gives the standalone FastAPI app; `running()` gives the parts to a host
application that mounts `shared_state.api.router` itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import SecretStr

from shared_state import __version__
from shared_state.adapters.anythingllm_auth import AnythingLLMLogin
from shared_state.adapters.anythingllm_bizzy import AnythingLLMBizzy
from shared_state.adapters.anythingllm_native import AnythingLLMNative
from shared_state.adapters.base import Upstream
from shared_state.adapters.http import Credentials, JsonApi, RetryPolicy, UpstreamRecorder
from shared_state.adapters.librechat_auth import LibreChatSession, StaticToken
from shared_state.adapters.librechat_bizzy import LibreChatBizzy
from shared_state.adapters.librechat_native import LibreChatNative
from shared_state.adapters.transport import upstream_transport
from shared_state.api import SharedStateEdge, add_exception_handlers, health_router, router
from shared_state.api.docs import install_offline_docs
from shared_state.api.events import router as events_router
from shared_state.api.static import static_router
from shared_state.config import Settings
from shared_state.metrics import Metrics
from shared_state.service.operations import LocalOperations
from shared_state.service.propagation import Propagator
from shared_state.service.runtime import Runtime
from shared_state.service.scheduler import start_sync_schedule, stop_sync_schedule
from shared_state.service.sync import Synchronizer, UpstreamLock
from shared_state.service.writes import SettingsWriter
from shared_state.state.bus import EventBus
from shared_state.state.changelog import InMemoryChangeLog
from shared_state.state.manager import StateManager
from shared_state.state.snapshot import SnapshotStore

USER_AGENT = f"shared-state/{__version__}"

CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-ID",
)
"""The request headers a page on an allowed origin may send (contract §8)."""
CORS_EXPOSE_HEADERS = ("ETag", "X-Request-ID")
"""The answer headers its script may read."""

log = logging.getLogger(__name__)


def build_upstreams(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    retry: RetryPolicy | None = None,
    recorder: UpstreamRecorder | None = None,
) -> list[Upstream]:
    """One adapter per configured upstream, of its configured API flavour, each with its
    own long-lived HTTP client (closed by `stack`); `recorder` hears of every request."""
    upstreams: list[Upstream] = []
    if settings.anythingllm_base_url is not None:
        client = _client(str(settings.anythingllm_base_url), settings.anythingllm_api_key, settings)
        stack.push_async_callback(client.aclose)
        upstreams.append(_anythingllm(settings, client, retry, recorder))
    if settings.librechat_base_url is not None:
        token = settings.librechat_token if settings.librechat_api == "bizzy" else None
        client = _client(str(settings.librechat_base_url), token, settings)
        stack.push_async_callback(client.aclose)
        upstreams.append(_librechat(settings, client, retry, recorder))
    return upstreams


def _anythingllm(
    settings: Settings,
    client: httpx.AsyncClient,
    retry: RetryPolicy | None,
    recorder: UpstreamRecorder | None,
) -> Upstream:
    api = JsonApi(client, source="anythingllm", retry=retry, recorder=recorder)
    if settings.anythingllm_api == "bizzy":
        return AnythingLLMBizzy(api)
    user_api = None
    if settings.anythingllm_username and settings.anythingllm_password:
        login = AnythingLLMLogin(
            JsonApi(client, source="anythingllm", recorder=recorder),
            username=settings.anythingllm_username,
            password=settings.anythingllm_password.get_secret_value(),
        )
        user_api = JsonApi(
            client, source="anythingllm", retry=retry, credentials=login, recorder=recorder
        )
    return AnythingLLMNative(api, user_api=user_api)


def _librechat(
    settings: Settings,
    client: httpx.AsyncClient,
    retry: RetryPolicy | None,
    recorder: UpstreamRecorder | None,
) -> Upstream:
    if settings.librechat_api == "bizzy":
        return LibreChatBizzy(JsonApi(client, source="librechat", retry=retry, recorder=recorder))
    credentials: Credentials
    if settings.librechat_email and settings.librechat_password:
        credentials = LibreChatSession(
            JsonApi(client, source="librechat", recorder=recorder),
            email=settings.librechat_email,
            password=settings.librechat_password.get_secret_value(),
            budget_path=login_budget_path(settings.snapshot_path),
        )
    elif settings.librechat_token is not None:
        credentials = StaticToken(settings.librechat_token.get_secret_value())
    else:  # Settings refuses this combination; kept for a Settings built without checks
        raise ValueError("LibreChat's native API needs LIBRECHAT_EMAIL/PASSWORD or a token")
    return LibreChatNative(
        JsonApi(
            client, source="librechat", retry=retry, credentials=credentials, recorder=recorder
        ),
        max_conversations=settings.librechat_max_conversations,
        full_scan_every=settings.librechat_full_scan_every,
        endpoint_providers=settings.librechat_endpoint_providers,
    )


def login_budget_path(snapshot_path: Path | None) -> Path | None:
    """Where LibreChat's login budget is kept: beside the snapshot file, when there is one."""
    if snapshot_path is None:
        return None
    return snapshot_path.with_name(f"{snapshot_path.name}.librechat-logins")


def upstream_client(
    base_url: str, secret: SecretStr | None, settings: Settings
) -> httpx.AsyncClient:
    """The client `serve` gives an upstream (below), for `shared-state doctor`'s probes."""
    return _client(base_url, secret, settings)


def _client(base_url: str, secret: SecretStr | None, settings: Settings) -> httpx.AsyncClient:
    """One upstream's long-lived client. Its transport keeps idle connections for less
    time than the upstreams do (Node and uvicorn close theirs after 5 s) and sends a read
    that met a connection the upstream had just closed once more, on another one: either
    alone leaves a gap (an upstream with a shorter keep-alive; a write), together a
    healthy steady state never retries, whatever the sync interval. (With a transport of
    its own, httpx ignores HTTP(S)_PROXY: upstreams are the sidecar's neighbours.)"""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(settings.request_timeout_s),
        follow_redirects=False,
        transport=upstream_transport(),
    )


@asynccontextmanager
async def running(
    settings: Settings,
    upstreams: Sequence[Upstream] | None = None,
    *,
    schedule: bool = True,
    restore: bool = True,
    metrics: Metrics | None = None,
) -> AsyncIterator[Runtime]:
    """Build, start and (on exit) stop the service's parts; `metrics` (a new registry
    when not given) records into `runtime.metrics`."""
    metrics = metrics or Metrics()
    async with AsyncExitStack() as stack:
        if upstreams is None:
            upstreams = build_upstreams(settings, stack, recorder=metrics.record_upstream)
        store = SnapshotStore(settings.snapshot_path) if settings.snapshot_path else None
        manager = StateManager(
            configured=[u.name for u in upstreams],
            bus=EventBus(),
            store=store,
            changelog=InMemoryChangeLog(settings.replay_versions),
        )
        stack.callback(manager.close)
        metrics.watch(manager)
        replica = None
        upstream_lock: UpstreamLock = asyncio.Lock()
        if settings.redis_url is not None:
            # Imported here: without Redis the service never loads redis-py.
            from shared_state.store.replica import Replica

            # A replica restores the snapshot file only as a holder that finds Redis
            # empty: a follower serves the shared state, never a version of its own.
            replica = Replica(settings, manager, stack, schedule=schedule, restore=restore)
            upstream_lock = replica.upstream_lock
        elif restore:
            manager.restore()
        propagator = Propagator(
            upstreams,
            manager,
            groups=settings.propagate,
            policy=settings.conflict_policy,
            metrics=metrics,
        )
        synchronizer = Synchronizer(
            upstreams,
            manager,
            upstream_lock=upstream_lock,
            deadline_s=settings.sync_timeout_s,
            interval_s=settings.sync_interval_s,
            observe_duration_s=metrics.sync_duration.observe,
            after_sync=propagator.after_sync,
        )
        stack.push_async_callback(synchronizer.aclose)
        writer = SettingsWriter(
            upstreams, manager, upstream_lock=upstream_lock, on_written=propagator.written
        )
        local = LocalOperations(synchronizer, writer, manager)
        scheduler = None
        runtime_parts: dict[str, Any] = {}
        if replica is not None:
            from shared_state.store.replica import ReplicatedOperations

            await replica.start(synchronizer, local)
            stack.push_async_callback(replica.stop)  # first out: the lease goes back
            runtime_parts = {
                "operations": ReplicatedOperations(replica, local, manager),
                "replica": replica,
                "idempotency": replica.idempotency,
            }
        elif schedule:
            scheduler = start_sync_schedule(synchronizer, settings.sync_interval_s)
            stack.callback(stop_sync_schedule, scheduler)
        runtime = Runtime(
            settings=settings,
            manager=manager,
            synchronizer=synchronizer,
            writer=writer,
            metrics=metrics,
            scheduler=scheduler,
            propagator=propagator,
            **runtime_parts,
        )
        metrics.watch_store(runtime.store_status)
        yield runtime


def create_app(
    settings: Settings | None = None, *, upstreams: Sequence[Upstream] | None = None
) -> FastAPI:
    """The standalone service: the API, health checks, CORS, and the sync in its lifespan.

    In front of the router sits `SharedStateEdge` (Host check, token, GET fast path, body
    limit). `redirect_slashes` is off: Starlette would build the redirect's `Location`
    from the request's untrusted `Host`; `/api/shared-state/` is a 404 instead.
    """
    settings = settings or Settings()
    metrics = Metrics()  # this app's own registry, shared by the edge and the runtime

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings, upstreams, metrics=metrics) as runtime:
            app.state.shared_state = runtime
            yield

    app = FastAPI(
        title="shared-state",
        version=__version__,
        summary="One merged view of AnythingLLM and LibreChat state, for frontends.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.include_router(router)
    app.include_router(events_router)
    app.include_router(health_router)
    app.include_router(static_router())  # the JS client's files and the dashboard at /
    add_exception_handlers(app)
    install_offline_docs(app)  # /docs and /redoc without a CDN
    # inside CORS, added below
    app.add_middleware(SharedStateEdge, settings=settings, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=list(CORS_ALLOW_HEADERS),
            expose_headers=list(CORS_EXPOSE_HEADERS),
        )
    _warn_if_open(settings)
    return app


def _warn_if_open(settings: Settings) -> None:
    """Say so at start-up when anyone on the network can read and write without a token."""
    if settings.api_token is None and not is_loopback(settings.host):
        log.warning(
            "SHARED_STATE_API_TOKEN is not set and the service listens on %s, beyond "
            "loopback: anyone who can reach it can read the state and change settings",
            settings.host,
        )


def is_loopback(host: str) -> bool:
    """Whether `host` (a listen address) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
