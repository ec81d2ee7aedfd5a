"""Running one ingestion job: its stored files written to a scratch folder, loaded, chunked and indexed, progress and
the final state recorded in the job's row. The API's in-process runner and ``ragline worker`` both run jobs here.

The loaders read files (PDF and DOCX parsers want a path), so the job's bytes are written to a folder of this
process for the duration of the job and removed afterwards, whatever happened.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from app.chunking import make_chunker
from app.ingestion import ingest_from_documents
from app.jobs.store import JobRecord, JobStore
from app.resources import Resources
from ingest.document import Document
from ingest.job import Chunker, LoadFailure, load_file
from ingest.loaders import discover
from retrieval.store import StoreUnavailableError
from retrieval.store.leases import LeaseLostError
from retrieval.types import Chunk

log = logging.getLogger(__name__)

FAULT_SLOW_CHUNKING_ENV = "RAGLINE_FAULT_INJECT_SLOW_CHUNKING_S"
"""Fault injection for tests only: seconds each document's chunking is delayed, so a test can kill a worker while
its job is half done. Unset (always, outside tests) means no delay."""


class JobLostError(RuntimeError):
    """The job can no longer be finished by this process (its database went away or its lease was lost): it goes
    back to the queue, or another worker has already taken it; it must not be marked failed."""


class _CountingChunker:
    """Wraps the chunker to report chunks as they are made (the job summary only arrives at the end).

    It passes on ``parallel_documents``, so a RAPTOR upload builds several documents' trees at once as the CLI
    does, and reports under a lock because those documents finish on different threads."""

    def __init__(self, inner: Chunker, on_chunks: Callable[[int], None]) -> None:
        self.inner, self.on_chunks = inner, on_chunks
        self.name = inner.name
        self.signature = inner.signature
        self.parallel_documents = inner.parallel_documents
        self._lock = threading.Lock()
        self._delay_s = float(os.environ.get(FAULT_SLOW_CHUNKING_ENV) or 0.0)

    def chunk(self, document: Document) -> list[Chunk]:
        if self._delay_s:
            time.sleep(self._delay_s)
        chunks = self.inner.chunk(document)
        with self._lock:
            self.on_chunks(len(chunks))
        return chunks


def write_files(store: JobStore, job_id: str, folder: Path) -> None:
    """The job's uploaded files, as files in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in store.files(job_id):
        (folder / name).write_bytes(data)


def run_job(
    resources: Resources,
    store: JobStore,
    job: JobRecord,
    folder: Path,
    *,
    owner: str | None = None,
    write_lock: threading.Lock | None = None,
) -> str:
    """Run ``job`` with its files in ``folder`` (removed at the end) and record its final state; returns it.

    ``owner``: the worker's lease id, so every update applies only while the job is still this worker's. A lost
    database or lease raises ``JobLostError`` instead of marking the job failed: it is retried."""
    progress = {"files": 0, "chunks": 0}

    def record(**values: object) -> None:
        if not store.update(job.id, owner=owner, **values) and owner is not None:
            raise JobLostError(f"job {job.id} is no longer held by {owner}")

    def on_chunks(count: int) -> None:
        progress["chunks"] += count
        record(chunks=progress["chunks"])

    def documents() -> Iterator[Document | LoadFailure]:
        for path in discover(folder):
            yield load_file(path, folder, job.metadata)
            progress["files"] += 1
            record(files_done=progress["files"])

    try:
        if owner is None:
            store.update(job.id, status="running", started_at=time.time())
        chunker = _CountingChunker(make_chunker(resources, job.chunker or resources.settings.chunker), on_chunks)
        lock_key = job.lock_key or job.collection
        if write_lock is not None:
            with write_lock:
                summary = ingest_from_documents(resources, chunker, documents(), lock_key)
        else:
            summary = ingest_from_documents(resources, chunker, documents(), lock_key)
        status = "succeeded" if not summary.failed else ("failed" if not summary.chunks_written else "partial")
        record(
            status=status,
            files_done=progress["files"],
            chunks=summary.chunks_written,
            summary=summary.as_dict(),
            failures=summary.failed,
            finished_at=time.time(),
        )
        return status
    except Exception as exc:  # a job must end in a final state whatever happened; the log has the traceback
        if owner is not None and isinstance(exc, StoreUnavailableError | LeaseLostError | JobLostError):
            raise JobLostError(f"job {job.id} stopped: {exc}") from exc
        log.exception("ingestion job %s failed", job.id)
        error = f"the job stopped on an unexpected {type(exc).__name__}; the server log has the details"
        record(status="failed", error=error, finished_at=time.time())
        return "failed"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
