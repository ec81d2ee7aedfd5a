"""Ingestion jobs for uploads: saved to disk, run one at a time in a background thread, progress kept in the store.

The job table lives beside the manifest (``<data_dir>/ragline.sqlite``, or the shared ``database_url``), so a
restarted API still shows every job's final state. A job that was queued or running when the process died is marked
``interrupted`` on the next start (its upload was the only copy, so the user uploads again; the index itself is
repaired by the next ingest). One API process runs the jobs of a data dir: a second replica would mark the first
one's running jobs interrupted.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from app.chunking import make_chunker
from app.ingestion import ingest_from_documents
from app.resources import Resources
from ingest.document import Document
from ingest.job import Chunker, LoadFailure, load_file
from ingest.loaders import discover
from retrieval.store import open_store
from retrieval.store.tables import ingest_jobs
from retrieval.types import Chunk

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")


@dataclass
class JobRecord:
    id: str
    tenant: str | None
    collection: str
    status: str
    files_total: int
    files_done: int = 0
    chunks: int = 0
    summary: dict[str, Any] | None = None
    failures: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection": self.collection,
            "status": self.status,
            "files": {"done": self.files_done, "total": self.files_total},
            "chunks": self.chunks,
            "failures": self.failures,
            "summary": self.summary,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class JobStore:
    """The ``ingest_jobs`` table; every method is one short transaction, safe from any thread."""

    def __init__(self, path: Path, *, database_url: str | None = None) -> None:
        self._db = open_store(path, database_url, "index")

    def close(self) -> None:
        self._db.close()

    def mark_interrupted(self) -> list[str]:
        """Jobs a previous process left unfinished: they will never finish, so say so; returns their ids."""
        with self._db.write() as db:
            ids = list(db.scalars(select(ingest_jobs.c.id).where(ingest_jobs.c.status.in_(ACTIVE))))
            db.execute(
                update(ingest_jobs)
                .where(ingest_jobs.c.status.in_(ACTIVE))
                .values(
                    status="interrupted",
                    finished_at=time.time(),
                    error="the API stopped before this job finished; upload the files again",
                )
            )
        return ids

    def create(self, job_id: str, tenant: str | None, collection: str, files_total: int) -> JobRecord:
        job = JobRecord(job_id, tenant, collection, "queued", files_total, created_at=time.time())
        with self._db.write() as db:
            db.execute(
                insert(ingest_jobs).values(
                    id=job.id,
                    tenant=tenant,
                    collection=collection,
                    status=job.status,
                    files_total=files_total,
                    created_at=job.created_at,
                )
            )
        return job

    def update(self, job_id: str, **values: Any) -> None:
        for key in ("summary", "failures"):
            if key in values:
                values[key] = json.dumps(values[key])
        with self._db.write() as db:
            db.execute(update(ingest_jobs).where(ingest_jobs.c.id == job_id).values(**values))

    def get(self, job_id: str) -> JobRecord | None:
        with self._db.read() as db:
            row = db.execute(select(*_JOB_COLUMNS).where(ingest_jobs.c.id == job_id)).first()
        return _record(tuple(row)) if row else None

    def list(self, tenant: str | None, limit: int) -> list[JobRecord]:
        query = (
            select(*_JOB_COLUMNS)
            .where(ingest_jobs.c.tenant.is_not_distinct_from(tenant))
            .order_by(ingest_jobs.c.created_at.desc())
            .limit(limit)
        )
        with self._db.read() as db:
            return [_record(tuple(row)) for row in db.execute(query)]


_JOB_COLUMNS = tuple(
    ingest_jobs.c[name]
    for name in (
        "id",
        "tenant",
        "collection",
        "status",
        "files_total",
        "files_done",
        "chunks",
        "summary",
        "failures",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )
)


def _record(row: tuple[Any, ...]) -> JobRecord:
    (job_id, tenant, collection, status, total, done, chunks, summary, failures, error, created, started, ended) = row
    return JobRecord(
        job_id,
        tenant,
        collection,
        status,
        total,
        done,
        chunks,
        json.loads(summary) if summary else None,
        json.loads(failures),
        error,
        created,
        started,
        ended,
    )


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

    def chunk(self, document: Document) -> list[Chunk]:
        chunks = self.inner.chunk(document)
        with self._lock:
            self.on_chunks(len(chunks))
        return chunks


@dataclass(frozen=True)
class UploadJob:
    job_id: str
    folder: Path
    collection: str
    chunker: str
    metadata: Mapping[str, Any]


JOB_UPLOADS = "job-uploads"
"""The folder under the data dir where upload jobs keep their files until they are ingested: the jobs' own (the UI
keeps its uploads elsewhere), so that a restart removing an interrupted job's files removes nothing else."""


class JobRunner:
    """Runs upload jobs for one data dir, one at a time: the index has one writer per collection at a time."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.store = JobStore(
            resources.settings.data_dir / "ragline.sqlite", database_url=resources.settings.database_url
        )
        self.uploads_dir = resources.settings.data_dir / JOB_UPLOADS
        interrupted = self.store.mark_interrupted()
        if interrupted:
            log.warning("%d ingestion job(s) were interrupted by a restart and are marked so", len(interrupted))
        for job_id in interrupted:  # their uploads: nothing will use them; nothing else in the folder is touched
            shutil.rmtree(self.uploads_dir / job_id, ignore_errors=True)
        self.write_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragline-ingest")

    def new_upload_folder(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        folder = self.uploads_dir / job_id
        folder.mkdir(parents=True)
        return job_id, folder

    def submit(self, upload: UploadJob, tenant: str | None, files_total: int, logical_collection: str) -> JobRecord:
        job = self.store.create(upload.job_id, tenant, logical_collection, files_total)
        self._executor.submit(self._run, job.id, upload)
        return job

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, job_id: str, upload: UploadJob) -> None:
        store = self.store
        store.update(job_id, status="running", started_at=time.time())
        progress = {"files": 0, "chunks": 0}

        def on_chunks(count: int) -> None:
            progress["chunks"] += count
            store.update(job_id, chunks=progress["chunks"])

        def documents() -> Iterator[Document | LoadFailure]:
            for path in discover(upload.folder):
                yield load_file(path, upload.folder, upload.metadata)
                progress["files"] += 1
                store.update(job_id, files_done=progress["files"])

        try:
            chunker = _CountingChunker(make_chunker(self.resources, upload.chunker), on_chunks)
            with self.write_lock:
                summary = ingest_from_documents(self.resources, chunker, documents(), upload.collection)
            status = "succeeded" if not summary.failed else ("failed" if not summary.chunks_written else "partial")
            store.update(
                job_id,
                status=status,
                files_done=progress["files"],
                chunks=summary.chunks_written,
                summary=summary.as_dict(),
                failures=summary.failed,
                finished_at=time.time(),
            )
        except Exception as exc:  # a job must end in a final state whatever happened; the log has the traceback
            log.exception("ingestion job %s failed", job_id)
            error = f"the job stopped on an unexpected {type(exc).__name__}; the server log has the details"
            store.update(job_id, status="failed", error=error, finished_at=time.time())
        finally:
            shutil.rmtree(upload.folder, ignore_errors=True)
