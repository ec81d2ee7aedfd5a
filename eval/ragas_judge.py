"""RAGAS metrics (faithfulness, answer relevancy, context precision, context recall) with a local LLM judge.

The judge is any OpenAI-compatible endpoint (the vLLM that serves the generator by default, or a stronger model
elsewhere), reached through ``ragas.llms.llm_factory`` with an ``AsyncOpenAI`` client; answer relevancy embeds
with the local embedder already loaded by the index, so nothing is downloaded. A judge that returns output the
metric cannot parse (small models often do) yields a missing value *with the reason*: a made-up 0 would read as
"the answer is unfaithful", and a crash would lose the rest of the run.
"""

from __future__ import annotations

import asyncio
import math
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ragas.embeddings.base import BaseRagasEmbedding
from ragas.llms.base import InstructorBaseRagasLLM, InstructorTypeVar

from retrieval.protocols import Embedder

__all__ = ["METRICS", "CheckedLLM", "JudgeConfig", "JudgeOutputError", "JudgeUnavailableError", "RagasJudge"]

METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


class JudgeUnavailableError(RuntimeError):
    """The judge endpoint does not answer or does not serve the named model."""


@dataclass(frozen=True)
class JudgeConfig:
    base_url: str
    model: str
    api_key: str = "x"
    timeout_s: float = 300.0
    max_tokens: int = 1024
    """Room for the judge's JSON; the RAGAS default. Statement lists of long answers need it."""
    max_retries: int = 1
    """Instructor re-asks the judge after an unparsable answer; one retry doubles the cost of a bad sample."""
    strictness: int = 1
    """Questions answer relevancy generates per answer (RAGAS default 3); 1 keeps a CPU judge affordable."""


class LocalEmbeddings(BaseRagasEmbedding):
    """The process's own sentence-transformers embedder behind RAGAS's embedding interface."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    def embed_text(self, text: str, **kwargs: t.Any) -> list[float]:
        return self.embedder.embed([text])[0].tolist()

    async def aembed_text(self, text: str, **kwargs: t.Any) -> list[float]:
        return self.embed_text(text)

    def embed_texts(self, texts: list[str], **kwargs: t.Any) -> list[list[float]]:
        return np.asarray(self.embedder.embed(list(texts))).tolist()

    async def aembed_texts(self, texts: list[str], **kwargs: t.Any) -> list[list[float]]:
        return self.embed_texts(texts)


BINARY_FIELDS = ("verdict", "noncommittal", "attributed")
"""Fields of the RAGAS response models that must be 0 or 1; a small judge fills them with other numbers (seen:
``noncommittal=30`` copied from the answer), which the metric would silently turn into a score of 0."""


class JudgeOutputError(ValueError):
    """The judge's reply parsed as JSON but breaks the metric's contract (a binary field that is not 0 or 1)."""


def _check_binary(value: t.Any, path: str = "") -> None:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            field_value = getattr(value, name)
            if name in BINARY_FIELDS and field_value not in (0, 1):
                raise JudgeOutputError(f"{path}{name}={field_value!r} is not 0 or 1")
            _check_binary(field_value, f"{path}{name}.")
    elif isinstance(value, list):
        for item in value:
            _check_binary(item, path)


class CheckedLLM(InstructorBaseRagasLLM):
    """The judge LLM with every structured reply checked against the metric's contract before RAGAS scores it."""

    def __init__(self, llm: InstructorBaseRagasLLM) -> None:
        self.llm = llm

    def generate(self, prompt: str, response_model: type[InstructorTypeVar]) -> InstructorTypeVar:
        result = self.llm.generate(prompt, response_model)
        _check_binary(result)
        return result

    async def agenerate(self, prompt: str, response_model: type[InstructorTypeVar]) -> InstructorTypeVar:
        result = await self.llm.agenerate(prompt, response_model)
        _check_binary(result)
        return result


def _reason(exc: BaseException) -> str:
    """A short, specific reason for a failed judgement, naming unparsable output as such."""
    from instructor.exceptions import IncompleteOutputException
    from instructor.retry import InstructorRetryException
    from openai import APIConnectionError, APIStatusError, APITimeoutError
    from pydantic import ValidationError

    text = " ".join(str(exc).split())[:300]
    if isinstance(exc, InstructorRetryException | IncompleteOutputException | ValidationError | JudgeOutputError):
        return f"unparsable judge output: {text}"
    if isinstance(exc, APITimeoutError):
        return "judge timed out"
    if isinstance(exc, APIConnectionError):
        return f"judge unreachable: {text}"
    if isinstance(exc, APIStatusError):
        return f"judge refused the request (HTTP {exc.status_code}): {text}"
    return f"{type(exc).__name__}: {text}"


class RagasJudge:
    """Scores one (question, answer, contexts, reference) sample on the four RAGAS metrics.

    Each call builds its own ``AsyncOpenAI`` client and event loop: the QA runner calls from several worker
    threads at once and an async HTTP client cannot be shared between event loops.
    """

    def __init__(self, config: JudgeConfig, embedder: Embedder) -> None:
        self.config = config
        self.embeddings = LocalEmbeddings(embedder)

    def check(self) -> None:
        """Fail fast, before any question runs, when the judge endpoint is down or lacks the model."""
        from openai import OpenAI, OpenAIError

        client = OpenAI(base_url=self.config.base_url, api_key=self.config.api_key, timeout=10, max_retries=0)
        try:
            served = [m.id for m in client.models.list()]
        except OpenAIError as exc:
            raise JudgeUnavailableError(
                f"the RAGAS judge at {self.config.base_url} does not answer ({exc}); start one "
                "(`ragline llm serve`) or pass --judge-url/--judge-model, or --no-ragas"
            ) from None
        if self.config.model not in served:
            raise JudgeUnavailableError(
                f"the judge at {self.config.base_url} serves {', '.join(served) or 'nothing'}, "
                f"not {self.config.model!r}: pass --judge-model"
            )

    def _metrics(self) -> dict[str, t.Any]:
        from openai import AsyncOpenAI
        from ragas.llms import llm_factory
        from ragas.metrics.collections import AnswerRelevancy, ContextPrecision, ContextRecall, Faithfulness

        client = AsyncOpenAI(
            base_url=self.config.base_url, api_key=self.config.api_key, timeout=self.config.timeout_s, max_retries=0
        )
        llm = CheckedLLM(
            llm_factory(
                self.config.model,
                client=client,
                temperature=0.0,
                max_tokens=self.config.max_tokens,
                max_retries=self.config.max_retries,
            )
        )
        return {
            "faithfulness": Faithfulness(llm=llm),
            "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=self.embeddings, strictness=self.config.strictness),
            "context_precision": ContextPrecision(llm=llm),
            "context_recall": ContextRecall(llm=llm),
        }

    async def _score(
        self, question: str, answer: str, contexts: list[str], reference: str | None
    ) -> dict[str, dict[str, t.Any]]:
        metrics = self._metrics()
        inputs: dict[str, dict[str, t.Any] | str] = {
            "faithfulness": {"user_input": question, "response": answer, "retrieved_contexts": contexts},
            "answer_relevancy": {"user_input": question, "response": answer},
            "context_precision": {"user_input": question, "reference": reference, "retrieved_contexts": contexts},
            "context_recall": {"user_input": question, "reference": reference, "retrieved_contexts": contexts},
        }
        if not answer.strip():
            for name in ("faithfulness", "answer_relevancy"):
                inputs[name] = "the answer is empty"
        if not contexts:
            for name in ("faithfulness", "context_precision", "context_recall"):
                inputs[name] = "no context was retrieved"
        if not reference:
            for name in ("context_precision", "context_recall"):
                inputs[name] = "the question has no reference answer"

        async def one(name: str) -> dict[str, t.Any]:
            given = inputs[name]
            if isinstance(given, str):
                return {"value": None, "reason": given}
            try:
                result = await metrics[name].ascore(**given)
            except Exception as exc:
                return {"value": None, "reason": _reason(exc)}
            value = result.value
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return {"value": None, "reason": "the judge produced no usable statements or verdicts"}
            return {"value": float(value), "reason": None}

        results = await asyncio.gather(*(one(name) for name in METRICS))
        return dict(zip(METRICS, results, strict=True))

    def score(
        self, question: str, answer: str, contexts: Sequence[str], reference: str | None
    ) -> dict[str, dict[str, t.Any]]:
        """``{metric: {"value": float | None, "reason": str | None}}`` for the four metrics."""
        return asyncio.run(self._score(question, answer, list(contexts), reference))
