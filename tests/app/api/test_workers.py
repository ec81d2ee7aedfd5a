"""Ingestion workers on real parts: PostgreSQL (the conftest server), a Chroma server, the real embedder, and
`ragline worker` subprocesses, killed with SIGKILL where the test says so.

The API (a TestClient in this process) only enqueues when a PostgreSQL ``database_url`` is set; workers share the
API's data dir on this host (BM25 files) and the Chroma server (vectors).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.jobs.execute import FAULT_SLOW_CHUNKING_ENV
from app.jobs.store import JobRecord, JobStore
from app.jobs.worker import Worker
from app.resources import Resources
from app.settings import Settings
from app.vllm_server import free_port
from retrieval.index import Index
from retrieval.store import open_store
from retrieval.store.leases import WriterLease
from tests.app.api.conftest import client_for, resources_like, upload
from tests.conftest import _as_postgres_user, _postgres_bindir

REPO = Path(__file__).resolve().parents[3]
LEASE_S = "10"  # seconds: long enough that a starved heartbeat on a loaded 2-core machine still renews in time


def corpus(count: int, tag: str = "") -> list[tuple[str, bytes]]:
    """``count`` distinct small Markdown documents (a topic word each, so a search can find one)."""
    topics = ["glacier", "volcano", "harbour", "orchard", "lighthouse", "canyon", "meadow", "reef"]
    files = []
    for i in range(count):
        topic = topics[i % len(topics)]
        body = (
            f"# {topic.title()} note {i}{tag}\n\nThe {topic} survey number {i} recorded {i * 7 % 13} events. "
            f"Field teams visited the {topic} site in week {i % 52} and logged weather, access and hazards.\n\n"
            f"A second paragraph about the {topic} keeps the document longer than one sentence ({i})."
        )
        files.append((f"note-{i:03d}.md", body.encode()))
    return files


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, settings_for: Callable[..., Settings]) -> Resources:
    """Resources whose embedder is loaded once for the module (the real model)."""
    resources = Resources(settings_for(tmp_path_factory.mktemp("worker-models")))
    assert resources.embedder is not None
    return resources


@pytest.fixture
def pg_resources(embedded: Resources, postgres_url: str, chroma_url: str, tmp_path: Path) -> Resources:
    """The API's resources: PostgreSQL, the Chroma server, a data dir of its own, the module's loaded embedder."""
    return resources_like(
        embedded, tmp_path / "data", database_url=postgres_url, chroma_url=chroma_url, writer_lease_s=3.0
    )


@pytest.fixture
def start_worker(
    pg_resources: Resources, models_env: Callable[..., dict[str, str]]
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``start_worker(**env)``: a `ragline worker` subprocess on the API's database, Chroma server and data dir."""
    started: list[subprocess.Popen[str]] = []
    settings = pg_resources.settings

    def start(*args: str, **extra: str) -> subprocess.Popen[str]:
        env = models_env(
            settings.data_dir,
            RAGLINE_DATABASE_URL=str(settings.database_url),
            RAGLINE_CHROMA_URL=str(settings.chroma_url),
            RAGLINE_WRITER_LEASE_S=LEASE_S,
            RAGLINE_WORKER_POLL_S="0.2",
            PYTHONPATH=str(REPO),
            **extra,
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        log = (settings.data_dir / f"worker-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        started.append(process)
        return process

    yield start
    for number, process in enumerate(started):
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        print(f"---- worker {number} log ----")  # shown when the test failed
        print((settings.data_dir / f"worker-{number}.log").read_text()[-4000:])


def job_store(resources: Resources) -> JobStore:
    return JobStore(resources.settings.data_dir / "ragline.sqlite", database_url=resources.settings.database_url)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 240) -> None:
    """Poll until ``condition`` holds; the deadline only keeps a hung worker from hanging the suite."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def finished(store: JobStore, job_id: str) -> JobRecord:
    job = store.get(job_id)
    assert job is not None
    return job


def test_an_upload_is_queued_and_run_by_worker_processes_one_collection_at_a_time(
    pg_resources: Resources, start_worker: Callable[..., subprocess.Popen[str]]
) -> None:
    client = client_for(pg_resources)
    store = job_store(pg_resources)
    first = upload(client, corpus(6), collection="docs").json()
    second = upload(client, corpus(6, tag=" (revised)"), collection="docs").json()  # same names: replaces them
    other = upload(client, corpus(3), collection="other").json()
    queued = finished(store, first["job_id"])
    assert queued.status == "queued" and queued.runner == "worker" and queued.lock_key == "docs"
    assert [name for name, _ in store.files(first["job_id"])] == [f"note-{i:03d}.md" for i in range(6)]
    time.sleep(1.0)
    assert finished(store, first["job_id"]).status == "queued"  # the API runs nothing itself with PostgreSQL

    workers = [start_worker(), start_worker()]
    ids = [first["job_id"], second["job_id"], other["job_id"]]
    wait_until(lambda: all(finished(store, i).status not in ("queued", "running") for i in ids), "the three jobs")
    jobs = [finished(store, i) for i in ids]
    assert [job.status for job in jobs] == ["succeeded"] * 3, [job.error for job in jobs]
    assert all(job.attempts == 1 for job in jobs)
    a, b = jobs[0], jobs[1]
    assert a.finished_at is not None and b.started_at is not None and a.finished_at <= b.started_at  # in order
    assert b.summary is not None and b.summary["updated"] == 6
    assert store.files(first["job_id"]) == []  # a finished job's bytes are dropped

    index = pg_resources.index
    assert index.counts("docs") == index.counts("docs") and index.counts("docs").consistent
    assert index.counts("docs").documents == 6 and index.counts("other").documents == 3
    dense = index.search_dense("docs", "lighthouse survey revised", 3)
    bm25 = index.search_bm25("docs", "lighthouse revised", 3)
    assert dense and bm25 and "(revised)" in bm25[0].chunk.text
    listed = client.get(f"/v1/jobs/{second['job_id']}").json()
    assert listed["status"] == "succeeded" and listed["files"] == {"done": 6, "total": 6}
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0


def test_a_worker_killed_mid_job_has_its_job_finished_by_another_with_nothing_lost_or_doubled(
    pg_resources: Resources, start_worker: Callable[..., subprocess.Popen[str]]
) -> None:
    client = client_for(pg_resources)
    store = job_store(pg_resources)
    files = corpus(40)
    killed_job = upload(client, files, collection="killed").json()["job_id"]
    index = pg_resources.index
    # Fault injection: each document's chunking is slowed, so the kill lands with part of the job written.
    doomed = start_worker(RAGLINE_INGEST_BATCH_DOCUMENTS="4", **{FAULT_SLOW_CHUNKING_ENV: "0.15"})
    wait_until(
        lambda: "killed" in index.collections() and len(index.manifest.documents("killed")) >= 8, "a part written"
    )
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=30)
    holder = finished(store, killed_job)
    assert holder.status == "running" and holder.files_done < len(files)

    clean_job = upload(client, files, collection="clean").json()["job_id"]  # the same files, ingested once
    rescuer = start_worker()
    wait_until(lambda: finished(store, killed_job).status not in ("queued", "running"), "the retried job")
    wait_until(lambda: finished(store, clean_job).status not in ("queued", "running"), "the clean job")
    retried = finished(store, killed_job)
    assert retried.status == "succeeded" and retried.attempts == 2, retried.error
    assert retried.worker != holder.worker
    assert retried.summary is not None and retried.summary["skipped"] >= 4  # the dead worker's finished batches
    killed, clean = index.counts("killed"), index.counts("clean")
    assert killed.consistent and clean.consistent
    assert (killed.documents, killed.chunks, killed.vectors, killed.bm25_rows) == (
        clean.documents,
        clean.chunks,
        clean.vectors,
        clean.bm25_rows,
    )
    assert sorted(c.text for c in index.manifest.chunks("killed")) == sorted(
        c.text for c in index.manifest.chunks("clean")
    )
    assert index.manifest.abandoned_documents("killed") == [] and all(
        d.status == "indexed" for d in index.manifest.documents("killed")
    )
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=60) == 0


def test_concurrent_claimers_never_take_the_same_job_and_keep_one_job_per_collection_running(
    postgres_url: str, tmp_path: Path
) -> None:
    store = JobStore(tmp_path / "unused.sqlite", database_url=postgres_url)
    jobs = [f"job-{i:02d}" for i in range(24)]
    for i, job_id in enumerate(jobs):
        store.create(job_id, None, f"c{i % 3}", 1, runner="worker", lock_key=f"c{i % 3}")
    database = open_store(tmp_path / "unused.sqlite", postgres_url, "index")
    leases = [WriterLease(database, 30).start() for _ in range(6)]
    claimed: list[str] = []
    starts: dict[str, list[str]] = {"c0": [], "c1": [], "c2": []}  # per collection, in the order jobs started
    running: dict[str, str] = {}  # collection -> the job running in it now
    problems: list[str] = []
    guard = threading.Lock()

    def work(lease: WriterLease) -> None:
        while True:
            job = store.claim(lease.id, max_attempts=3)
            if job is None:
                with guard:
                    if len(claimed) == len(jobs):
                        return
                time.sleep(0.01)
                continue
            key = job.lock_key or ""
            with guard:
                if key in running:
                    problems.append(f"{job.id} started while {running[key]} ran")
                running[key] = job.id
                claimed.append(job.id)
                starts[key].append(job.id)
            time.sleep(0.02)
            with guard:
                del running[key]
            if not store.update(job.id, owner=lease.id, status="succeeded", finished_at=time.time()):
                problems.append(f"{job.id} was no longer held by its claimer")

    threads = [threading.Thread(target=work, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(claimed) == jobs  # every job, each exactly once
    assert problems == []
    assert all(order == sorted(order) for order in starts.values())  # one collection's jobs in accepted order
    for lease in leases:
        lease.release()


def test_repair_rolls_back_only_writes_whose_writer_is_gone(
    postgres_url: str, embedded: Resources, tmp_path: Path
) -> None:
    from retrieval.index import DocumentWrite
    from retrieval.types import Chunk

    index = Index(tmp_path / "data", embedded.embedder, database_url=postgres_url, lease_s=3.0)
    database = index.manifest.database
    alive, dead = WriterLease(database, 30).start(), WriterLease(database, 3).start()
    for lease, doc in ((alive, "alive.md"), (dead, "dead.md")):
        index.manifest.begin_replace("c", doc, "h", [Chunk(id=doc, doc_id=doc, text=f"text of {doc}")], lease)
    dead.release()  # its process is gone
    assert index.repair("c") == ["dead.md"]
    assert [d.doc_id for d in index.manifest.documents("c")] == ["alive.md"]  # another live writer's: untouched
    index.write("c", [DocumentWrite("mine.md", "h", [Chunk(id="mine", doc_id="mine.md", text="mine")])])
    assert index.manifest.document("c", "mine.md").status == "indexed"  # type: ignore[union-attr]
    with pytest.raises(Exception, match="expired"):
        index.manifest.begin_replace("c", "late.md", "h", [], dead)  # a lost lease writes nothing more
    alive.release()


class RestartablePostgres:
    """A PostgreSQL cluster of this test's own (the session's server must stay up for the others): stop and
    start it to play a database outage."""

    def __init__(self, root: Path) -> None:
        self.bindir, self.root, self.port = _postgres_bindir(), root, free_port()
        self.as_user = _as_postgres_user(root)
        self.data = root / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def outage_postgres() -> Iterator[RestartablePostgres]:
    root = Path(tempfile.mkdtemp(prefix="ragline-pg-outage-"))
    server = RestartablePostgres(root)
    yield server
    subprocess.run(
        [*server.as_user, str(server.bindir / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(root, ignore_errors=True)


def test_a_database_outage_is_a_503_and_the_worker_resumes_the_job_when_it_returns(
    embedded: Resources, outage_postgres: RestartablePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = resources_like(
        embedded,
        tmp_path / "data",
        database_url=outage_postgres.url,
        writer_lease_s=3.0,
        ingest_batch_documents=2,
        worker_poll_s=0.2,
    )
    client = client_for(resources)
    store = job_store(resources)
    job_id = upload(client, corpus(12), collection="docs").json()["job_id"]
    monkeypatch.setenv(FAULT_SLOW_CHUNKING_ENV, "0.3")  # fault injection: the outage lands mid-job
    worker, stop = Worker(resources), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: finished(store, job_id).files_done >= 3, "the job under way")
        outage_postgres.stop()
        down = upload(client, corpus(1), collection="docs")
        assert down.status_code == 503, down.text
        assert "database is unavailable" in down.json()["error"]["message"]
        assert client.get(f"/v1/jobs/{job_id}").status_code == 503
        wait_until(lambda: worker.stats.unavailable >= 2, "the worker retrying")
        outage_postgres.start()
        wait_until(lambda: finished(store, job_id).status not in ("queued", "running"), "the resumed job")
    finally:
        stop.set()
        thread.join(timeout=120)
        worker.close()
    job = finished(store, job_id)
    assert job.status == "succeeded", job.error
    assert worker.stats.lost >= 1 and worker.stats.jobs == {job_id: "succeeded"}
    counts = resources.index.counts("docs")
    assert counts.documents == 12 and counts.consistent
    assert all(d.status == "indexed" for d in resources.index.manifest.documents("docs"))
