"""A streaming response that closes its source as soon as the response ends, finished or abandoned.

Starlette drives a synchronous iterator from worker threads and, when the client disconnects, just stops asking it
for more: the iterator is closed only whenever the garbage collector reaches it. For an answer streamed from vLLM
that leaves the upstream request generating to ``max_tokens`` (minutes on a CPU). Closing the source runs the
generator client's cleanup, which shuts the connection to vLLM down, and vLLM aborts the request.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Generator

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

_END = object()


class ClosingStreamingResponse(StreamingResponse):
    """``StreamingResponse`` over a generator that is closed when the response is over, including when the client
    went away mid-stream."""

    def __init__(self, source: Generator[str, None, None], *, media_type: str) -> None:
        self._source = source
        self._turn = threading.Lock()
        """``next`` and ``close`` never overlap: a generator cannot be closed while another thread runs it, so the
        close waits for the delta being read (a token away with vLLM; at most the LLM deadline otherwise)."""
        super().__init__(self._chunks(), media_type=media_type)

    def _next(self) -> object:
        with self._turn:
            return next(self._source, _END)

    def _close(self) -> None:
        with self._turn:
            self._source.close()

    async def _chunks(self) -> AsyncIterator[str]:
        while (chunk := await anyio.to_thread.run_sync(self._next)) is not _END:
            assert isinstance(chunk, str)
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._close)
