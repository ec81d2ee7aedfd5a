"""The contracts that cross package lines: what ``ingest``, ``memory``, ``retrieval`` and ``eval`` need from models.

Why here: ``retrieval`` is the lowest of the four library packages. It imports none of the others, while
``ingest`` (the index), ``memory`` (the vector store, SQLite) and ``eval`` (searchers, stages) all import it, so a
contract declared here can be used by every one of them without a cycle and without reaching up into ``app``.
``app`` holds the implementations (the vLLM client, the chat-template token counter) and hands them in; tests may
hand in any object with the same members.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from retrieval.types import Chunk, Hit

Message = dict[str, str]
"""One chat message as the OpenAI-compatible API takes it: ``{"role": ..., "content": ...}``."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors (one row per text), so cosine similarity is a dot product."""

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


class TextGenerationError(RuntimeError):
    """One prompt of a ``TextGenerator.complete`` batch failed; ``index`` is its position in the batch."""

    def __init__(self, index: int, total: int, cause: BaseException) -> None:
        super().__init__(f"prompt {index} of a batch of {total} failed: {type(cause).__name__}: {cause}")
        self.index = index
        self.total = total


class TextGenerator(Protocol):
    """A language model as batch work uses it (RAPTOR and memory summaries, synthetic queries)."""

    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        """Complete every prompt (as one user message each) and return the answers in the prompts' order.

        Implementations send the prompts concurrently, so vLLM's continuous batching pays: a level of a summary
        tree costs about one generation's latency, not one per prompt. If any prompt fails, the call raises
        ``TextGenerationError`` naming that prompt's index.
        """
        ...


class TokenCounter(Protocol):
    """Token counts with the generator's own tokenizer: a budget must count what the model will be sent.

    The prompt budget and conversation memory are handed the same counter, so the history tokens memory keeps
    under its limit are the tokens the prompt budget charges for that history.
    """

    def count(self, text: str) -> int:
        """Tokens of plain ``text``, without special tokens."""
        ...

    def count_messages(self, messages: Sequence[Message], *, generation_prompt: bool = False) -> int:
        """Tokens of ``messages`` exactly as the chat template renders them, role markers included; with
        ``generation_prompt`` also the assistant header that opens the answer."""
        ...

    def count_history(self, messages: Sequence[Message]) -> int:
        """Tokens ``messages`` add to a prompt that already opens with a system message (the budget's H term)."""
        ...


class ChatCompletion(Protocol):
    """A finished chat request: the text and the prompt's token count as the server measured it."""

    @property
    def text(self) -> str: ...

    @property
    def prompt_tokens(self) -> int: ...


class ChatModel(Protocol):
    """A chat generator (vLLM's OpenAI-compatible API in production); ``model`` keys stored answers."""

    @property
    def model(self) -> str: ...

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0) -> ChatCompletion: ...


class StreamingChatModel(ChatModel, Protocol):
    """A chat generator that also streams, token by token: what time to first token is measured on."""

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0) -> Iterator[str]: ...


class DenseSearch(Protocol):
    """Dense search of a collection, filters applied inside the search."""

    def search_dense(
        self, collection: str, query: str, k: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]: ...


class PipelineAnswer(Protocol):
    """What the query pipeline returns: the answer text, its citations and the trace of every stage."""

    @property
    def text(self) -> str: ...

    @property
    def citations(self) -> list[dict[str, Any]]: ...

    @property
    def trace(self) -> dict[str, Any]: ...

    @property
    def evidence(self) -> list[Chunk]: ...


class AnswersQuestions(Protocol):
    """The query pipeline (``app.query.pipeline.Pipeline``) as conversation memory and the memory bench drive it.

    ``history`` is the H term of the prompt budget (memory's messages); ``search_query`` is what retrieval searches
    with when it differs from the question shown to the model (a follow-up rewritten to stand alone).
    """

    def run(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None = None,
        *,
        history: list[Message] | None = None,
        search_query: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> PipelineAnswer: ...

    def stream(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None = None,
        *,
        history: list[Message] | None = None,
        search_query: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]: ...
