"""Embed one batch while the previous one is written: a bounded two-stage pipeline behind the ingestion job.

Profiling `ragline ingest` on SciFact showed embedding at ~97% of the job's time; what separated the job from the
raw embedder's rate was the rest done in series with it (chunking the next batch, the manifest's transactions,
Chroma's upsert) and, most of all, padding: the embedder sorts texts by length only within one call, so small
calls pad more. Here one thread embeds batch N+1 while another writes batch N and the caller chunks batch N+2.

The writer is a single thread and writes batches strictly in the order they were submitted, each through
``Index.write`` unchanged, so the crash-safe order (manifest pending → Chroma → manifest indexed) holds batch by
batch exactly as in a sequential job: a kill -9 leaves at most the batch being written pending, which the next
run's repair rolls back. After the first failure nothing further is written, as a sequential job would stop.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import numpy as np

from retrieval.index import DocumentWrite, Index


class PipelineBroken(RuntimeError):
    """A batch was not written because an earlier batch's embedding or write failed."""


class EmbedWritePipeline:
    """``submit`` batches in order; at most ``max_in_flight`` are embedding or waiting to be written at once.

    ``on_written(documents, chunks)`` is called in the submitting thread once a batch is written, in order. Use it as
    a context manager: leaving the block waits for every write (and re-raises the first failure); leaving it on an
    exception still waits for the write under way, drops the batches not yet started, and lets the exception
    through.
    """

    def __init__(
        self,
        index: Index,
        collection: str,
        *,
        on_written: Callable[[int, int], None] = lambda documents, chunks: None,
        max_in_flight: int = 2,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._index = index
        self._collection = collection
        self._on_written = on_written
        self._max_in_flight = max_in_flight
        self._embed_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-embed")
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write")
        self._in_flight: deque[tuple[Future[None], int, int]] = deque()
        self._broken = threading.Event()

    def submit(self, writes: Sequence[DocumentWrite]) -> None:
        """Queue a batch; blocks while ``max_in_flight`` earlier batches are still unwritten."""
        if not writes:
            return
        texts = [chunk.text for write in writes for chunk in write.chunks]
        vectors = self._embed_pool.submit(self._embed, texts)
        done = self._write_pool.submit(self._write, list(writes), vectors)
        self._in_flight.append((done, len(writes), len(texts)))
        while self._in_flight and (len(self._in_flight) > self._max_in_flight or self._in_flight[0][0].done()):
            self._settle_oldest()

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._broken.is_set():
            raise PipelineBroken("not embedded: an earlier batch failed")
        return self._index.embedder.embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)

    def _write(self, writes: list[DocumentWrite], vectors: Future[np.ndarray]) -> None:
        if self._broken.is_set():
            raise PipelineBroken("not written: an earlier batch failed")
        try:
            self._index.write(self._collection, writes, vectors.result())
        except BaseException:
            self._broken.set()
            raise

    def _settle_oldest(self) -> None:
        done, documents, chunks = self._in_flight.popleft()
        done.result()
        self._on_written(documents, chunks)

    def close(self) -> None:
        """Wait for every submitted batch to be written; raises the first failure."""
        try:
            while self._in_flight:
                self._settle_oldest()
        finally:
            self._shutdown(cancel=True)

    def _shutdown(self, *, cancel: bool) -> None:
        if cancel:
            self._broken.set()
        self._embed_pool.shutdown(wait=True, cancel_futures=cancel)
        self._write_pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> EmbedWritePipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._in_flight.clear()
            self._shutdown(cancel=True)
