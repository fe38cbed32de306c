"""Liveness, readiness and metrics for orchestrators: they read the loop's state, never
upstreams, and need no token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from shared_state.api.deps import RuntimeDep
from shared_state.api.responses import BODY_TOO_LARGE
from shared_state.api.schemas import ErrorAnswer
from shared_state.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"], responses=BODY_TOO_LARGE)


@router.get("/healthz", summary="200 while the process runs")
async def get_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="200 once the first sync attempt finished or a snapshot was restored, until SIGTERM",
    responses={503: {"model": ErrorAnswer}},
    response_model=dict[str, str],
)
async def get_readiness(runtime: RuntimeDep) -> JSONResponse:
    if runtime.is_draining:  # never ready again: the load balancer stops sending requests
        return JSONResponse(
            {"detail": "The service is shutting down.", "code": "shutting_down"}, status_code=503
        )
    if runtime.manager.is_ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"detail": "The first sync has not finished yet.", "code": "not_ready"}, status_code=503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format): requests, upstreams, syncs, the state",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
async def get_metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE)
