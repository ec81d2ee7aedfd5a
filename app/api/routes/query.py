"""POST /v1/query: a grounded, cited answer, as JSON or as Server-Sent Events when ``stream`` is true."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import MetricsDep, PipelineDep, SettingsDep, TenantDep
from app.api.errors import error_responses, llm_error, pipeline_errors, stream_error_event
from app.api.options import request_options
from app.api.routes.sessions import session_pipeline
from app.api.streaming import ClosingStreamingResponse
from app.api.tenancy import COLLECTION_PATTERN, require_collection
from app.llm import LLMUnavailableError
from app.query.pipeline import Answer

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["query"])

FILTERS_DESCRIPTION = (
    "Metadata filter: {'region': 'EU', 'effective_date': {'$gte': '2024-01-01'}}; operators "
    "$eq $ne $in $nin $gt $gte $lt $lte $and $or; ISO dates compare as dates."
)


class QueryRequest(BaseModel):
    question: str = Field(
        min_length=1, max_length=100_000, description="Limited further by RAGLINE_MAX_QUESTION_CHARS."
    )
    collection: str = Field("sample", pattern=COLLECTION_PATTERN)
    filters: dict[str, Any] | None = Field(
        None,
        description=FILTERS_DESCRIPTION,
        examples=[
            {"region": "EU"},
            {"$and": [{"region": {"$in": ["EU", "UK"]}}, {"effective_date": {"$gte": "2024-01-01"}}]},
        ],
    )
    session_id: str | None = Field(
        None, max_length=128, description="Conversation to continue; the answer joins its memory."
    )
    options: dict[str, Any] | None = Field(
        None,
        description="Per-request pipeline settings (names as in `ragline config show`), e.g. {'context_top_k': 6}.",
        examples=[{"fusion": "rrf", "context_top_k": 6}],
    )
    stream: bool = False


class Citation(BaseModel):
    id: int
    chunk_id: str
    doc_id: str
    source: str
    title: str | None = None
    text: str


class QueryResponse(BaseModel):
    answer: str
    citations: list[Citation]
    grounded: bool = Field(
        description="False when the answer states something and no sentence is supported by a cited source "
        "(RAGLINE_UNGROUNDED_ANSWERS=flag); show `warning` with it."
    )
    unsupported_sentences: int = Field(description="Sentences of the answer that no cited source supports.")
    warning: str | None = Field(None, description="Set when `grounded` is false: what to tell the reader.")
    trace: dict[str, Any]


def public_answer(answer: Answer, logical_collection: str) -> dict[str, Any]:
    """The answer as clients see it: the collection by the tenant's own name, not the stored one."""
    body = answer.as_dict()
    body["trace"] = {**body["trace"], "collection": logical_collection}
    return body


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE events when stream is true"},
        **error_responses(400, 401, 404, 413, 422, 503, 504),
    },
)
def query(
    request: QueryRequest, pipeline: PipelineDep, settings: SettingsDep, tenant: TenantDep, metrics: MetricsDep
) -> Any:
    with pipeline_errors():
        if request.session_id is not None:  # a conversation turn, through memory: see app/api/routes/sessions.py
            pipeline, collection = session_pipeline(pipeline, tenant, request.session_id)  # type: ignore[assignment]
        else:
            collection = require_collection(pipeline.resources.index, tenant, request.collection)
        call: dict[str, Any] = {"filters": request.filters, "options": request_options(request.options, settings)}
        if request.stream:
            iterator = pipeline.stream(request.question, collection, **call)
            first = next(iterator)  # surfaces lookup and connection errors before the stream starts
            events = _sse(first, iterator, lambda answer: _finish(answer, tenant.logical(collection), metrics))
            return ClosingStreamingResponse(events, media_type="text/event-stream")
        answer = pipeline.run(request.question, collection, **call)
    return _finish(answer, tenant.logical(collection), metrics)


def _finish(answer: Answer, logical_collection: str, metrics: Any) -> dict[str, Any]:
    body = public_answer(answer, logical_collection)
    metrics.observe_trace(body["trace"], surface="query")
    return body


def _sse(
    first: str | Answer, rest: Iterator[str | Answer], finish: Callable[[Answer], dict[str, Any]]
) -> Generator[str, None, None]:
    """Delta events, then one ``answer`` event; a failure mid-stream becomes an ``error`` event (the status
    line has already been sent)."""
    try:
        for part in itertools.chain([first], rest):
            if isinstance(part, Answer):
                yield f"event: answer\ndata: {json.dumps(finish(part), ensure_ascii=False)}\n\n"
            else:
                yield f"event: delta\ndata: {json.dumps({'text': part}, ensure_ascii=False)}\n\n"
    except LLMUnavailableError as exc:
        failure = llm_error(exc)
        yield "event: error\n" + stream_error_event(failure.status, failure.message)
    except Exception:
        log.exception("query stream failed")
        yield "event: error\n" + stream_error_event(500, "internal error; the server log has the details")
