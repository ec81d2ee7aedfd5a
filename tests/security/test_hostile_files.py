"""Hostile files and file names: each fails alone with a short reason, the rest of the batch is ingested, and no
response, job or CLI output carries a traceback or a server path (issue 19, "one bad file aborts a batch").

Through the real API (TestClient over a real index, jobs on their real thread) and the real CLI in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.resources import Resources
from tests.app.api.conftest import client_for, resources_like, upload, wait_for_job

NESTED_JSON = ("[" * 2000 + "]" * 2000).encode()  # 4 KB that raised RecursionError and failed the whole job
GOOD_FILES = [
    (f"note-{i:02d}.md", f"# Note {i}\n\nThe depot in town {i} opens at {6 + i % 4}:00.\n".encode()) for i in range(13)
]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, sample_resources: Resources) -> Resources:
    return resources_like(sample_resources, tmp_path_factory.mktemp("hostile-files"))


@pytest.fixture(scope="module")
def client(fresh: Resources) -> TestClient:
    return client_for(fresh)


def assert_no_leak(text: str, resources: Resources) -> None:
    """Nothing of the server's insides: no traceback, no data dir (the uploads live there), no temp folder."""
    assert "Traceback" not in text
    assert str(resources.settings.data_dir) not in text and str(resources.settings.data_dir.resolve()) not in text
    assert "/tmp/" not in text and "uploads/" not in text


def ingest(client: TestClient, files: list[tuple[str, bytes]], collection: str) -> tuple[Any, dict[str, Any]]:
    accepted = upload(client, files, collection=collection)
    assert accepted.status_code == 202, accepted.json()
    return accepted.json(), wait_for_job(client, accepted.json()["job_id"])


def test_a_deeply_nested_json_fails_alone_and_the_13_good_files_are_ingested(
    client: TestClient, fresh: Resources
) -> None:
    accepted, job = ingest(client, [*GOOD_FILES, ("nested.json", NESTED_JSON)], "nested")
    assert job["status"] == "partial", job
    assert job["summary"]["added"] == 13 and job["files"] == {"done": 14, "total": 14}, job
    assert job["failures"] == {"nested.json": "JSON nested too deeply (2000 levels, limit 256)"}
    assert job["error"] is None
    assert_no_leak(str(accepted) + str(job), fresh)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("front-matter.md", b"---\nx: " + b"[" * 2000 + b"]" * 2000 + b"\n---\n# T\n\nbody\n", "nested too deeply"),
        ("nested.html", b"<div>" * 3000 + b"<p>deep text</p>" + b"</div>" * 3000, "Excessive depth in document: 256"),
        ("binary.txt", b"\x7fELF\x00\x00\x01\x02" * 64, "binary content"),
        ("latin1.csv", "name,city\nJosé,Málaga\n".encode("latin-1"), "not valid UTF-8"),
        ("fake.docx", b"PK\x03\x04 not really a zip", "malformed DOCX"),
        ("fake.pdf", b"%PDF-1.7\n" + b"\xff" * 512, "PDF"),
    ],
)
def test_each_hostile_file_is_its_own_failure_with_a_reason(
    client: TestClient, fresh: Resources, name: str, content: bytes, reason: str
) -> None:
    accepted, job = ingest(client, [GOOD_FILES[0], (name, content)], "hostile")
    assert set(job["failures"]) == {name} and reason in job["failures"][name], job
    assert job["status"] == "partial" or job["summary"]["skipped"] == 1, job  # the good file may be there already
    assert len(job["failures"][name]) < 200
    assert_no_leak(str(accepted) + str(job), fresh)


def test_a_sidecar_nested_too_deeply_fails_its_document_only(client: TestClient, fresh: Resources) -> None:
    files = [GOOD_FILES[1], ("tagged.md", b"# Tagged\n\nbody"), ("tagged.md.meta.json", b'{"a": ' + NESTED_JSON + b"}")]
    _, job = ingest(client, files, "sidecar")
    assert job["failures"] == {"tagged.md": "sidecar tagged.md.meta.json nested too deeply (2001 levels, limit 256)"}
    assert job["summary"]["added"] == 1, job


def test_over_long_upload_names_are_shortened_and_ingested(client: TestClient, fresh: Resources) -> None:
    long_ascii = "a" * 299 + ".txt"  # 303 characters: 500 before
    long_accents = "é" * 133 + ".txt"  # 266 bytes of é: 500 before
    near_limit = "b" * 249 + ".txt"  # 253 characters: accepted, then the job failed showing the upload path
    sibling = "a" * 299 + ".md"  # the same start as long_ascii: its shortened name must differ
    files = [
        (name, f"Plain text number {i} about depots.".encode())
        for i, name in enumerate([long_ascii, long_accents, near_limit, sibling])
    ]
    files.append((near_limit + ".meta.json", b'{"region": "EU"}'))
    accepted, job = ingest(client, files, "long-names")
    stored = accepted["files"]
    assert all(len(name.encode()) <= 255 for name in stored), stored
    documents = stored[:4]
    assert len(set(documents)) == 4
    assert [Path(name).suffix for name in documents] == [".txt", ".txt", ".txt", ".md"]
    assert (
        documents[0].startswith("a" * 200) and documents[1].startswith("é" * 100) and documents[3].startswith("a" * 200)
    )
    assert stored[4] == documents[2] + ".meta.json"  # the sidecar still belongs to its document

    assert job["status"] == "succeeded" and job["failures"] == {} and job["summary"]["added"] == 4, job
    listed = client.get("/v1/documents", params={"collection": "long-names"}).json()
    assert sorted(d["doc_id"] for d in listed["documents"]) == sorted(documents)
    chunks = fresh.index.manifest.chunks("long-names")
    assert {c.metadata.get("region") for c in chunks if c.doc_id == documents[2]} == {"EU"}
    assert_no_leak(str(accepted) + str(job) + str(listed), fresh)


def test_unusable_upload_names_are_4xx_without_server_paths(client: TestClient, fresh: Resources) -> None:
    for name in ["..", ".hidden.md", "../../etc/.passwd.md", "a" * 300 + ".exe"]:
        response = client.post("/v1/documents", files=[("files", (name, b"# x"))], data={"collection": "odd"})
        assert response.status_code in (415, 422), (name, response.text)
        assert_no_leak(response.text, fresh)


def test_cli_ingest_reports_the_nested_json_and_ingests_the_rest(
    tmp_path: Path, sample_resources: Resources, models_env
) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, content in GOOD_FILES:
        (folder / name).write_bytes(content)
    (folder / "nested.json").write_bytes(NESTED_JSON)
    data_dir = tmp_path / "data"
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", str(folder), "--collection", "hostile"],
        env=models_env(data_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "RecursionError" not in run.stderr + run.stdout
    assert "hostile: 13 added, 0 updated, 0 skipped, 0 deleted, 1 failed" in run.stdout, run.stdout
    assert "failed nested.json: JSON nested too deeply (2000 levels, limit 256)" in run.stdout
