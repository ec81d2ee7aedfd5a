"""The ``ingest_jobs`` table, the uploaded bytes of each job, and the queue workers claim jobs from.

Upload bytes are stored in the database (``job_files``), not in a folder: every API replica and every worker
already reaches the database, so a job accepted by one replica can be run by a worker on any host with nothing
else shared (no NFS mount, no object store to configure and secure), and the job and its files are written in one
transaction, so a job never exists without its files. Uploads are bounded by ``max_upload_mb`` (25 MB by default),
which PostgreSQL's ``bytea`` and SQLite's blobs hold without trouble; a job's rows are deleted when it ends.

The queue is this table rather than a queue library. procrastinate 3.10 (a PostgreSQL queue) installs here beside
psycopg 3.3.9, but it keeps its own job table and schema outside our Alembic chains (a second migration system in
one database, and a second job state to mirror into ``ingest_jobs``, which the API reports), its stalled-job retry
is not automatic (the application must run a periodic task that finds and retries stalled jobs), its worker is an
asyncio loop around what here is a synchronous, CPU-bound job, and it cannot serve the embedded SQLite default.
What ingestion needs is small and is done here on both engines, in one transaction per claim:

- **claim**: the oldest ``queued`` worker job whose collection has no ``running`` job and no older queued job is
  taken with ``SELECT … FOR UPDATE SKIP LOCKED`` (on PostgreSQL: two workers claiming at once never take the same
  row, nor wait on each other; on SQLite the write transaction serialises claims) and marked ``running`` with the
  claiming worker's lease id. Jobs of one collection (``lock_key``: tenant + collection as stored) therefore run one
  at a time and in the order they were accepted: one writer per collection.
- **heartbeats**: a worker's lease (``retrieval.store.leases``) is renewed every third of ``writer_lease_s``.
- **stalled-job reclaim**: before claiming, expired leases are removed and ``running`` jobs whose worker holds no
  live lease go back to ``queued`` (the same worker's own unfinished job too: it lost the database mid-job), or
  end ``failed`` after ``job_max_attempts`` starts (a file that kills every worker must not loop forever). The
  retried job starts with a repair that rolls back the dead writer's pending documents, so it ends with the counts
  of a clean ingest.

Every update a worker makes to a job is conditioned on the job still naming its lease, so a worker that lost its
lease (and its job to another worker) can no longer change the job's state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update

from retrieval.store import open_store
from retrieval.store.leases import expire_dead_writers, live
from retrieval.store.tables import ingest_jobs, job_files, writers

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "partial", "failed", "interrupted")


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
    runner: str = "api"
    lock_key: str | None = None
    chunker: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    attempts: int = 0

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
        "runner",
        "lock_key",
        "chunker",
        "metadata",
        "worker",
        "attempts",
    )
)


def _record(row: Sequence[Any]) -> JobRecord:
    values = list(row)
    values[7] = json.loads(values[7]) if values[7] else None
    values[8] = json.loads(values[8]) if values[8] else {}
    values[16] = json.loads(values[16]) if values[16] else {}
    return JobRecord(*values)


class JobStore:
    """Jobs, their files and the queue; every method is one short transaction, safe from any thread."""

    def __init__(self, path: Path, *, database_url: str | None = None) -> None:
        self._db = open_store(path, database_url, "index")

    @property
    def database(self) -> Any:
        return self._db

    def close(self) -> None:
        self._db.close()

    # ---- creating and reading -------------------------------------------------------------------------------
    def create(
        self,
        job_id: str,
        tenant: str | None,
        collection: str,
        files_total: int,
        *,
        files: Sequence[tuple[str, bytes]] = (),
        runner: str = "api",
        lock_key: str | None = None,
        chunker: str | None = None,
        metadata: dict[str, Any] | None = None,
        worker: str | None = None,
    ) -> JobRecord:
        """A queued job and its uploaded files, in one transaction (a job never exists without its files)."""
        job = JobRecord(
            job_id,
            tenant,
            collection,
            "queued",
            files_total,
            created_at=time.time(),
            runner=runner,
            lock_key=lock_key or collection,
            chunker=chunker,
            metadata=dict(metadata or {}),
            worker=worker,
        )
        with self._db.write() as db:
            db.execute(
                insert(ingest_jobs).values(
                    id=job.id,
                    tenant=tenant,
                    collection=collection,
                    status=job.status,
                    files_total=files_total,
                    created_at=job.created_at,
                    runner=runner,
                    lock_key=job.lock_key,
                    chunker=chunker,
                    metadata=json.dumps(job.metadata),
                    worker=worker,
                )
            )
            if files:
                db.execute(
                    insert(job_files),
                    [
                        {"job_id": job_id, "position": i, "name": name, "data": data}
                        for i, (name, data) in enumerate(files)
                    ],
                )
        return job

    def files(self, job_id: str) -> list[tuple[str, bytes]]:
        query = select(job_files.c.name, job_files.c.data).where(job_files.c.job_id == job_id)
        with self._db.read() as db:
            return [(name, bytes(data)) for name, data in db.execute(query.order_by(job_files.c.position))]

    def drop_files(self, job_id: str) -> None:
        with self._db.write() as db:
            db.execute(delete(job_files).where(job_files.c.job_id == job_id))

    def update(self, job_id: str, *, owner: str | None = None, **values: Any) -> bool:
        """Change a job; with ``owner``, only while that lease still holds it. True when a row changed."""
        for key in ("summary", "failures"):
            if key in values:
                values[key] = json.dumps(values[key])
        query = update(ingest_jobs).where(ingest_jobs.c.id == job_id)
        if owner is not None:
            query = query.where(ingest_jobs.c.worker == owner, ingest_jobs.c.status == "running")
        with self._db.write() as db:
            changed = db.execute(query.values(**values)).rowcount
            if changed and values.get("status") in FINAL:
                db.execute(delete(job_files).where(job_files.c.job_id == job_id))
        return bool(changed)

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

    def busy(self, lock_key: str) -> bool:
        """Whether a job of this collection (as stored) is queued or running."""
        query = select(ingest_jobs.c.id).where(ingest_jobs.c.lock_key == lock_key, ingest_jobs.c.status.in_(ACTIVE))
        with self._db.read() as db:
            return db.scalar(query.limit(1)) is not None

    # ---- jobs run inside an API process ----------------------------------------------------------------------
    def mark_interrupted(self) -> list[str]:
        """Jobs of API processes that are gone (their lease expired, or they had none): they will never finish,
        so say so and drop their files; returns their ids. Jobs of live API processes and of workers are left."""
        with self._db.write() as db:
            holder_alive = exists().where(writers.c.id == ingest_jobs.c.worker, live(db))
            orphaned = and_(
                ingest_jobs.c.status.in_(ACTIVE),
                ingest_jobs.c.runner == "api",
                or_(ingest_jobs.c.worker.is_(None), ~holder_alive),
            )
            ids = list(db.scalars(select(ingest_jobs.c.id).where(orphaned)))
            if ids:
                db.execute(
                    update(ingest_jobs)
                    .where(ingest_jobs.c.id.in_(ids))
                    .values(
                        status="interrupted",
                        finished_at=time.time(),
                        error="the API stopped before this job finished; upload the files again",
                    )
                )
                db.execute(delete(job_files).where(job_files.c.job_id.in_(ids)))
        return ids

    # ---- the worker queue ------------------------------------------------------------------------------------
    def claim(self, worker: str, *, max_attempts: int) -> JobRecord | None:
        """Reclaim stalled jobs, then take the next runnable worker job for ``worker`` (a live lease id), or None.

        One transaction: on PostgreSQL, candidate rows are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent
        claimers never take the same job; on SQLite the write transaction is the lock."""
        with self._db.write() as db:
            self._reclaim(db, worker, max_attempts)
            other = ingest_jobs.alias("other")
            blocked = exists().where(
                other.c.lock_key == ingest_jobs.c.lock_key,
                other.c.id != ingest_jobs.c.id,
                or_(
                    other.c.status == "running",
                    and_(
                        other.c.status == "queued",
                        other.c.runner == "worker",
                        or_(
                            other.c.created_at < ingest_jobs.c.created_at,
                            and_(other.c.created_at == ingest_jobs.c.created_at, other.c.id < ingest_jobs.c.id),
                        ),
                    ),
                ),
            )
            candidate = (
                select(ingest_jobs.c.id)
                .where(ingest_jobs.c.status == "queued", ingest_jobs.c.runner == "worker", ~blocked)
                .order_by(ingest_jobs.c.created_at, ingest_jobs.c.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=ingest_jobs)
            )
            job_id = db.scalar(candidate)
            if job_id is None:
                return None
            db.execute(
                update(ingest_jobs)
                .where(ingest_jobs.c.id == job_id)
                .values(status="running", worker=worker, started_at=time.time(), attempts=ingest_jobs.c.attempts + 1)
            )
            row = db.execute(select(*_JOB_COLUMNS).where(ingest_jobs.c.id == job_id)).one()
        return _record(tuple(row))

    def release(self, job_id: str, worker: str) -> bool:
        """Put a job this worker holds back in the queue (it could not finish it: the database went away)."""
        with self._db.write() as db:
            changed = db.execute(
                update(ingest_jobs)
                .where(ingest_jobs.c.id == job_id, ingest_jobs.c.worker == worker, ingest_jobs.c.status == "running")
                .values(status="queued", worker=None)
            ).rowcount
        return bool(changed)

    @staticmethod
    def _reclaim(db: Any, worker: str, max_attempts: int) -> None:
        """Running worker jobs whose worker is gone, or that ``worker`` itself left unfinished, back to the queue;
        after ``max_attempts`` starts, failed instead."""
        expire_dead_writers(db)
        holder_alive = exists().where(writers.c.id == ingest_jobs.c.worker, live(db))
        stalled = and_(
            ingest_jobs.c.status == "running",
            ingest_jobs.c.runner == "worker",
            or_(ingest_jobs.c.worker == worker, ingest_jobs.c.worker.is_(None), ~holder_alive),
        )
        given_up = list(db.scalars(select(ingest_jobs.c.id).where(stalled, ingest_jobs.c.attempts >= max_attempts)))
        if given_up:
            db.execute(
                update(ingest_jobs)
                .where(ingest_jobs.c.id.in_(given_up))
                .values(
                    status="failed",
                    worker=None,
                    finished_at=time.time(),
                    error=f"the worker running this job stopped {max_attempts} times before it finished (killed, "
                    "or out of memory); the workers' logs say why",
                )
            )
            db.execute(delete(job_files).where(job_files.c.job_id.in_(given_up)))
        db.execute(update(ingest_jobs).where(stalled).values(status="queued", worker=None))
