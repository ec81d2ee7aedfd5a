"""The generator client: an OpenAI-compatible HTTP API, which is vLLM in every deployment of ragline.

There is deliberately no in-process generation path: the same client talks to a CPU vLLM on a laptop and to a
GPU fleet behind a load balancer, so what is tested is what runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import openai

from retrieval.protocols import Message


class LLMUnavailableError(RuntimeError):
    """The LLM service cannot be reached or failed; the message names the URL and how to start it."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


def _unavailable(base_url: str, exc: Exception) -> LLMUnavailableError:
    return LLMUnavailableError(
        f"the LLM service at {base_url} is not reachable ({type(exc).__name__}: {exc}). "
        "Start it with `ragline llm serve` (or point RAGLINE_LLM_BASE_URL at a running vLLM)."
    )


class OpenAICompatibleGenerator:
    """Chat completions against vLLM (or any OpenAI-compatible server), plain or streamed."""

    def __init__(self, base_url: str, model: str, api_key: str = "not-needed", timeout_s: float = 180.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    @contextmanager
    def _service_errors(self) -> Iterator[None]:
        """Turn the client's transport and HTTP errors into one error that names the URL and the fix."""
        try:
            yield
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise _unavailable(self.base_url, exc) from exc
        except openai.APIStatusError as exc:
            raise LLMUnavailableError(
                f"the LLM service at {self.base_url} answered {exc.status_code}: {exc.message}"
            ) from exc

    def chat(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0) -> Completion:
        with self._service_errors():
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
            )
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
        )

    def next_token_logprobs(self, messages: list[Message], *, top: int = 20) -> dict[str, float]:
        """Log-probabilities of the ``top`` likeliest first tokens of the reply: one decoding step, so a yes/no
        judgement costs a prefill (mostly a prefix-cache hit) and no generation."""
        with self._service_errors():
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=top,
            )
        logprobs = response.choices[0].logprobs
        if logprobs is None or not logprobs.content:
            raise LLMUnavailableError(f"the LLM service at {self.base_url} returned no logprobs (is it vLLM?)")
        return {entry.token: entry.logprob for entry in logprobs.content[0].top_logprobs}

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        """Yield text deltas as the server produces them."""
        with self._service_errors():
            chunks = self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
            )
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    def served_models(self) -> list[str]:
        with self._service_errors():
            return [model.id for model in self._client.models.list()]
