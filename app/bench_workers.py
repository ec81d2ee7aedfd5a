"""``ragline bench workers``: ingestion docs/s with 1 and with 2 ``ragline worker`` processes, same corpus, one run.

Jobs of one collection run one at a time by design (one writer per collection), so two workers only help when
there are jobs for two collections: the corpus is split in two halves, each half one job into its own collection.
Each round starts its workers, waits until every one holds a lease (started, models loaded, polling), then enqueues
both jobs at once; the round's time is from the enqueue to the last job's end. Rounds write into fresh collections,
so every round ingests every document (nothing is skipped as unchanged).

It needs what workers need: a shared PostgreSQL (``RAGLINE_DATABASE_URL``) and a Chroma server
(``RAGLINE_CHROMA_URL``); two processes cannot share an embedded Chroma folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from app.jobs.store import FINAL, JobStore
from app.settings import Settings
from eval.beir import load_corpus
from retrieval.store.tables import writers


@dataclass(frozen=True)
class WorkerRound:
    workers: int
    documents: int
    chunks: int
    seconds: float

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds


def corpus_files(path: Path, limit: int) -> list[tuple[str, bytes]]:
    """The first ``limit`` documents of a BEIR corpus as text files (title, blank line, text)."""
    corpus = load_corpus(path)
    files = []
    for doc_id, record in list(corpus.items())[:limit]:
        text = f"{record['title']}\n\n{record['text']}" if record["title"] else record["text"]
        files.append((f"{doc_id}.txt", text.encode()))
    return files


def _start_workers(count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    processes = []
    for number in range(count):
        log = (log_dir / f"bench-worker-{number}.log").open("wb")
        processes.append(
            subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], stdout=log, stderr=subprocess.STDOUT)
        )
    return processes


def _wait_for_leases(store: JobStore, processes: list[subprocess.Popen[bytes]], timeout_s: float = 600) -> None:
    """Until every worker process holds a writer lease: it has loaded its models and polls the queue."""
    pids = {process.pid for process in processes}
    deadline = time.monotonic() + timeout_s
    while True:
        with store.database.read() as db:
            holding = set(db.scalars(select(writers.c.pid).where(writers.c.pid.in_(pids))))
        if holding == pids:
            return
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"worker {process.pid} exited with {process.returncode}; see its log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {sorted(pids - holding)} did not start within {timeout_s:.0f} s")
        time.sleep(0.2)


def run_round(settings: Settings, files: list[tuple[str, bytes]], workers: int, tag: str, log_dir: Path) -> WorkerRound:
    """One round: ``workers`` processes, the corpus as two jobs into two fresh collections."""
    store = JobStore(settings.data_dir / "ragline.sqlite", database_url=settings.database_url)
    halves = [files[: len(files) // 2], files[len(files) // 2 :]]
    processes = _start_workers(workers, log_dir)
    try:
        _wait_for_leases(store, processes)
        started = time.time()
        job_ids = []
        for part, half in zip("ab", halves, strict=True):
            collection = f"bench-{tag}-{part}"
            job_id = uuid.uuid4().hex
            store.create(
                job_id, None, collection, len(half), files=half, runner="worker", lock_key=collection, chunker="fixed"
            )
            job_ids.append(job_id)
        while True:
            jobs = [store.get(job_id) for job_id in job_ids]
            if all(job is not None and job.status in FINAL for job in jobs):
                break
            time.sleep(0.2)
        for job in jobs:
            assert job is not None
            if job.status != "succeeded":
                raise RuntimeError(f"job {job.id} ended {job.status}: {job.error or job.failures}")
        ended = max(job.finished_at or 0.0 for job in jobs if job is not None)
        chunks = sum(job.chunks for job in jobs if job is not None)
        return WorkerRound(workers, len(files), chunks, ended - started)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
        store.close()


def bench_workers(settings: Settings, corpus: Path, limit: int, rounds: list[int]) -> list[WorkerRound]:
    """Each entry of ``rounds`` (worker counts, in order) on the same documents, into fresh collections."""
    if not settings.database_url or not settings.chroma_url:
        raise ValueError("ragline bench workers needs RAGLINE_DATABASE_URL (PostgreSQL) and RAGLINE_CHROMA_URL")
    files = corpus_files(corpus, limit)
    log_dir = settings.data_dir / "bench-workers-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAGLINE_WORKER_POLL_S", "0.2")
    run = uuid.uuid4().hex[:6]
    return [
        run_round(settings, files, workers, f"{run}-r{number}-w{workers}", log_dir)
        for number, workers in enumerate(rounds)
    ]
