"""Documents of a collection: upload (an ingestion job), list from the manifest, delete; and the jobs themselves.

An upload is validated up front (file names, types, metadata) so a bad request fails with a 4xx at once, not as
a failed job later. Document ids are the uploaded file names: uploading a file again replaces that document. A name
too long for the filesystem is shortened (``stored_name``), and the accepted response lists the names as stored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field

from app.api.deps import JobsDep, ResourcesDep, TenantDep
from app.api.errors import ApiError, error_responses, pipeline_errors
from app.api.jobs import UploadJob
from app.api.tenancy import COLLECTION_PATTERN, require_collection
from app.chunking import CHUNKERS
from ingest.loaders import LOADERS, MAX_NAME_BYTES, SIDECAR_SUFFIX

router = APIRouter(prefix="/v1", tags=["documents"])

CollectionForm = Annotated[str, Form(pattern=COLLECTION_PATTERN, description="Collection to write into.")]
CollectionQuery = Annotated[str, Query(pattern=COLLECTION_PATTERN, description="Collection of the documents.")]
# A stored document name leaves room for its sidecar's name (``<name>.meta.json``) within the filesystem's limit.
_DOCUMENT_NAME_BYTES = MAX_NAME_BYTES - len(SIDECAR_SUFFIX.encode())
_NAME_HASH_CHARS = 10
METADATA_DESCRIPTION = 'JSON object added to every document, e.g. {"region": "EU"}'


class JobAccepted(BaseModel):
    job_id: str
    status: str
    status_url: str
    files: list[str]


class JobFiles(BaseModel):
    done: int
    total: int


class Job(BaseModel):
    id: str
    collection: str
    status: str = Field(description="queued | running | succeeded | partial | failed | interrupted")
    files: JobFiles
    chunks: int
    failures: dict[str, str] = Field(description="File name → why it was not ingested.")
    summary: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None


class JobList(BaseModel):
    jobs: list[Job]


class DocumentInfo(BaseModel):
    doc_id: str
    status: str
    chunk_count: int
    updated_at: float


class DocumentList(BaseModel):
    collection: str
    documents: list[DocumentInfo]


class Deleted(BaseModel):
    collection: str
    deleted: str


class CollectionList(BaseModel):
    collections: list[str]


def _safe_name(raw: str | None) -> str:
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    if not name or name.startswith(".") or any(ord(c) < 32 for c in name):
        raise ApiError(422, f"file name {raw!r} is not usable: send a plain name such as report.pdf")
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in LOADERS:
        raise ApiError(415, f"unsupported file type {suffix or '(none)'} for {name!r}; supported: {', '.join(LOADERS)}")
    return name


def stored_name(name: str) -> str:
    """The name an uploaded file is saved under, which is also its document id.

    A name that fits the filesystem's limit (in UTF-8 bytes, with room for its sidecar's name) is kept as it is.
    A longer one keeps its extension and as much of its beginning as fits, cut on a character boundary, and gains
    a short hash of the whole name, so it stays recognisable and distinct names stay distinct. A sidecar is
    shortened as the document it belongs to, so the two still match.
    """
    if name.endswith(SIDECAR_SUFFIX) and len(name) > len(SIDECAR_SUFFIX):
        return stored_name(name.removesuffix(SIDECAR_SUFFIX)) + SIDECAR_SUFFIX
    if len(name.encode("utf-8")) <= _DOCUMENT_NAME_BYTES:
        return name
    path = PurePosixPath(name)
    suffix = path.suffix if path.suffix.lower() in LOADERS else ""
    tag = "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:_NAME_HASH_CHARS]
    room = _DOCUMENT_NAME_BYTES - len(suffix.encode("utf-8")) - len(tag)
    start = name.removesuffix(suffix).encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{start}{tag}{suffix}"


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(422, f"metadata is not valid JSON ({exc.msg} at character {exc.pos}); send an object") from None
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float | bool) for v in value.values()):
        raise ApiError(422, 'metadata must be a JSON object of scalar values, e.g. {"region": "EU"}')
    return value


@router.post(
    "/documents",
    status_code=202,
    response_model=JobAccepted,
    responses=error_responses(400, 401, 413, 415, 422),
)
def upload_documents(
    files: Annotated[
        list[UploadFile], File(min_length=1, description="Files: md, txt, html, pdf, json, docx, csv, tsv.")
    ],
    resources: ResourcesDep,
    jobs: JobsDep,
    tenant: TenantDep,
    collection: CollectionForm = "sample",
    chunker: Annotated[
        str | None, Form(description=f"One of {', '.join(CHUNKERS)}; default: the `chunker` setting.")
    ] = None,
    metadata: Annotated[str | None, Form(description=METADATA_DESCRIPTION)] = None,
) -> JobAccepted:
    """Start an ingestion job for the uploaded files; poll ``status_url`` for its progress.

    The files are stored in the database with the job (any worker on any host can run it); the body size limit
    (``max_upload_mb``) bounds what that holds."""
    chunker = chunker or resources.settings.chunker
    if chunker not in CHUNKERS:
        raise ApiError(422, f"unknown chunker {chunker!r}; choose one of {', '.join(CHUNKERS)}")
    if not files:
        raise ApiError(422, "no files: send one or more multipart fields named 'files'")
    names = [stored_name(_safe_name(upload.filename)) for upload in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ApiError(422, f"file name(s) {', '.join(duplicates)} appear more than once in this upload")
    extra = _metadata(metadata)
    stored = [(name, upload.file.read()) for name, upload in zip(names, files, strict=True)]
    job = jobs.submit(
        UploadJob(stored, tenant.collection(collection), chunker, extra),
        tenant.name,
        files_total=sum(not n.endswith(SIDECAR_SUFFIX) for n in names),  # sidecars are metadata, not files
        logical_collection=collection,
    )
    return JobAccepted(job_id=job.id, status=job.status, status_url=f"/v1/jobs/{job.id}", files=names)


@router.get("/jobs/{job_id}", response_model=Job, responses=error_responses(401, 404))
def get_job(job_id: str, jobs: JobsDep, tenant: TenantDep) -> dict[str, Any]:
    """Progress of an ingestion job: files done of total, chunks written, per-file failures."""
    job = jobs.store.get(job_id)
    if job is None or job.tenant != tenant.name:
        raise ApiError(404, f"no ingestion job {job_id!r}; POST /v1/documents returns the id of a new one")
    return job.as_dict()


@router.get("/jobs", response_model=JobList, responses=error_responses(401))
def list_jobs(
    jobs: JobsDep, tenant: TenantDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, list[dict[str, Any]]]:
    """The tenant's most recent ingestion jobs, newest first."""
    return {"jobs": [job.as_dict() for job in jobs.store.list(tenant.name, limit)]}


@router.get("/documents", response_model=DocumentList, responses=error_responses(401, 404, 422))
def list_documents(resources: ResourcesDep, tenant: TenantDep, collection: CollectionQuery = "sample") -> Any:
    """The documents of a collection, from the manifest."""
    with pipeline_errors():
        stored = require_collection(resources.index, tenant, collection)
    records = resources.index.manifest.documents(stored)
    return {
        "collection": collection,
        "documents": [
            {"doc_id": r.doc_id, "status": r.status, "chunk_count": r.chunk_count, "updated_at": r.updated_at}
            for r in records
        ],
    }


@router.delete("/documents/{doc_id:path}", response_model=Deleted, responses=error_responses(401, 404, 409, 422))
def delete_document(
    doc_id: str, resources: ResourcesDep, jobs: JobsDep, tenant: TenantDep, collection: CollectionQuery = "sample"
) -> Any:
    """Remove a document (its chunks, vectors and BM25 rows) from a collection."""
    with pipeline_errors():
        stored = require_collection(resources.index, tenant, collection)
    index = resources.index
    if not jobs.in_process and jobs.store.busy(stored):  # a worker may be writing it: one writer per collection
        raise ApiError(
            409, f"an ingestion job for collection {collection!r} is queued or running; delete after it ends"
        )
    with jobs.write_lock:
        if index.manifest.document(stored, doc_id) is None:
            raise ApiError(404, f"no document {doc_id!r} in collection {collection!r}; GET /v1/documents lists them")
        index.delete(stored, doc_id)
        index.commit(stored)
    return {"collection": collection, "deleted": doc_id}


@router.get("/collections", response_model=CollectionList, responses=error_responses(401))
def collections(resources: ResourcesDep, tenant: TenantDep) -> dict[str, list[str]]:
    """The caller's collections."""
    return {"collections": tenant.visible(resources.index.collections())}
