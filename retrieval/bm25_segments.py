"""BM25 over segments of raw term frequencies, scored at query time with the collection's global statistics.

Why not rebuild a bm25s index on every change: bm25s stores *final* scores per (document, term), which bake in
N, df and avgdl, so adding one document changes every stored score and costs a rebuild of the whole collection.
Here each segment keeps only what does not depend on the rest of the collection (term frequencies and document
lengths, as sparse matrices); N, df and avgdl are kept as running totals and applied when a query is scored. So:

- adding documents costs tokenizing them and building one small segment (plus a df update);
- deleting a document is a tombstone (its row stops counting in N, df, avgdl and is never returned);
- small segments are merged into bigger ones (and tombstoned rows dropped), so a collection keeps few segments;
- scores are those of a full bm25s build over the live rows, because the same per-term formulas of bm25s
  (``bm25s.scoring``) are evaluated on the same numbers, cast to float32 at the same steps and summed in the same
  order (query term order). ``tests/retrieval/test_bm25_segments.py`` checks this for every method of ``METHODS``.

A snapshot (``SegmentedBM25``) is immutable: ``apply`` returns a new one, so a search running in another thread
keeps scoring the snapshot it started with. The vocabulary (term → id) is shared and only ever grows; a term a
snapshot does not know (id beyond its ``df``) or whose live df is 0 is skipped, as bm25s skips terms outside its
vocabulary.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

from retrieval.bm25 import BM25Config
from retrieval.tokenize import Tokenizer, TokenizerConfig

BM25S_DELTA = 0.5
"""bm25s's default ``delta`` of BM25L and BM25+ (ragline never changes it)."""
MERGE_RATIO = 4
"""Merge the newest segment into the one before it while it is at least 1/MERGE_RATIO of that one's size: segment
sizes then grow geometrically, so a collection of n rows has O(log n) segments and each row is merged O(log n)
times."""
MAX_DEAD_FRACTION = 0.5
"""A segment whose rows are more than this fraction tombstones is rewritten without them."""

NONOCCURRENCE_METHODS = ("bm25l", "bm25+")
"""Methods where a row without a query term still scores (bm25s adds that score to every row)."""
WEIGHT_CACHE_POSTINGS = 4_000_000
"""Postings whose weights one snapshot keeps for later queries (about 48 MB); past it the cache starts over."""

_segment_uids = itertools.count(1)


class _WeightCache:
    """Term id → (rows, weights, non-occurrence score) of one snapshot, bounded by the postings it holds."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[np.ndarray, np.ndarray, np.float32]] = {}
        self._postings = 0

    def get(self, term_id: int) -> tuple[np.ndarray, np.ndarray, np.float32] | None:
        return self._entries.get(term_id)

    def put(self, term_id: int, entry: tuple[np.ndarray, np.ndarray, np.float32]) -> None:
        if self._postings + len(entry[0]) > WEIGHT_CACHE_POSTINGS:
            self._entries, self._postings = {}, 0
        self._entries[term_id] = entry
        self._postings += len(entry[0])


@functools.cache
def tokenizer(config: TokenizerConfig) -> Tokenizer:
    """One tokenizer per configuration (its stopword set and stemmer are built once)."""
    return Tokenizer(config)


@dataclass(frozen=True)
class Row:
    """One chunk to index: its id, its document, its text."""

    chunk_id: str
    doc_id: str
    text: str


@dataclass(frozen=True)
class Segment:
    """Rows added together: term frequencies (rows × term ids) and lengths; ``alive`` marks rows not deleted.

    ``tf_cols`` is the column-major copy scoring reads (a term's postings are one slice); ``uid`` names the
    segment across tombstoning (which copies it with a new ``alive``), a merge makes a new one."""

    uid: int
    ids: tuple[str, ...]
    docs: tuple[str, ...]
    lengths: np.ndarray
    tf_rows: sp.csr_matrix
    tf_cols: sp.csc_matrix
    alive: np.ndarray

    @classmethod
    def of(cls, ids: Sequence[str], docs: Sequence[str], lengths: np.ndarray, tf_rows: sp.csr_matrix) -> Segment:
        alive = np.ones(len(ids), dtype=bool)
        return cls(next(_segment_uids), tuple(ids), tuple(docs), lengths, tf_rows, tf_rows.tocsc(), alive)

    @cached_property
    def doc_rows(self) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = {}
        for row, doc_id in enumerate(self.docs):
            rows.setdefault(doc_id, []).append(row)
        return rows

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def live(self) -> int:
        return int(self.alive.sum())

    def term_ids(self, row: int) -> np.ndarray:
        return self.tf_rows.indices[self.tf_rows.indptr[row] : self.tf_rows.indptr[row + 1]]


@dataclass(frozen=True)
class SegmentedBM25:
    """One immutable state of a collection's BM25: segments plus the global statistics of their live rows."""

    config: BM25Config
    vocab: dict[str, int]
    """Shared by every snapshot of one lineage, append-only."""
    df: np.ndarray
    """Live document frequency per term id (int64)."""
    n_docs: int
    total_length: int
    segments: tuple[Segment, ...] = ()
    doc_segment: dict[str, int] = field(default_factory=dict)
    """Which segment (its ``uid``) holds each live document's rows."""

    @classmethod
    def empty(cls, config: BM25Config | None = None) -> SegmentedBM25:
        return cls(config or BM25Config(), {}, np.zeros(0, dtype=np.int64), 0, 0)

    @classmethod
    def build(cls, rows: Sequence[Row], config: BM25Config | None = None) -> SegmentedBM25:
        return cls.empty(config).apply(rows=rows)

    # ---- state -------------------------------------------------------------------------------------------
    @cached_property
    def ids(self) -> list[str]:
        """The chunk id of every row (tombstoned ones included), in scoring order: a ``mask`` aligns with it."""
        return [chunk_id for segment in self.segments for chunk_id in segment.ids]

    @cached_property
    def _alive(self) -> np.ndarray:
        if not self.segments:
            return np.zeros(0, dtype=bool)
        return np.concatenate([segment.alive for segment in self.segments])

    @cached_property
    def _offsets(self) -> list[int]:
        return [0, *itertools.accumulate(segment.size for segment in self.segments)]

    @property
    def live_ids(self) -> list[str]:
        return [i for i, alive in zip(self.ids, self._alive, strict=True) if alive]

    @property
    def documents(self) -> set[str]:
        return set(self.doc_segment)

    # ---- updates ------------------------------------------------------------------------------------------
    def apply(self, *, removed: Iterable[str] = (), rows: Sequence[Row] = ()) -> SegmentedBM25:
        """A new snapshot without the documents ``removed`` and with ``rows`` added as one new segment.

        A document listed in ``rows`` must not be live (remove it in the same call to replace it)."""
        segments = {segment.uid: segment for segment in self.segments}
        doc_segment = dict(self.doc_segment)
        df = self.df.copy()
        n_docs, total_length = self.n_docs, self.total_length
        for doc_id in set(removed):
            uid = doc_segment.pop(doc_id, None)
            if uid is None:
                continue
            segment = segments[uid]
            alive = segment.alive.copy()
            for row in segment.doc_rows[doc_id]:
                if alive[row]:
                    alive[row] = False
                    np.subtract.at(df, segment.term_ids(row), 1)
                    n_docs -= 1
                    total_length -= int(segment.lengths[row])
            segments[uid] = replace(segment, alive=alive)
        if rows:
            clash = {r.doc_id for r in rows} & doc_segment.keys()
            if clash:
                raise ValueError(f"documents already indexed (remove them first): {sorted(clash)[:5]}")
            segment = self._segment(rows)
            if len(df) < len(self.vocab):
                df = np.concatenate([df, np.zeros(len(self.vocab) - len(df), dtype=np.int64)])
            # bm25s counts a document once per term it contains (document frequency), whatever the tf
            np.add.at(df, segment.tf_rows.indices, 1)
            n_docs += segment.size
            total_length += int(segment.lengths.sum())
            segments[segment.uid] = segment
            doc_segment.update(dict.fromkeys(segment.docs, segment.uid))
        compacted = _compact(list(segments.values()), len(self.vocab))
        for segment in compacted:
            if segment.uid not in segments:  # merged or rewritten: its documents moved
                doc_segment.update(dict.fromkeys(segment.docs, segment.uid))
        return SegmentedBM25(self.config, self.vocab, df, n_docs, total_length, tuple(compacted), doc_segment)

    def _segment(self, rows: Sequence[Row]) -> Segment:
        tokenize = tokenizer(self.config.tokenizer)
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        lengths = np.zeros(len(rows), dtype=np.int64)
        for n, row in enumerate(rows):
            terms = tokenize(row.text)
            lengths[n] = len(terms)
            per_term: dict[int, int] = {}
            for term in terms:
                term_id = self.vocab.setdefault(term, len(self.vocab))
                per_term[term_id] = per_term.get(term_id, 0) + 1
            indices.extend(per_term)
            counts.extend(per_term.values())
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (np.asarray(counts, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(rows), len(self.vocab)),
        )
        return Segment.of([r.chunk_id for r in rows], [r.doc_id for r in rows], lengths, matrix)

    # ---- scoring ------------------------------------------------------------------------------------------
    def scores(self, query: str) -> np.ndarray | None:
        """BM25 of every row (float32, tombstones 0), or None when no query term occurs in a live row."""
        terms = [t for t in tokenizer(self.config.tokenizer)(query) if self._live_term(t)]
        if not terms or self.n_docs == 0:
            return None
        out = np.zeros(self._offsets[-1], dtype=np.float32)
        nonoccurrence = []
        for term in terms:  # in query order, a repeated term twice: the order and sums of bm25s
            rows, weights, missing = self._term_weights(self.vocab[term])
            out[rows] += weights  # one term's rows are distinct: a plain scatter-add (bm25s needs np.add.at)
            nonoccurrence.append(missing)
        if self.config.method in NONOCCURRENCE_METHODS:
            out += np.asarray(nonoccurrence, dtype=np.float32).sum()
            out *= self._alive  # that score reached every row, tombstones too
        return out

    def _term_weights(self, term_id: int) -> tuple[np.ndarray, np.ndarray, np.float32]:
        """A term's postings in this snapshot: rows (over all segments), their float32 score contributions, and
        the BM25L/BM25+ score of a row without the term. Computed from the global N, df and avgdl the first time a
        query needs the term, then kept for the snapshot's later queries (up to ``WEIGHT_CACHE_POSTINGS``)."""
        cached = self._weights.get(term_id)
        if cached is not None:
            return cached
        config = self.config
        idf_of, tfc_of = _select_idf_scorer(config.method), _select_tfc_scorer(config.method)
        avgdl = np.float64(self.total_length) / self.n_docs  # numpy's mean of the integer lengths, as bm25s
        idf_exact = idf_of(int(self.df[term_id]), N=self.n_docs)
        idf = np.float32(idf_exact)  # bm25s keeps idf in a float32 array; its non-occurrence uses the exact value
        missing = np.float32(0.0)
        if config.method in NONOCCURRENCE_METHODS:
            tfc_zero = tfc_of(tf_array=0, l_d=avgdl, l_avg=avgdl, k1=config.k1, b=config.b, delta=BM25S_DELTA)
            missing = np.float32(idf_exact * tfc_zero)
        all_rows, all_weights = [], []
        for position, (segment, offset) in enumerate(zip(self.segments, self._offsets, strict=False)):
            matrix = segment.tf_cols
            if term_id >= matrix.shape[1] or matrix.indptr[term_id] == matrix.indptr[term_id + 1]:
                continue
            start, end = matrix.indptr[term_id], matrix.indptr[term_id + 1]
            rows, tf = matrix.indices[start:end], matrix.data[start:end]
            live = segment.alive[rows]
            if not live.all():  # tombstones never score: drop them here, not with a pass over every row per query
                rows, tf = rows[live], tf[live]
            if config.method in ("lucene", "robertson"):
                # bm25s's formula tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf), its row part computed once per
                # snapshot: the same float64 operations in the same order, so the same result
                tfc = tf / (self._length_norms[position][rows] + tf)
            else:
                l_d = segment.lengths[rows]
                tfc = tfc_of(tf_array=tf, l_d=l_d, l_avg=avgdl, k1=config.k1, b=config.b, delta=BM25S_DELTA)
            weights = idf * tfc
            if config.method in NONOCCURRENCE_METHODS:
                weights -= missing
            all_rows.append(rows + offset if offset else rows)
            all_weights.append(weights.astype(np.float32))
        result = (np.concatenate(all_rows), np.concatenate(all_weights), missing)
        self._weights.put(term_id, result)
        return result

    @cached_property
    def _length_norms(self) -> list[np.ndarray]:
        """``k1 * ((1 - b) + b * l_d / avgdl)`` of every row, per segment (float64, as bm25s computes it)."""
        k1, b = self.config.k1, self.config.b
        avgdl = np.float64(self.total_length) / self.n_docs
        return [k1 * ((1 - b) + b * segment.lengths / avgdl) for segment in self.segments]

    @cached_property
    def _weights(self) -> _WeightCache:
        return _WeightCache()

    def _live_term(self, term: str) -> bool:
        term_id = self.vocab.get(term)
        return term_id is not None and term_id < len(self.df) and self.df[term_id] > 0

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, score) with score > 0; ``mask`` (0/1 per row of ``ids``) restricts the rows scored."""
        if k <= 0:
            return []
        scores = self.scores(query)
        if scores is None:
            return []
        if mask is not None:
            scores *= mask
        k = min(k, len(scores))
        top = np.argpartition(scores, len(scores) - k)[len(scores) - k :] if k < len(scores) else np.arange(k)
        top = top[np.argsort(-scores[top], kind="stable")]
        ids = self.ids
        return [(ids[int(row)], float(scores[row])) for row in top if scores[row] > 0]


def _compact(segments: list[Segment], n_terms: int) -> list[Segment]:
    """Drop empty segments, rewrite mostly-dead ones, and merge the newest while it is not much smaller than the
    one before it (see ``MERGE_RATIO``)."""
    kept = []
    for segment in segments:
        live = segment.live
        if live == 0:
            continue
        kept.append(_merge([segment], n_terms) if live < (1 - MAX_DEAD_FRACTION) * segment.size else segment)
    while len(kept) >= 2 and kept[-1].live * MERGE_RATIO >= kept[-2].live:
        kept[-2:] = [_merge(kept[-2:], n_terms)]
    return kept


def _merge(segments: Sequence[Segment], n_terms: int) -> Segment:
    """One segment with the live rows of ``segments``, in order."""
    parts, ids, docs, lengths = [], [], [], []
    for segment in segments:
        keep = np.flatnonzero(segment.alive)
        matrix = segment.tf_rows[keep]
        matrix.resize((len(keep), n_terms))
        parts.append(matrix)
        ids.extend(segment.ids[i] for i in keep)
        docs.extend(segment.docs[i] for i in keep)
        lengths.append(segment.lengths[keep])
    return Segment.of(ids, docs, np.concatenate(lengths), sp.vstack(parts, format="csr"))
