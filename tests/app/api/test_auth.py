"""API keys map to tenants; a tenant sees only its own collections, documents and jobs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.api.auth import KeyRing, KeysFileError
from app.resources import Resources
from tests.app.api.conftest import client_for, resources_like, upload, wait_for_job

ACME, GLOBEX = "sk-acme-test-key", "sk-globex-test-key"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, sample_resources: Resources) -> Resources:
    folder = tmp_path_factory.mktemp("api-auth")
    keys = folder / "api_keys.toml"
    digest = hashlib.sha256(GLOBEX.encode()).hexdigest()
    keys.write_text(f'[keys]\n"{ACME}" = "acme"\n"sha256:{digest}" = "globex"\n')
    return resources_like(sample_resources, folder / "data", api_keys_file=keys)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_or_wrong_key_is_401_with_what_to_send(keyed: Resources) -> None:
    client = client_for(keyed)
    assert client.get("/healthz").status_code == 200
    missing = client.get("/v1/collections")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    wrong = client.get("/v1/collections", headers=bearer("sk-nobody"))
    assert wrong.status_code == 401 and "invalid API key" in wrong.json()["error"]["message"]
    chat = client.post("/v1/chat/completions", json={"model": "docs", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 401


def test_tenants_see_only_their_own_collections_documents_and_jobs(keyed: Resources) -> None:
    client = client_for(keyed)
    acme, globex = bearer(ACME), bearer(GLOBEX)
    plan = b"# Plan\n\nAcme ships the rocket skates in May.\n"
    accepted = upload(client, [("plan.md", plan)], acme, collection="docs")
    job = wait_for_job(client, accepted.json()["job_id"], acme)
    assert job["status"] == "succeeded", job
    assert keyed.index.collections() == ["acme__docs"]  # stored under the tenant's prefix

    assert client.get("/v1/collections", headers=acme).json() == {"collections": ["docs"]}
    assert [m["id"] for m in client.get("/v1/models", headers=acme).json()["data"]] == ["docs"]
    assert client.get("/v1/collections", headers=globex).json() == {"collections": []}
    assert client.get("/v1/models", headers=globex).json()["data"] == []

    for response in (
        client.get("/v1/documents", params={"collection": "docs"}, headers=globex),
        client.delete("/v1/documents/plan.md", params={"collection": "docs"}, headers=globex),
        client.get(f"/v1/jobs/{job['id']}", headers=globex),
        client.post("/v1/query", json={"question": "When do skates ship?", "collection": "docs"}, headers=globex),
    ):
        assert response.status_code == 404, response.json()
        assert "acme" not in json.dumps(response.json())
    assert client.get("/v1/jobs", headers=globex).json() == {"jobs": []}
    assert [d["doc_id"] for d in client.get("/v1/documents?collection=docs", headers=acme).json()["documents"]] == [
        "plan.md"
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not toml [", "not valid TOML"),
        ("[keys]\n", "non-empty 'keys' table"),
        ('[keys]\n"k" = "bad_tenant"\n', "no '_'"),
        ('[keys]\n"sha256:abc" = "acme"\n', "64 hex digits"),
    ],
)
def test_a_broken_keys_file_fails_at_start_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(content)
    with pytest.raises(KeysFileError, match=message.replace("'", ".")):
        KeyRing.load(path)


def test_json_keys_file_and_open_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": {ACME: "acme"}}))
    ring = KeyRing.load(path)
    tenant = ring.tenant_for(ACME)
    assert tenant is not None and tenant.name == "acme" and ring.tenant_for(GLOBEX) is None
    local = KeyRing.load(None).tenant_for(None)
    assert local is not None and local.name is None and local.collection("docs") == "docs"
