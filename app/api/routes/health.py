"""Liveness, readiness and metrics: ready means the vector store and the LLM service both answer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import MetricsDep, ResourcesDep
from app.vllm_server import is_ready

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is not reachable"}})
def readyz(resources: ResourcesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        resources.index.collections()
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"error: {exc}"
    llm_url = resources.settings.llm_base_url
    checks["llm"] = "ok" if is_ready(llm_url) else f"unreachable at {llm_url}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
def metrics(registry: MetricsDep) -> Response:
    """Request counts and latency by route and status, per-stage query latency, generator tokens."""
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)
