"""OpenAI-compatible chat completions over RAG: any OpenAI client can ask a collection.

``model`` names the collection, ``GET /v1/models`` lists the caller's collections. The last message must be the
user's question; earlier user/assistant turns are passed as conversation history; system messages are ignored
because the RAG system prompt governs grounding and citations. ``choices[0].message.content`` is the plain answer
text with its ``[n]`` markers, and the sources are in an extra top-level ``citations`` field (in the final chunk
when streaming), with ``grounded`` and ``warning`` beside it, which standard clients ignore and RAG-aware clients
read. ``filters`` and ``options`` are
accepted as extra body fields (``extra_body`` in the openai client).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Generator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import MetricsDep, PipelineDep, ResourcesDep, SettingsDep, TenantDep
from app.api.errors import ApiError, error_responses, llm_error, pipeline_errors, stream_error_event
from app.api.metrics import Metrics
from app.api.options import request_options
from app.api.routes.query import FILTERS_DESCRIPTION, Citation, public_answer
from app.api.streaming import ClosingStreamingResponse
from app.api.tenancy import COLLECTION_PATTERN, require_collection
from app.llm import LLMUnavailableError
from app.query.pipeline import Answer
from app.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(pattern=r"\S")] | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    # Standard OpenAI parameters the service does not act on (top_p, seed, user, ...) are accepted and ignored.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(pattern=COLLECTION_PATTERN, description="The collection to answer from.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    n: int = Field(1, ge=1, le=1, description="Only one choice is generated.")
    filters: dict[str, Any] | None = Field(None, description=FILTERS_DESCRIPTION)
    options: dict[str, Any] | None = Field(None, description="Per-request pipeline settings, as in /v1/query.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[Citation]
    grounded: bool
    warning: str | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


def _question_and_history(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    last = messages[-1]
    if last.role != "user" or not last.text().strip():
        raise ApiError(422, "the last message must be the user's question (role 'user', non-empty content)")
    history = [{"role": m.role, "content": m.text()} for m in messages[:-1] if m.role in ("user", "assistant")]
    return last.text(), history


def _options(request: ChatCompletionRequest, settings: Settings) -> dict[str, Any] | None:
    options = dict(request.options or {})
    if request.temperature is not None:
        options["temperature"] = request.temperature
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        options["max_answer_tokens"] = max_tokens
    return request_options(options, settings)


def _usage(trace: dict[str, Any]) -> dict[str, int]:
    generate = next((s for s in trace.get("stages", []) if s.get("stage") == "generate"), {})
    prompt, completion = int(generate.get("prompt_tokens", 0)), int(generate.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "A completion, or chunks when stream is true"},
        **error_responses(400, 401, 404, 413, 422, 503, 504),
    },
)
def chat_completions(
    request: ChatCompletionRequest, pipeline: PipelineDep, settings: SettingsDep, tenant: TenantDep, metrics: MetricsDep
) -> Any:
    question, history = _question_and_history(request.messages)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    with pipeline_errors():
        collection = require_collection(pipeline.resources.index, tenant, request.model)
        call: dict[str, Any] = {"filters": request.filters, "history": history, "options": _options(request, settings)}
        if request.stream:
            iterator = pipeline.stream(question, collection, **call)
            first = next(iterator)  # lookup, validation and connection errors become statuses, not broken streams
            chunks = _chunks(first, iterator, completion_id, created, request.model, metrics)
            return ClosingStreamingResponse(chunks, media_type="text/event-stream")
        answer = pipeline.run(question, collection, **call)
    body = public_answer(answer, request.model)
    metrics.observe_trace(body["trace"], surface="openai")
    return {
        "id": completion_id,
        "created": created,
        "model": request.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": body["answer"]}, "finish_reason": "stop"}],
        "usage": _usage(body["trace"]),
        "citations": body["citations"],
        "grounded": body["grounded"],
        "warning": body["warning"],
    }


def _chunks(
    first: str | Answer, rest: Iterator[str | Answer], completion_id: str, created: int, model: str, metrics: Metrics
) -> Generator[str, None, None]:
    """OpenAI ``chat.completion.chunk`` events: the role, content deltas, a final chunk with the finish reason
    and the citations, then ``[DONE]``."""

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    try:
        part: str | Answer = first
        while True:
            if isinstance(part, Answer):
                body = public_answer(part, model)
                metrics.observe_trace(body["trace"], surface="openai")
                yield event({}, "stop", citations=body["citations"], grounded=body["grounded"], warning=body["warning"])
                break
            yield event({"content": part})
            part = next(rest)
    except LLMUnavailableError as exc:
        failure = llm_error(exc)
        yield stream_error_event(failure.status, failure.message)
    except Exception:
        log.exception("chat completion stream failed")
        yield stream_error_event(500, "internal error; the server log has the details")
    yield "data: [DONE]\n\n"


@router.get("/models", response_model=ModelList, responses=error_responses(401))
def models(resources: ResourcesDep, tenant: TenantDep) -> dict[str, Any]:
    """The caller's collections, each usable as ``model`` in chat completions."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": tenant.label}
            for name in tenant.visible(resources.index.collections())
        ],
    }
