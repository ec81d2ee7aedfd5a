"""Training pairs for a cross-encoder: each query with its positive passages and hard negatives from hybrid search.

Hard negatives are what the reranker has to fix: passages our own hybrid retriever ranks high that are not
relevant. Random negatives are too easy to teach a reranker anything, so they are mined from the same index and
fusion the query pipeline uses.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from app.settings import Settings
from retrieval import hybrid
from retrieval.fusion import make_fusion
from retrieval.index import Index
from retrieval.types import Chunk, Hit


@dataclass(frozen=True)
class LabelledQuery:
    """A training query: the documents relevant to it, and optionally the exact chunks that are its positives.

    Without ``positive_chunks`` (BEIR qrels judge documents, not chunks) a relevant document contributes the chunks
    hybrid search found for the query, or its first chunk when search found none.
    """

    qid: str
    text: str
    relevant_docs: frozenset[str]
    positive_chunks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    label: float


@dataclass
class MinedPairs:
    pairs: list[Pair] = field(default_factory=list)
    queries: int = 0
    skipped: int = 0
    """Queries with no positive passage in the collection (their documents were not ingested)."""

    @property
    def positives(self) -> int:
        return sum(1 for p in self.pairs if p.label > 0)

    @property
    def negatives(self) -> int:
        return len(self.pairs) - self.positives


def split_queries(qids: Sequence[str], held_out: int, seed: int) -> tuple[list[str], list[str]]:
    """A fixed-seed shuffle of ``qids`` cut into (train, held-out); the same arguments always give the same split."""
    if not 0 <= held_out < len(qids):
        raise ValueError(f"held_out must be in [0, {len(qids) - 1}] for {len(qids)} queries, got {held_out}")
    shuffled = sorted(qids)
    random.Random(seed).shuffle(shuffled)
    cut = len(shuffled) - held_out
    return shuffled[:cut], shuffled[cut:]


def hybrid_search(index: Index, settings: Settings, collection: str, query: str, depth: int) -> list[Hit]:
    """The candidates the query pipeline would rerank for ``query``: ``retrieval.hybrid.hybrid_search`` (BM25 ∥
    dense → fusion → de-duplication) with the pipeline's fusion and dedup settings, ``depth`` hits per search."""
    fusion = make_fusion(settings.fusion, rrf_k=settings.rrf_k, alpha=settings.fusion_alpha)
    hits = hybrid.hybrid_search(
        index, collection, query, bm25_k=depth, dense_k=depth, fusion=fusion, dedup_threshold=settings.dedup_threshold
    )
    return hits.deduplicated


def mine_pairs(
    index: Index,
    settings: Settings,
    collection: str,
    queries: Iterable[LabelledQuery],
    *,
    negatives: int = 4,
    depth: int = 30,
    progress: bool = True,
) -> MinedPairs:
    """(query, passage, 1) for each positive and (query, passage, 0) for the ``negatives`` best-ranked hybrid hits
    from documents not relevant to the query (one chunk per document, so negatives are diverse)."""
    if negatives < 1:
        raise ValueError(f"negatives must be at least 1, got {negatives}")
    chunks_by_doc: dict[str, list[Chunk]] = {}
    chunk_by_id: dict[str, Chunk] = {}
    for chunk in index.manifest.chunks(collection):
        chunks_by_doc.setdefault(chunk.doc_id, []).append(chunk)
        chunk_by_id[chunk.id] = chunk
    if not chunk_by_id:
        raise ValueError(f"collection {collection!r} is empty or does not exist: ingest it first")
    mined = MinedPairs()
    queries = list(queries)
    for query in tqdm(queries, desc="mine hard negatives", unit="query", disable=not progress):
        hits = hybrid_search(index, settings, collection, query.text, depth)
        if query.positive_chunks:
            positives = [chunk_by_id[c].text for c in query.positive_chunks if c in chunk_by_id]
        else:
            found = [h.chunk for h in hits if h.chunk.doc_id in query.relevant_docs]
            found_docs = {c.doc_id for c in found}
            first = [chunks_by_doc[d][0] for d in sorted(query.relevant_docs - found_docs) if d in chunks_by_doc]
            positives = [c.text for c in found + first]
        if not positives:
            mined.skipped += 1
            continue
        seen_docs: set[str] = set()
        hard: list[str] = []
        for hit in hits:
            doc = hit.chunk.doc_id
            if doc in query.relevant_docs or doc in seen_docs:
                continue
            seen_docs.add(doc)
            hard.append(hit.chunk.text)
            if len(hard) == negatives:
                break
        mined.queries += 1
        mined.pairs += [Pair(query.text, text, 1.0) for text in positives]
        mined.pairs += [Pair(query.text, text, 0.0) for text in hard]
    return mined


def beir_queries(
    queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], qids: Iterable[str]
) -> list[LabelledQuery]:
    """BEIR judgments as training queries (documents with a score above 0 are relevant)."""
    labelled = []
    for qid in qids:
        relevant = frozenset(doc for doc, score in qrels.get(qid, {}).items() if score > 0)
        if relevant:
            labelled.append(LabelledQuery(qid, queries[qid], relevant))
    return labelled


def save_pairs(pairs: Sequence[Pair], path: Path) -> None:
    """Written next to the model so a resumed run trains on exactly the same data, and for the record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps({"query": pair.query, "passage": pair.passage, "label": pair.label}) + "\n")
    tmp.replace(path)


def load_pairs(path: Path) -> list[Pair]:
    pairs = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                pairs.append(Pair(str(record["query"]), str(record["passage"]), float(record["label"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a training pair ({exc})") from None
    return pairs
