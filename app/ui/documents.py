"""Documents page logic: store uploads, ingest them through the ingestion job, list and delete documents.

Uploaded files are kept under ``<data_dir>/uploads/<collection>/`` so a document can be re-ingested or inspected
later; their doc id is the file name. Ingestion goes through ``app.ingestion.ingest_from_documents``, the same
incremental, crash-safe write path as ``ragline ingest``, with a callback that drives the page's progress bar.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.chunking import make_chunker
from app.ingestion import ingest_from_documents
from app.resources import Resources
from ingest.document import Document
from ingest.job import IngestSummary, LoadFailure
from ingest.loaders import LOADERS, LoadError, load_document
from retrieval.index import Index

COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
UPLOAD_TYPES = tuple(sorted(suffix.lstrip(".") for suffix in LOADERS))
Progress = Callable[[int, int, str], None]
"""Called after each file with (files done, files in all, doc id)."""


class UploadError(ValueError):
    """An upload that cannot be stored: a bad collection or file name, or a file over the size limit."""


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.fullmatch(name):
        raise UploadError(f"collection name {name!r} must be 1-63 letters, digits, '-' or '_', starting alphanumeric")
    return name


def upload_dir(resources: Resources, collection: str) -> Path:
    return resources.settings.data_dir / "uploads" / check_collection_name(collection)


def upload_limit_mb(resources: Resources) -> float:
    """The per-file limit: the service's upload limit where the settings define one, else the ingestion limit."""
    settings = resources.settings
    return float(getattr(settings, "max_upload_mb", None) or settings.max_file_mb)


def store_uploads(folder: Path, files: Sequence[tuple[str, bytes]], max_mb: float) -> list[Path]:
    """Write uploaded (name, content) pairs into ``folder``; names are reduced to a plain file name."""
    paths = []
    for name, content in files:
        clean = Path(name.replace("\\", "/")).name
        if not clean or clean.startswith("."):
            raise UploadError(f"file name {name!r} is not a plain file name")
        if Path(clean).suffix.lower() not in LOADERS:
            raise UploadError(f"{clean}: unsupported file type; supported: {', '.join(UPLOAD_TYPES)}")
        if len(content) > max_mb * 1e6:
            raise UploadError(f"{clean} is {len(content) / 1e6:.1f} MB, over the {max_mb:g} MB upload limit")
        paths.append((folder / clean, content))
    folder.mkdir(parents=True, exist_ok=True)
    for path, content in paths:
        path.write_bytes(content)
    return [path for path, _ in paths]


def _load(paths: Sequence[Path], root: Path, progress: Progress | None) -> Iterator[Document | LoadFailure]:
    for done, path in enumerate(paths, start=1):
        doc_id = path.relative_to(root).as_posix()
        try:
            yield load_document(path, root)
        except LoadError as exc:
            yield LoadFailure(doc_id, exc.reason)
        if progress is not None:
            progress(done, len(paths), doc_id)


def ingest_files(
    resources: Resources,
    paths: Sequence[Path],
    root: Path,
    collection: str,
    *,
    chunker: str = "fixed",
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest files under ``root`` (doc ids relative to it) into ``collection``; unchanged files are skipped."""
    check_collection_name(collection)
    return ingest_from_documents(
        resources, make_chunker(resources, chunker), _load(paths, root, progress), collection, total=len(paths)
    )


def document_rows(index: Index, collection: str) -> list[dict[str, Any]]:
    """The manifest's documents of a collection, as table rows."""
    return [
        {
            "doc_id": record.doc_id,
            "status": record.status,
            "chunks": record.chunk_count,
            "updated": datetime.fromtimestamp(record.updated_at, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        for record in index.manifest.documents(collection)
    ]


def delete_documents(resources: Resources, collection: str, doc_ids: Sequence[str]) -> list[str]:
    """Remove documents from the index (vectors, BM25, manifest) and their stored upload, if any."""
    index = resources.index
    known = {record.doc_id for record in index.manifest.documents(collection)}
    missing = [doc_id for doc_id in doc_ids if doc_id not in known]
    if missing:
        raise LookupError(f"not in this collection: {', '.join(missing)}")  # a tenant knows it by another name
    folder = upload_dir(resources, collection)
    for doc_id in doc_ids:
        index.delete(collection, doc_id)
        stored = folder / doc_id
        if stored.resolve().is_relative_to(folder.resolve()) and stored.is_file():
            stored.unlink()
    index.commit(collection)
    return list(doc_ids)
