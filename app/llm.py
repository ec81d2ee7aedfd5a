"""The generator client: an OpenAI-compatible HTTP API, which is vLLM in every deployment of ragline.

There is deliberately no in-process generation path: the same client talks to a CPU vLLM on a laptop and to a
GPU fleet behind a load balancer, so what is tested is what runs.

Three promises the HTTP library alone does not keep:

- **A deadline.** ``timeout_s`` bounds the whole generation, first byte and last. An HTTP read timeout restarts
  with every byte, so an upstream that trickles one byte every few seconds would hold a request open for ever;
  the response is therefore read in a background thread and the caller stops waiting when the deadline passes.
- **Cancellation.** A generation the caller gives up on (deadline, error, or a consumer that stops reading a
  stream, e.g. a disconnected HTTP client) has its connection shut down at once; vLLM sees the disconnect and
  aborts the request instead of generating to ``max_tokens``. Chat completions are streamed from vLLM even when
  the caller wants the whole text, so that there is a live connection to shut down.
- **Bounded retries** of failures that are safe to retry because nothing was generated: connection refused or
  reset, 500, 502, 503 and 504 answers. Never a timeout (the work may be running) nor a 4xx (it would fail
  again). With several replicas (``app.llm_replicas``) a retry goes to the next replica at once, and the one that
  failed is skipped by later requests for a cool-down; a retry to a replica already tried waits a backoff first.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from app.llm_replicas import COOLDOWN_S, ReplicaSet
from retrieval.llm_affinity import current_affinity
from retrieval.protocols import Message

log = logging.getLogger(__name__)

RETRY_STATUSES = (500, 502, 503, 504)
RETRY_BACKOFF_S = 0.5
"""First pause before a retry; doubled each time, and never past the deadline."""
CONNECT_TIMEOUT_S = 10.0


class LLMUnavailableError(RuntimeError):
    """The LLM service cannot be reached or failed; the message names the URL and how to start it.

    ``public`` is the same news without the URL, for clients of the API (the server log keeps the detail)."""

    public = "the LLM service is not reachable; the server log has the details"


class LLMTimeoutError(LLMUnavailableError):
    """The generation did not finish within ``timeout_s`` (first byte and total)."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.public = (
            f"the LLM did not finish within {timeout_s:g} s; ask for a shorter answer (options.max_answer_tokens) "
            "or raise RAGLINE_LLM_TIMEOUT_S on the server"
        )
        super().__init__(f"the LLM service at {base_url} did not finish within {timeout_s:g} s (llm_timeout_s)")


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


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in RETRY_STATUSES


def _shut_down(response: httpx.Response | None) -> None:
    """Close the connection under a response now, even while another thread is blocked reading it: a socket
    ``shutdown`` wakes that read and sends the server a FIN, which is what makes vLLM abort the request."""
    if response is None:
        return
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)
    else:
        response.close()


class _BackgroundRequest:
    """One request whose response items are read in a daemon thread and handed over through a queue, so that
    the caller waits at most until its deadline, whatever the server does."""

    _ITEM, _END, _ERROR = range(3)

    def __init__(self, send: Callable[[Callable[[httpx.Response], None]], Iterable[Any]]) -> None:
        self._send = send
        self._items: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._response: httpx.Response | None = None
        self._closed = threading.Event()
        threading.Thread(target=self._pump, name="llm-request", daemon=True).start()

    def _on_response(self, response: httpx.Response) -> None:
        """Called by ``send`` as soon as the response headers are in, before its body is read."""
        self._response = response
        if self._closed.is_set():
            _shut_down(response)

    def _pump(self) -> None:
        try:
            for item in self._send(self._on_response):
                if self._closed.is_set():
                    return
                self._items.put((self._ITEM, item))
            self._items.put((self._END, None))
        except BaseException as exc:  # handed to the caller, who decides; nothing is lost in this thread
            self._items.put((self._ERROR, exc))

    def next(self, deadline: float) -> tuple[bool, Any]:
        """``(True, item)``, or ``(False, None)`` at the end; raises the request's error, ``TimeoutError`` at the
        deadline."""
        try:
            kind, value = self._items.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError from None
        if kind == self._ERROR:
            raise value
        return kind == self._ITEM, value

    def close(self) -> None:
        self._closed.set()
        _shut_down(self._response)


Send = Callable[[openai.OpenAI, Callable[[httpx.Response], None]], Iterable[Any]]
"""One request against one replica's client: it calls ``on_response`` once the headers are in, then yields."""


class OpenAICompatibleGenerator:
    """Chat completions against vLLM (or any OpenAI-compatible server), whole or streamed, under a deadline;
    spread over ``replicas`` (more base URLs serving the same model) when given."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "not-needed",
        timeout_s: float = 180.0,
        retries: int = 2,
        replicas: Sequence[str] = (),
        cooldown_s: float = COOLDOWN_S,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self.replica_set = ReplicaSet([base_url, *replicas], cooldown_s)
        self.base_url = self.replica_set.urls[0]
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
        self._clients = {
            url: openai.OpenAI(base_url=url, api_key=api_key, timeout=timeout, max_retries=0)
            for url in self.replica_set.urls
        }

    def _error(self, exc: BaseException, url: str) -> LLMUnavailableError:
        if isinstance(exc, openai.APITimeoutError):
            return LLMTimeoutError(url, self.timeout_s)
        if isinstance(exc, openai.APIConnectionError):
            return _unavailable(url, exc)
        if isinstance(exc, openai.APIStatusError):
            error = LLMUnavailableError(f"the LLM service at {url} answered {exc.status_code}: {exc.message}")
            error.public = f"the LLM service answered {exc.status_code}; the server log has the details"
            return error
        raise exc

    def _items(self, send: Send) -> Iterator[Any]:
        """Yield the items of ``send()`` within the deadline; retry connection failures and 5xx that happen
        before the first item, on the next replica; shut the connection down whenever this generator ends early."""
        deadline = time.monotonic() + self.timeout_s
        order = self.replica_set.order(current_affinity())
        attempts = max(self.retries + 1, len(order))
        for attempt in range(attempts):
            url = order[attempt % len(order)]
            client = self._clients[url]
            request = _BackgroundRequest(lambda on_response, client=client: send(client, on_response))
            started = False
            try:
                while True:
                    more, item = request.next(deadline)
                    if not more:
                        return
                    if not started:
                        started = True
                        self.replica_set.mark_up(url)
                    yield item
            except TimeoutError:
                raise LLMTimeoutError(url, self.timeout_s) from None
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                if started or not _retryable(exc):
                    raise self._error(exc, url) from exc
                self.replica_set.mark_down(url)
                revisiting = attempt + 1 >= len(order)  # the next target was tried already: back off first
                pause = RETRY_BACKOFF_S * 2 ** (attempt + 1 - len(order)) if revisiting else 0.0
                if attempt == attempts - 1 or time.monotonic() + pause > deadline:
                    raise self._error(exc, url) from exc
                log.warning(
                    "LLM request to %s failed (%s); retry %d of %d", url, type(exc).__name__, attempt + 1, attempts - 1
                )
                time.sleep(pause)
            finally:
                request.close()

    def _chunks(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[Any]:
        def send(client: openai.OpenAI, on_response: Callable[[httpx.Response], None]) -> Iterable[Any]:
            stream = client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            on_response(stream.response)
            return stream

        return self._items(send)

    def chat(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0) -> Completion:
        parts: list[str] = []
        finish_reason: str | None = None
        usage = None
        for chunk in self._chunks(messages, max_tokens, temperature):
            if chunk.choices:
                choice = chunk.choices[0]
                parts.append(choice.delta.content or "")
                finish_reason = choice.finish_reason or finish_reason
            usage = chunk.usage or usage
        return Completion(
            text="".join(parts),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=finish_reason,
        )

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        """Yield text deltas as the server produces them; closing the iterator aborts the generation."""
        for chunk in self._chunks(messages, max_tokens, temperature):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    def next_token_logprobs(self, messages: list[Message], *, top: int = 20) -> dict[str, float]:
        """Log-probabilities of the ``top`` likeliest first tokens of the reply: one decoding step, so a yes/no
        judgement costs a prefill (mostly a prefix-cache hit) and no generation."""

        def send(client: openai.OpenAI, on_response: Callable[[httpx.Response], None]) -> Iterable[Any]:
            with client.chat.completions.with_streaming_response.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=top,
            ) as raw:
                on_response(raw.http_response)  # the body is read below: a trickle can be shut down meanwhile
                return [raw.parse()]

        (response,) = list(self._items(send))
        logprobs = response.choices[0].logprobs
        if logprobs is None or not logprobs.content:
            raise LLMUnavailableError(f"the LLM service at {self.base_url} returned no logprobs (is it vLLM?)")
        return {entry.token: entry.logprob for entry in logprobs.content[0].top_logprobs}

    def served_models(self) -> list[str]:

        def send(client: openai.OpenAI, on_response: Callable[[httpx.Response], None]) -> Iterable[Any]:
            with client.models.with_streaming_response.list() as raw:
                on_response(raw.http_response)
                return [model.id for model in raw.parse()]

        return list(self._items(send))
