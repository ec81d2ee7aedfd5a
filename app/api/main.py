"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.routes import health, query


def create_app() -> FastAPI:
    api = FastAPI(
        title="ragline",
        version="0.1.0",
        description="Grounded, cited answers from your documents, served offline.",
    )
    api.include_router(health.router)
    api.include_router(query.router)
    return api
