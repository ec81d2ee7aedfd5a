"""Checks run INSIDE the lab (``unshare --net --mount``), by ``test_multihost.py``; not collected on their own.

One deployment for the module, the checks in order: each leaves the cluster as the next one expects it.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.jobs.execute import FAULT_SLOW_CHUNKING_ENV
from tests.multihost.cluster import PYTHON, Api, Cluster, query, start_cluster
from tests.multihost.lab import Lab, Process, wait_until

QUESTION = "How long do EU customers have to request a refund?"
FOLLOW_UP = "And which customers does that rule cover?"
SHORT = {"max_answer_tokens": 24}
NEW_FACT = (
    "# Orbital widget returns\n\nOrbital widgets bought in the Zephyr store can be returned within 47 days. "
    "The Zephyr returns desk is staffed by the quartermaster team.\n"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="ragline-lab-"))
    root.chmod(0o755)  # the postgres user must reach its folder inside
    lab = Lab(root)
    try:
        built = start_cluster(
            lab,
            root,
            vllm_socket=Path(os.environ["RAGLINE_LAB_VLLM_SOCKET"]),
            generator=os.environ["RAGLINE_GENERATOR"],
            models_dir=Path(os.environ["RAGLINE_MODELS_DIR"]),
        )
        a = built.apis["api-a"]
        a.host.call([PYTHON, "-m", "app.cli", "ingest", "ingest/sample_corpus", "--collection", "sample"],
                    env={**built.env, "RAGLINE_DATA_DIR": str(a.data_dir)}, timeout=600)  # fmt: skip
        for name in built.apis:
            built.wait_api(name)
        yield built
    except Exception:
        print(built.logs() if "built" in locals() else "")
        raise
    finally:
        lab.close()


def counts(cluster: Cluster, api: Api, collection: str) -> dict[str, Any]:
    """Manifest, Chroma and BM25 counts of a collection, read on ``api``'s host by ragline itself."""
    script = (
        "import json; from app.resources import Resources; from app.settings import Settings;"
        f"c = Resources(Settings()).index.counts({collection!r});"
        "print(json.dumps({'documents': c.documents, 'chunks': c.chunks, 'vectors': c.vectors, "
        "'bm25_rows': c.bm25_rows, 'consistent': c.consistent}))"
    )
    out = api.host.call([PYTHON, "-c", script], env={**cluster.env, "RAGLINE_DATA_DIR": str(api.data_dir)})
    return json.loads(out.strip().splitlines()[-1])


def upload(api: Api, collection: str, files: dict[str, str]) -> str:
    with api.client() as client:
        response = client.post(
            "/v1/documents",
            files=[("files", (name, text.encode())) for name, text in files.items()],
            data={"collection": collection},
        )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def job(api: Api, job_id: str) -> dict[str, Any]:
    with api.client() as client:
        return dict(client.get(f"/v1/jobs/{job_id}").json())


def wait_job(api: Api, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def ended() -> bool:
        state.update(job(api, job_id))
        return state["status"] not in ("queued", "running")

    wait_until(ended, what=f"job {job_id}", timeout_s=timeout_s)
    return state


def stage(answer: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in answer["trace"]["stages"] if entry["stage"] == name)


def test_a_document_uploaded_on_a_is_answered_from_b_with_bm25_and_dense_hits(cluster: Cluster) -> None:
    # worker1 is the one check 2 kills mid-job: the named fault injection slows its chunking (1.5 s a document) so
    # that a job of 24 documents is surely half done when it dies, however fast the machine is
    cluster.start_worker(cluster.lab.add_host("worker1", 21), env={FAULT_SLOW_CHUNKING_ENV: "1.5"})
    a, b = cluster.apis["api-a"], cluster.apis["api-b"]
    done = wait_job(a, upload(a, "sample", {"orbital-returns.md": NEW_FACT}))
    assert done["status"] == "succeeded", done
    answer = query(b, "Within how many days can Orbital widgets from the Zephyr store be returned?",
                   collection="sample", options=SHORT)  # fmt: skip
    sources = {c["source"] for c in answer["citations"]}
    assert any("orbital-returns" in s for s in sources), (answer["answer"], sources, cluster.logs())
    for searcher in ("bm25", "dense"):  # B found it both ways: its BM25 cache followed A's write
        hits = stage(answer, searcher)["hits"]
        assert any("orbital-returns" in hit["doc_id"] for hit in hits), (searcher, hits)


def test_killing_the_worker_and_replica_a_mid_ingestion_loses_nothing(cluster: Cluster) -> None:
    a, b = cluster.apis["api-a"], cluster.apis["api-b"]
    files = {f"manual-{i:02d}.md": f"# Manual {i}\n\n" + f"Part {i} of the widget manual. " * 200 for i in range(24)}
    job_id = upload(a, "manuals", files)
    # documents are chunked one by one after all are loaded: a first chunk count means the job is under way
    wait_until(lambda: job(b, job_id)["chunks"] > 0, what="ingestion under way", timeout_s=300)
    assert a.process is not None
    a.process.kill(signal.SIGKILL)
    for worker in cluster.workers:
        worker.kill(signal.SIGKILL)
    try:
        at_kill = job(b, job_id)
        assert at_kill["status"] == "running", at_kill  # killed mid-job, not after it
        cluster.start_worker(cluster.lab.add_host("worker2", 22))
        done = wait_job(b, job_id, timeout_s=900)
    finally:
        cluster.start_api("api-a")  # the next checks need A again, whatever happened here
    assert done["status"] == "succeeded" and done["files"]["done"] == len(files), done
    after = counts(cluster, b, "manuals")
    clean = cluster.root / "clean"  # the lab's hosts share the machine's files: only their networks differ
    clean.mkdir()
    for name, text in files.items():
        (clean / name).write_text(text)
    b.host.call([PYTHON, "-m", "app.cli", "ingest", str(clean), "--collection", "manuals-clean"],
                env={**cluster.env, "RAGLINE_DATA_DIR": str(b.data_dir)}, timeout=900)  # fmt: skip
    expected = counts(cluster, b, "manuals-clean")
    assert after["consistent"] and after == expected, (after, expected)


def test_a_session_continues_on_b_after_a_is_killed(cluster: Cluster) -> None:
    a, b = cluster.apis["api-a"], cluster.apis["api-b"]
    with a.client() as client:
        created = client.post("/v1/sessions", json={"collection": "sample", "user": "lab"})
    assert created.status_code == 201, created.text
    session = created.json()["id"]
    query(a, QUESTION, session_id=session, options=SHORT)
    assert a.process is not None
    a.process.kill(signal.SIGKILL)
    query(b, FOLLOW_UP, session_id=session, options=SHORT)
    with b.client() as client:
        exported = client.get(f"/v1/sessions/{session}").json()
    turns = exported["turns"]
    assert [t["question"] for t in turns] == [QUESTION, FOLLOW_UP], turns
    assert turns[0]["position"] < turns[1]["position"] and all(t["answer"] for t in turns), turns
    cluster.start_api("api-a")


def test_two_concurrent_writes_to_one_collection_are_serialised(cluster: Cluster) -> None:
    a, b = cluster.apis["api-a"], cluster.apis["api-b"]
    cluster.start_worker(cluster.lab.add_host("worker3", 23))  # two workers now: both could take a job
    first = upload(a, "shared", {f"a-{i}.md": f"# A {i}\n\nAlpha notes {i}. " * 200 for i in range(6)})
    second = upload(b, "shared", {f"b-{i}.md": f"# B {i}\n\nBeta notes {i}. " * 200 for i in range(6)})
    jobs = [wait_job(a, first), wait_job(b, second)]
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    jobs.sort(key=lambda j: j["started_at"])
    assert jobs[0]["finished_at"] <= jobs[1]["started_at"], jobs  # one writer at a time on one collection
    assert counts(cluster, a, "shared")["consistent"]


def test_killing_one_llm_replica_costs_no_failed_query(cluster: Cluster) -> None:
    b = cluster.apis["api-b"]
    query(b, QUESTION, collection="sample", options=SHORT)
    relay: Process = cluster.llm_relays[1]
    relay.kill(signal.SIGKILL)  # llm2's port now refuses, as a crashed server's would
    started = time.monotonic()
    answers = [query(b, QUESTION, collection="sample", options=SHORT) for _ in range(3)]
    assert all(answer["answer"] for answer in answers), answers
    print(f"3 queries after the replica died: {time.monotonic() - started:.1f} s")
