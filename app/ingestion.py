"""Where settings meet the ingestion job: the one function every caller (CLI, API jobs, UI, benches, experiments)
uses to ingest a path, so chunker, batch size and file limits come from ``Settings`` the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from ingest.job import IngestSummary


def run_ingest(
    settings: Settings, path: Path, collection: str, *, prune: bool, meta: dict[str, str], chunker: str
) -> IngestSummary:
    """Ingest ``path`` into ``collection`` incrementally with the models and limits ``settings`` name."""
    from app.chunking import make_chunker
    from app.resources import Resources
    from ingest.job import ingest_path

    resources = Resources(settings)
    return ingest_path(
        resources.index,
        make_chunker(resources, chunker),
        path,
        collection,
        prune=prune,
        extra_metadata=meta,
        max_file_mb=settings.max_file_mb,
        batch_documents=settings.ingest_batch_documents,
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
