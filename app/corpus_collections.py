"""Evaluation corpora as collections: a BEIR corpus (records with ids) or a folder of files, ingested incrementally.

Evaluations, benches, experiments and reranker training all search a collection built from their corpus. Ingesting
goes through the same incremental job as ``ragline ingest`` with the ``Resources`` the caller already holds (their
models are loaded once), so a second run re-embeds nothing: unchanged documents keep their content hash and the
chunker's signature, which holds the chunker's settings.
"""

from __future__ import annotations

from pathlib import Path

from app.chunking import make_chunker
from app.ingestion import ingest_from_documents, ingest_from_path
from app.resources import Resources
from ingest.document import Document
from ingest.job import IngestSummary

__all__ = ["describe_corpus_failures", "describe_corpus_ingest", "ensure_corpus_collection", "ingest_files"]


def ensure_corpus_collection(
    resources: Resources,
    name: str,
    corpus: dict[str, dict[str, str]],
    chunker_name: str = "fixed",
    *,
    prune: bool = False,
) -> IngestSummary:
    """Ingest a BEIR corpus (``{doc_id: {"title", "text"}}``) into collection ``name``; doc ids are the corpus ids.
    ``prune`` drops documents no longer in ``corpus``. A failed document is in the summary, not raised: a judged
    document that failed simply cannot be retrieved."""
    documents = (
        Document(doc_id, f"{doc['title']}\n{doc['text']}".strip(), {"title": doc["title"] or doc_id})
        for doc_id, doc in corpus.items()
    )
    return ingest_from_documents(
        resources, make_chunker(resources, chunker_name), documents, name, total=len(corpus), prune=prune, progress=True
    )


def ingest_files(resources: Resources, path: Path, collection: str, chunker_name: str) -> IngestSummary:
    """Ingest a file or folder as ``ragline ingest`` does (doc ids are relative paths), with these ``resources``.

    ``app.ingestion.run_ingest`` builds its own ``Resources``; a run that goes on to answer questions keeps the one
    it has, so the embedder is loaded once and the index it then searches is the one that was written.
    """
    return ingest_from_path(resources, make_chunker(resources, chunker_name), path, collection)


def describe_corpus_ingest(summary: IngestSummary) -> str:
    """One line: how many documents were indexed, unchanged and removed, and how long it took."""
    return (
        f"{summary.collection}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} "
        f"unchanged, {len(summary.deleted)} removed in {summary.seconds:.0f} s"
    )


def describe_corpus_failures(summary: IngestSummary) -> str | None:
    """How many documents were not indexed, with the first one and its reason; ``None`` when all were."""
    if not summary.failed:
        return None
    doc_id, reason = next(iter(summary.failed.items()))
    return f"{len(summary.failed)} documents not indexed (first: {doc_id}: {reason})"
