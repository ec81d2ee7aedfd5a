"""``ragline worker``: takes ingestion jobs from the shared database and runs them, one at a time, until stopped.

Any number of workers, on any hosts, share one queue (``app.jobs.store``): a job is taken by exactly one worker, the
jobs of one collection run one at a time in the order they were accepted, and a worker's lease (its heartbeat) is
what tells the others it is alive. A worker killed mid-job (``kill -9``, a lost host) stops renewing its lease; once
the lease has expired (``writer_lease_s``), the next worker to look for work puts the job back in the queue and takes
it, rolls back the dead writer's pending documents, and ingests the job's files again from the database: unchanged
documents already written are skipped, so nothing is lost or written twice.

The database being down or restarting is waited out: the worker retries with exponential backoff (from
``worker_poll_s`` up to ``BACKOFF_MAX_S``) and logs each failure; a job it was running when the database went
away goes back to the queue (or is reclaimed by the first worker to claim once the database is back) and runs again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.jobs.execute import JobLostError, run_job, write_files
from app.jobs.store import JobStore
from app.resources import Resources
from retrieval.store import StoreUnavailableError
from retrieval.store.leases import LeaseLostError

log = logging.getLogger("ragline.worker")

BACKOFF_MAX_S = 30.0


@dataclass
class WorkerStats:
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> final status
    lost: int = 0  # jobs put back in the queue (database gone, lease lost)
    unavailable: int = 0  # failed attempts to reach the database


class Worker:
    """One worker process's loop; ``run`` returns when ``stop`` is set (or, with ``until_idle``, the queue is
    empty)."""

    def __init__(self, resources: Resources, *, scratch: Path | None = None) -> None:
        self.resources = resources
        settings = resources.settings
        self.poll_s = settings.worker_poll_s
        self.max_attempts = settings.job_max_attempts
        self.scratch = scratch or Path(tempfile.mkdtemp(prefix="ragline-worker-"))
        self.stats = WorkerStats()
        self._store: JobStore | None = None

    def _job_store(self) -> JobStore:
        if self._store is None:
            settings = self.resources.settings
            self._store = JobStore(settings.data_dir / "ragline.sqlite", database_url=settings.database_url)
        return self._store

    def run(self, stop: threading.Event, *, until_idle: bool = False) -> WorkerStats:
        backoff = self.poll_s
        while not stop.is_set():
            try:
                store = self._job_store()
                lease = self.resources.index.writer  # a fresh lease if the last one was lost
                job = store.claim(lease.id, max_attempts=self.max_attempts)
            except StoreUnavailableError as exc:
                self.stats.unavailable += 1
                log.warning("database unavailable: %s; retrying in %.1f s", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = self.poll_s
            if job is None:
                if until_idle:
                    break
                stop.wait(self.poll_s)
                continue
            log.info("job %s: collection %s, attempt %d, worker %s", job.id, job.lock_key, job.attempts, lease.id)
            folder = self.scratch / job.id
            try:
                write_files(store, job.id, folder)
                with self.resources.index.writing_as(lease):
                    status = run_job(self.resources, store, job, folder, owner=lease.id)
            except (JobLostError, StoreUnavailableError, LeaseLostError) as exc:
                shutil.rmtree(folder, ignore_errors=True)
                self.stats.lost += 1
                log.warning("job %s goes back to the queue: %s", job.id, exc)
                # Unreachable: the next claim (this worker's or another's, once its lease is gone) reclaims it.
                with contextlib.suppress(StoreUnavailableError):
                    store.release(job.id, lease.id)
                continue
            self.stats.jobs[job.id] = status
            log.info("job %s: %s", job.id, status)
        return self.stats

    def close(self) -> None:
        """Hand back the lease at once (its jobs become reclaimable without waiting for it to expire)."""
        if self._store is not None:
            self._store.close()
        try:
            self.resources.index.writer.release()
        except StoreUnavailableError:
            log.warning("the writer lease could not be released (database unavailable); it expires on its own")
        shutil.rmtree(self.scratch, ignore_errors=True)
