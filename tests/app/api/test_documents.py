"""Uploads become ingestion jobs on a real index; jobs survive a restart; bad uploads are clear 4xx errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.api.jobs import JobStore
from app.resources import Resources
from tests.app.api.conftest import client_for, resources_like, upload, wait_for_job

REFUNDS = b"---\ntitle: Refunds\n---\n# Refunds\n\nEU customers may request a refund within 30 days of purchase.\n"
SHIPPING = b"<html><body><h1>Shipping</h1><p>Orders ship within two business days.</p></body></html>"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, sample_resources: Resources) -> Resources:
    return resources_like(sample_resources, tmp_path_factory.mktemp("api-documents"))


def test_upload_list_reupload_delete_and_restart(fresh: Resources) -> None:
    client = client_for(fresh)
    accepted = upload(
        client,
        [("refunds.md", REFUNDS), ("shipping.html", SHIPPING)],
        collection="docs",
        metadata='{"region": "EU"}',
    )
    assert accepted.status_code == 202, accepted.json()
    job = wait_for_job(client, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["files"] == {"done": 2, "total": 2} and job["chunks"] >= 2 and job["failures"] == {}

    listed = client.get("/v1/documents", params={"collection": "docs"}).json()
    assert [d["doc_id"] for d in listed["documents"]] == ["refunds.md", "shipping.html"]
    assert all(d["status"] == "indexed" and d["chunk_count"] >= 1 for d in listed["documents"])
    assert fresh.index.manifest.chunks("docs")[0].metadata["region"] == "EU"

    same = upload(client, [("refunds.md", REFUNDS)], collection="docs", metadata='{"region": "EU"}')
    again = wait_for_job(client, same.json()["job_id"])
    assert again["summary"]["skipped"] == 1 and again["summary"]["added"] == 0, again
    retagged = upload(client, [("refunds.md", REFUNDS)], collection="docs", metadata='{"region": "UK"}')
    assert wait_for_job(client, retagged.json()["job_id"])["summary"]["updated"] == 1

    assert client.delete("/v1/documents/shipping.html", params={"collection": "docs"}).json() == {
        "collection": "docs",
        "deleted": "shipping.html",
    }
    assert [d["doc_id"] for d in client.get("/v1/documents?collection=docs").json()["documents"]] == ["refunds.md"]
    assert fresh.index.counts("docs").consistent
    gone = client.delete("/v1/documents/shipping.html", params={"collection": "docs"})
    assert gone.status_code == 404 and "GET /v1/documents" in gone.json()["error"]["message"]

    # A new process on the same data dir shows the final state of earlier jobs, and marks unfinished ones.
    JobStore(fresh.settings.data_dir / "ragline.sqlite").create("killed-mid-job", None, "docs", 3)
    restarted = client_for(resources_like(fresh, fresh.settings.data_dir))
    assert restarted.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    interrupted = restarted.get("/v1/jobs/killed-mid-job").json()
    assert interrupted["status"] == "interrupted" and "upload the files again" in interrupted["error"]
    assert restarted.get("/v1/jobs").json()["jobs"][0]["id"] == "killed-mid-job"


def test_bad_uploads_are_clear_client_errors(fresh: Resources, tmp_path: Path) -> None:
    client = client_for(fresh)
    wrong_type = upload(client, [("setup.exe", b"MZ")])
    assert wrong_type.status_code == 415
    assert ".exe" in wrong_type.json()["error"]["message"] and ".pdf" in wrong_type.json()["error"]["message"]

    bad_metadata = upload(client, [("a.md", b"# A\n\ntext")], metadata="{region: EU}")
    assert bad_metadata.status_code == 422 and "metadata is not valid JSON" in bad_metadata.json()["error"]["message"]

    twice = upload(client, [("a.md", b"# A"), ("dir/a.md", b"# B")])
    assert twice.status_code == 422 and "more than once" in twice.json()["error"]["message"]

    bad_collection = upload(client, [("a.md", b"# A")], collection="../etc")
    assert bad_collection.status_code == 422 and "collection" in bad_collection.json()["error"]["message"]

    small = client_for(resources_like(fresh, fresh.settings.data_dir, max_upload_mb=0.01))
    too_big = upload(small, [("big.txt", b"x" * 20_000)])
    assert too_big.status_code == 413 and "RAGLINE_MAX_UPLOAD_MB" in too_big.json()["error"]["message"]

    # A file that passes the type check but cannot be read fails inside the job, with the reason per file.
    latin1 = upload(client, [("latin1.txt", "café".encode("latin-1"))], collection="bad")
    job = wait_for_job(client, latin1.json()["job_id"])
    assert job["status"] == "failed" and "UTF-8" in job["failures"]["latin1.txt"], job
