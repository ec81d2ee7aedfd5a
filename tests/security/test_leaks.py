"""No leaks between tenants or out of unfinished writes: errors name only the caller's collections, session ids
are per tenant, a document still being written (pending) is never an answer, and restarts touch only job files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.api.errors import ApiError, pipeline_errors
from app.api.jobs import JOB_UPLOADS, JobStore
from app.api.state import repair_unfinished_writes
from app.resources import Resources
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import DocumentWrite, Index, UnknownCollectionError
from retrieval.types import Chunk
from tests.app.api.conftest import client_for, resources_like, upload, wait_for_job

ACME, GLOBEX = "sk-acme-leak-key", "sk-globex-leak-key"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, sample_resources: Resources) -> Resources:
    folder = tmp_path_factory.mktemp("leaks")
    keys = folder / "api_keys.toml"
    digest = hashlib.sha256(GLOBEX.encode()).hexdigest()
    keys.write_text(f'[keys]\n"{ACME}" = "acme"\n"sha256:{digest}" = "globex"\n')
    return resources_like(sample_resources, folder / "data", api_keys_file=keys)


def test_a_deleted_collection_is_a_404_that_names_no_other_tenants_collection(keyed: Resources) -> None:
    client = client_for(keyed)
    acme, globex = bearer(ACME), bearer(GLOBEX)
    for headers, collection, name in ((acme, "docs", "plan.md"), (globex, "secret-mergers", "deal.md")):
        accepted = upload(client, [(name, b"# Note\n\nThe launch moves to June.\n")], headers, collection=collection)
        assert wait_for_job(client, accepted.json()["job_id"], headers)["status"] == "succeeded"
    session = client.post("/v1/sessions", json={"collection": "docs"}, headers=acme)
    assert session.status_code == 201, session.json()
    assert client.delete("/v1/documents/plan.md", params={"collection": "docs"}, headers=acme).status_code == 200

    asked = [
        client.post("/v1/query", json={"question": "When is the launch?", "collection": "docs"}, headers=acme),
        client.post(
            "/v1/query", json={"question": "When is the launch?", "session_id": session.json()["id"]}, headers=acme
        ),
        client.get("/v1/documents", params={"collection": "docs"}, headers=acme),
    ]
    for response in asked:
        assert response.status_code == 404, response.json()
        text = response.text
        assert "globex" not in text and "secret-mergers" not in text and "acme__" not in text


def test_the_index_message_listing_every_collection_never_reaches_a_client() -> None:
    with pytest.raises(ApiError) as raised, pipeline_errors():
        raise UnknownCollectionError("acme__docs", ["acme__docs", "globex__secret-mergers"])
    assert raised.value.status == 404
    assert "globex" not in raised.value.message and "acme__docs" not in raised.value.message


def test_session_ids_are_per_tenant(keyed: Resources) -> None:
    client = client_for(keyed)
    acme, globex = bearer(ACME), bearer(GLOBEX)
    mine = client.post("/v1/sessions", json={"session_id": "standup", "collection": "secret-mergers"}, headers=globex)
    assert mine.status_code == 201, mine.json()
    upload_ok = upload(client, [("team.md", b"# Team\n\nStandups are at 9:15.\n")], acme, collection="team")
    assert wait_for_job(client, upload_ok.json()["job_id"], acme)["status"] == "succeeded"
    theirs = client.post("/v1/sessions", json={"session_id": "standup", "collection": "team"}, headers=acme)
    assert theirs.status_code == 201, theirs.json()  # the same id is free for another tenant: it reveals nothing
    assert (
        client.post("/v1/sessions", json={"session_id": "standup", "collection": "team"}, headers=acme).status_code
        == 409
    )
    assert client.get("/v1/sessions/standup", headers=acme).json()["session"]["collection"] == "acme__team"
    assert (
        client.get("/v1/sessions/standup", headers=globex).json()["session"]["collection"] == "globex__secret-mergers"
    )
    assert client.delete("/v1/sessions/standup", headers=acme).status_code == 204
    assert client.get("/v1/sessions/standup", headers=globex).status_code == 200


class CrashBeforeIndexed(Exception):
    """A fake fault: the process dies between storing a document's vectors and marking it indexed. A real kill -9
    lands there only by chance (tests/ingest/test_crash_safety.py kills at random); this puts it there every time."""


@pytest.fixture
def crashed_index(tmp_path: Path, embedder_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Index:
    index = Index(tmp_path / "data", SentenceTransformerEmbedder(embedder_dir))
    refunds = Chunk(id="refunds", doc_id="refunds.md", text="Refunds take five working days.")
    index.write("docs", [DocumentWrite("refunds.md", "h1", [refunds])])
    index.commit("docs")

    def crash(collection: str, doc_id: str, writer: object = None) -> None:
        raise CrashBeforeIndexed(doc_id)

    monkeypatch.setattr(index.manifest, "mark_indexed", crash)
    draft = Chunk(id="draft", doc_id="draft.md", text="Refunds are paid in gold coins within an hour.")
    with pytest.raises(CrashBeforeIndexed):
        index.write("docs", [DocumentWrite("draft.md", "h2", [draft])])
    monkeypatch.undo()
    index.commit("docs")
    return index


def test_a_pending_document_is_never_retrieved_by_either_search(crashed_index: Index) -> None:
    assert crashed_index.manifest.pending_documents("docs") == ["draft.md"]
    assert crashed_index.vectors.count("docs") == 2  # its vector is in Chroma
    dense = crashed_index.search_dense("docs", "refunds paid in gold coins", 5)
    bm25 = crashed_index.search_bm25("docs", "refunds paid in gold coins", 5)
    assert [h.chunk.doc_id for h in dense] == ["refunds.md"] and [h.chunk.doc_id for h in bm25] == ["refunds.md"]


def test_start_up_rolls_back_writes_whose_writer_is_gone_and_leaves_live_ones(crashed_index: Index) -> None:
    assert repair_unfinished_writes(crashed_index) == {}  # its writer (a live lease) may still finish it
    assert crashed_index.manifest.pending_documents("docs") == ["draft.md"]
    crashed_index.writer.release()  # the writer's process is gone: its lease no longer live
    assert repair_unfinished_writes(crashed_index) == {"docs": ["draft.md"]}
    assert crashed_index.manifest.pending_documents("docs") == []
    assert crashed_index.counts("docs").consistent and crashed_index.vectors.count("docs") == 1


def test_a_restart_removes_only_interrupted_jobs_files(keyed: Resources, tmp_path: Path) -> None:
    resources = resources_like(keyed, tmp_path / "data", api_keys_file=None)
    ui_upload = resources.settings.data_dir / "uploads" / "docs" / "kept.md"
    ui_upload.parent.mkdir(parents=True)
    ui_upload.write_text("# Kept\n")
    JobStore(resources.settings.data_dir / "ragline.sqlite").create("died", None, "docs", 1)
    died = resources.settings.data_dir / JOB_UPLOADS / "died" / "a.md"
    died.parent.mkdir(parents=True)
    died.write_text("# A\n")
    client = client_for(resources)
    assert client.get("/v1/jobs/died").json()["status"] == "interrupted"
    assert ui_upload.exists() and not died.parent.exists()
