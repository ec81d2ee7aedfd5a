"""Where settings meet the ingestion job: every caller (CLI, API jobs, UI, benches, experiments) ingests through
these functions, so batch size and file limits come from ``Settings`` the same way everywhere.

``run_ingest`` is the whole job from settings and a chunker name (the CLI); ``ingest_from_path`` and
``ingest_from_documents`` take the process ``Resources`` and an already-built chunker, for callers that hold
resources already or wrap the chunker (the API job runner counts chunks as they are made).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.settings import Settings

if TYPE_CHECKING:
    from app.resources import Resources
    from ingest.document import Document
    from ingest.job import Chunker, IngestSummary, LoadFailure


def run_ingest(
    settings: Settings, path: Path, collection: str, *, prune: bool, meta: dict[str, str], chunker: str
) -> IngestSummary:
    """Ingest ``path`` into ``collection`` incrementally with the models and limits ``settings`` name."""
    from app.chunking import make_chunker
    from app.resources import Resources

    resources = Resources(settings)
    return ingest_from_path(resources, make_chunker(resources, chunker), path, collection, prune=prune, meta=meta)


def ingest_from_path(
    resources: Resources,
    chunker: Chunker,
    path: Path,
    collection: str,
    *,
    prune: bool = False,
    meta: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> IngestSummary:
    """Ingest a file or a folder (doc ids relative to the folder), skipping files over ``max_file_mb`` and
    writing ``ingest_batch_documents`` documents per batch; ``meta`` is added to every document's metadata."""
    from ingest.job import ingest_path

    settings = resources.settings
    return ingest_path(
        resources.index,
        chunker,
        path,
        collection,
        prune=prune,
        extra_metadata=meta,
        max_file_mb=settings.max_file_mb,
        batch_documents=settings.ingest_batch_documents,
        progress=progress,
    )


def ingest_from_documents(
    resources: Resources,
    chunker: Chunker,
    documents: Iterable[Document | LoadFailure],
    collection: str,
    *,
    total: int | None = None,
    prune: bool = False,
    progress: bool = False,
) -> IngestSummary:
    """Ingest documents loaded by the caller (uploads, a BEIR corpus), ``ingest_batch_documents`` per batch;
    ``total`` sizes the progress bar when the documents come from a generator."""
    from ingest.job import ingest_documents

    return ingest_documents(
        resources.index,
        chunker,
        documents,
        collection,
        total=total,
        prune=prune,
        batch_documents=resources.settings.ingest_batch_documents,
        progress=progress,
    )


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """``key=value`` pairs; values stay strings (dates as ISO strings compare as dates in filters)."""
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or any(ch in key for ch in "<>!~"):
            raise ValueError(f"--meta {pair!r} is not key=value")
        metadata[key.strip()] = value.strip()
    return metadata
