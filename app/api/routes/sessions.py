"""Conversation sessions: create, list, export, delete; and the adapter ``POST /v1/query`` uses for ``session_id``.

Sessions are scoped by tenant: another tenant's session id answers 404, exactly like an unknown one. Deleting a
session removes its turns, summaries and memory items from SQLite and their vectors from Chroma.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from app.api.deps import PipelineDep, TenantDep
from app.api.errors import ApiError, error_responses, pipeline_errors
from app.api.tenancy import COLLECTION_PATTERN, Tenant, require_collection
from app.memory_wiring import build_memory_service
from app.query.pipeline import Pipeline
from memory.errors import SessionBusyError
from memory.service import MemoryService

router = APIRouter(prefix="/v1", tags=["sessions"])
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

_services: dict[int, MemoryService] = {}
_services_lock = threading.Lock()


def memory_service(pipeline: Pipeline) -> MemoryService:
    """One service per pipeline (so per process and data dir): it holds the SQLite connection and tokenizer."""
    with _services_lock:
        service = _services.get(id(pipeline))
        if service is None or service.pipeline is not pipeline:
            with pipeline_errors():
                service = _services[id(pipeline)] = build_memory_service(pipeline.resources, pipeline)
        return service


def get_memory(pipeline: PipelineDep) -> MemoryService:
    return memory_service(pipeline)


MemoryDep = Annotated[MemoryService, Depends(get_memory)]


class SessionCreate(BaseModel):
    session_id: str | None = Field(None, pattern=NAME_PATTERN, description="Your id for it; default: a new uuid.")
    user: str = Field("default", pattern=NAME_PATTERN, description="Whose persistent memory the session uses.")
    collection: str = Field("sample", pattern=COLLECTION_PATTERN, description="Collection the session searches.")


def _busy(exc: SessionBusyError) -> ApiError:
    return ApiError(409, str(exc))


@router.post("/sessions", status_code=201, responses=error_responses(400, 401, 404, 409, 413, 422))
def create_session(body: SessionCreate, memory: MemoryDep, pipeline: PipelineDep, tenant: TenantDep) -> Any:
    with pipeline_errors():
        collection = require_collection(pipeline.resources.index, tenant, body.collection)
        if body.session_id and memory.store.exists(body.session_id, tenant=tenant.name or ""):
            raise ApiError(409, f"session {body.session_id!r} already exists")
        created = memory.create_session(body.session_id, user=body.user, collection=collection, tenant=tenant.name)
        return created.as_dict()


@router.get("/sessions", responses=error_responses(401))
def list_sessions(
    memory: MemoryDep, tenant: TenantDep, user: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None
) -> dict[str, list[Any]]:
    return {"sessions": [s.as_dict() for s in memory.list_sessions(tenant=tenant.name, user=user)]}


@router.get("/sessions/{session_id}", responses=error_responses(401, 404))
def export_session(session_id: str, memory: MemoryDep, tenant: TenantDep) -> dict[str, Any]:
    """The session with every turn (and its tier), all summary versions and its memory items."""
    with pipeline_errors():
        return memory.export(session_id, tenant=tenant.name)


@router.delete("/sessions/{session_id}", status_code=204, responses=error_responses(401, 404, 409))
def delete_session(session_id: str, memory: MemoryDep, tenant: TenantDep) -> Response:
    with pipeline_errors():
        try:
            memory.delete_session(session_id, tenant=tenant.name)
        except SessionBusyError as exc:
            raise _busy(exc) from None
    return Response(status_code=204)


class SessionPipeline:
    """Looks like the pipeline to ``POST /v1/query`` but answers a turn of a session (its own collection)."""

    def __init__(self, memory: MemoryService, tenant: Tenant, session_id: str) -> None:
        self.memory, self.tenant, self.session_id = memory, tenant.name, session_id
        self.resources = memory.pipeline.resources  # type: ignore[attr-defined]

    def run(self, question: str, collection: str, *, filters: Mapping[str, Any] | None, options: Any) -> Any:
        try:
            return self.memory.ask(self.session_id, question, tenant=self.tenant, filters=filters, options=options)
        except SessionBusyError as exc:
            raise _busy(exc) from None

    def stream(
        self, question: str, collection: str, *, filters: Mapping[str, Any] | None, options: Any
    ) -> Iterator[Any]:
        try:
            yield from self.memory.stream(
                self.session_id, question, tenant=self.tenant, filters=filters, options=options
            )
        except SessionBusyError as exc:
            raise _busy(exc) from None


def session_pipeline(pipeline: Pipeline, tenant: Tenant, session_id: str) -> tuple[SessionPipeline, str]:
    """The adapter for a ``session_id`` query and the session's collection; unknown session → 404."""
    memory = memory_service(pipeline)
    session = memory.session(session_id, tenant=tenant.name)
    # the session's collection may have been emptied since: say so naming only the tenant's own collections
    require_collection(pipeline.resources.index, tenant, tenant.logical(session.collection))
    return SessionPipeline(memory, tenant, session_id), session.collection
