"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from app.api.errors import install_error_handlers, reject_unknown_query_parameters
from app.api.limits import BodySizeLimit
from app.api.metrics import MetricsMiddleware
from app.api.routes import documents, health, openai_compat, query, sessions
from app.api.state import ServiceState
from app.resources import Resources
from app.settings import get_settings

log = logging.getLogger("ragline.api")
UPLOAD_PATHS = ("/v1/documents",)


def create_app(resources: Resources | None = None) -> FastAPI:
    """The API over ``resources`` (default: built from the process settings on first use)."""
    settings = resources.settings if resources is not None else get_settings()
    state = ServiceState(settings, resources)
    log.log(logging.WARNING if state.keys.open else logging.INFO, "ragline API: %s", state.keys.describe())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.shutdown()

    api = FastAPI(
        title="ragline",
        version="0.1.0",
        description="Grounded, cited answers from your documents, served offline.",
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    api.state.ragline = state
    if state.keys.open:
        _document_open_mode(api)
    install_error_handlers(api)
    api.include_router(health.router)
    api.include_router(query.router)
    api.include_router(sessions.router)
    api.include_router(documents.router)
    api.include_router(openai_compat.router)
    api.add_middleware(
        BodySizeLimit,
        request_bytes=int(settings.max_request_kb * 1024),
        upload_bytes=int(settings.max_upload_mb * 1024 * 1024),
        upload_paths=UPLOAD_PATHS,
    )
    api.add_middleware(MetricsMiddleware, metrics=state.metrics, router_app=api)
    return api


def _document_open_mode(api: FastAPI) -> None:
    """Without API keys no route asks for one, and the schema (the contract clients are built from) says so."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.pop("security", None)
            schema.get("components", {}).pop("securitySchemes", None)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
