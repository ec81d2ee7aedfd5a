"""What the experiments need from the app, each as the narrowest protocol that serves: ``eval`` never imports
``app``, so the generator, the index and the pipeline come in as objects that merely have these methods."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from retrieval.types import Hit


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


class HybridSearchIndex(DenseSearch, Protocol):
    """Dense and BM25 search of a collection: the two lists hybrid retrieval fuses."""

    def search_bm25(self, collection: str, query: str, k: int, where: Mapping[str, Any] | None = None) -> list[Hit]: ...


class PipelineAnswer(Protocol):
    """What the query pipeline returns: the answer text, its citations and the trace of every stage."""

    @property
    def text(self) -> str: ...

    @property
    def citations(self) -> list[dict[str, Any]]: ...

    @property
    def trace(self) -> dict[str, Any]: ...


class AnswersQuestions(Protocol):
    """The whole query pipeline, retrieval to generation, with per-request options."""

    def run(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None = None,
        *,
        options: Mapping[str, Any] | None = None,
    ) -> PipelineAnswer: ...
