"""POST /v1/query: a grounded, cited answer, as JSON or as Server-Sent Events when ``stream`` is true."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.deps import PipelineDep, ResourcesDep
from app.llm import LLMUnavailableError
from app.pipeline import Answer

router = APIRouter(prefix="/v1", tags=["query"])


class QueryRequest(BaseModel):
    question: str = Field(
        min_length=1, max_length=100_000, description="Limited further by RAGLINE_MAX_QUESTION_CHARS."
    )
    collection: str = Field("sample", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    filters: dict[str, Any] | None = Field(
        None,
        description="Metadata filter: {'region': 'EU', 'effective_date': {'$gte': '2024-01-01'}}; operators "
        "$eq $ne $in $nin $gt $gte $lt $lte $and $or; ISO dates compare as dates.",
        examples=[
            {"region": "EU"},
            {"$and": [{"region": {"$in": ["EU", "UK"]}}, {"effective_date": {"$gte": "2024-01-01"}}]},
        ],
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
    trace: dict[str, Any]


@router.post("/query", response_model=QueryResponse, responses={404: {}, 422: {}, 503: {}})
def query(request: QueryRequest, pipeline: PipelineDep) -> Any:
    try:
        if request.stream:
            iterator = pipeline.stream(request.question, request.collection, request.filters)
            first = next(iterator)  # surfaces lookup and connection errors before the stream starts
            return StreamingResponse(_sse(first, iterator), media_type="text/event-stream")
        return pipeline.run(request.question, request.collection, request.filters).as_dict()
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except LLMUnavailableError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None


def _sse(first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[str]:
    for part in itertools.chain([first], rest):
        if isinstance(part, Answer):
            yield f"event: answer\ndata: {json.dumps(part.as_dict(), ensure_ascii=False)}\n\n"
        else:
            yield f"event: delta\ndata: {json.dumps({'text': part}, ensure_ascii=False)}\n\n"


@router.get("/collections")
def collections(resources: ResourcesDep) -> dict[str, list[str]]:
    return {"collections": resources.index.collections()}
