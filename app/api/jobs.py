"""Upload jobs as the API sees them: accepted with their files into the database, then run here or by workers.

Which one is ``Settings.runs_jobs_in_process``:

- **in process** (the embedded default, SQLite): this process runs its jobs one at a time in a background thread,
  as ragline always has. A job it holds names this process's writer lease, so a restarted API marks
  ``interrupted`` only the jobs of API processes that are gone (their lease expired), never those of a live one.
- **workers** (a shared PostgreSQL ``database_url``): the API only enqueues; ``ragline worker`` processes on any
  host run the jobs (``app.jobs.worker``). A restarting API touches no job then: whether a job's worker is alive
  is decided by the workers' leases, not by which API process happens to start.

The job table, files and queue are ``app.jobs.store``; running a job is ``app.jobs.execute``.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from app.jobs.execute import _CountingChunker, run_job, write_files
from app.jobs.store import ACTIVE, JobRecord, JobStore
from app.resources import Resources

__all__ = ["ACTIVE", "JOB_UPLOADS", "JobRecord", "JobRunner", "JobStore", "UploadJob", "_CountingChunker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadJob:
    """An accepted upload: its files (stored name, bytes), where it goes and how it is chunked."""

    files: Sequence[tuple[str, bytes]]
    collection: str  # as stored (tenant-qualified): the job's lock key
    chunker: str
    metadata: Mapping[str, Any]


JOB_UPLOADS = "job-uploads"
"""The folder under the data dir where in-process jobs write their files while they run (the UI keeps its uploads
elsewhere), so that a restart removing an interrupted job's files removes nothing else."""


class JobRunner:
    """Accepts upload jobs for one data dir; runs them in this process, one at a time, or leaves them to workers."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        settings = resources.settings
        self.store = JobStore(settings.data_dir / "ragline.sqlite", database_url=settings.database_url)
        self.in_process = settings.runs_jobs_in_process
        self.uploads_dir = settings.data_dir / JOB_UPLOADS
        self.write_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        if self.in_process:
            interrupted = self.store.mark_interrupted()
            if interrupted:
                log.warning("%d ingestion job(s) were interrupted by a restart and are marked so", len(interrupted))
            for job_id in interrupted:  # their scratch files: nothing will use them; nothing else is touched
                shutil.rmtree(self.uploads_dir / job_id, ignore_errors=True)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragline-ingest")

    def submit(self, upload: UploadJob, tenant: str | None, files_total: int, logical_collection: str) -> JobRecord:
        job_id = uuid.uuid4().hex
        job = self.store.create(
            job_id,
            tenant,
            logical_collection,
            files_total,
            files=upload.files,
            runner="api" if self.in_process else "worker",
            lock_key=upload.collection,
            chunker=upload.chunker,
            metadata=dict(upload.metadata),
            worker=self.resources.index.writer.id if self.in_process else None,
        )
        if self._executor is not None:
            self._executor.submit(self._run, job)
        return job

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: JobRecord) -> None:
        folder = self.uploads_dir / job.id
        try:
            write_files(self.store, job.id, folder)
        except Exception as exc:  # the job must end in a final state; the log has the traceback
            log.exception("ingestion job %s: its files could not be written", job.id)
            shutil.rmtree(folder, ignore_errors=True)
            self.store.update(
                job.id, status="failed", error=f"its files could not be read back ({exc})", finished_at=time.time()
            )
            return
        run_job(self.resources, self.store, job, folder, write_lock=self.write_lock)
