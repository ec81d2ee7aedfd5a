"""Semantic chunking: sentences grouped by embedding similarity, under a hard cap in the generator's tokens.

Both chunkers share one pipeline:

1. :func:`ingest.chunkers.sentences.split_units` cuts the document into sentences and whole blocks (headings,
   code fences, tables, JSON); a unit longer than ``max_tokens`` is cut by tokens (at a line break or a space when
   one is near), the only way a fence is ever split.
2. All units of the document are embedded in ONE batched ``embed`` call (rows are L2-normalised again, so cosine
   similarity is a dot product).
3. The strategy groups consecutive units (:class:`MaxMinSemanticChunker`, :class:`ClusterSemanticChunker`).
   Markdown headings are structure, not content: a heading always starts a chunk (it is never the tail of the
   previous one), is attached to the content that follows it, and takes no part in the similarity decisions.
4. Every chunk is checked with the real tokenizer: one over ``max_tokens`` (sizes are estimated from per-unit
   counts while grouping) is re-packed greedily, so no chunk exceeds ``max_tokens``.
5. The floor: a chunk under ``min_tokens`` is merged into the neighbour whose centroid (mean embedding of its
   content units) is more similar, when the merged text stays within ``max_tokens`` and no heading would end up
   inside a chunk: a chunk that starts with a heading is not merged into its predecessor, and nothing is merged
   into a successor that starts with one. A chunk of headings only is merged forwards (backwards at the very end).

Both take ``(embed, tokenize, max_tokens=256, min_tokens=32, ...)`` where ``embed`` maps a list of texts to one row
per text and ``tokenize`` is the generator's tokenizer (:func:`ingest.chunkers.fixed.load_token_counter`);
``max_tokens`` must be an integer >= 8 and ``0 <= min_tokens < max_tokens``. A bad argument raises ``ValueError``
naming it.

A chunk's text is the document's text from its first unit's start to its last unit's end, verbatim (line breaks,
fences and tables as written). Chunks are made exactly like :class:`ingest.chunkers.fixed.FixedSizeChunker`'s: ids
from :func:`ingest.chunkers.fixed.chunk_id`, metadata ``{**document.metadata, "chunk_index": i, "chunker": name}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ingest.chunkers.fixed import chunk_id
from ingest.chunkers.sentences import Unit, split_long, split_units
from ingest.document import Document
from retrieval.types import Chunk

EmbedFn = Callable[[list[str]], np.ndarray]
TokenizeFn = Callable[[str], list[int]]

MIN_MAX_TOKENS = 8

Span = tuple[int, int]  # first and last unit index of a chunk, inclusive


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_float(name: str, value: object, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value > high or value < low or (low_open and value == low):
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}], got {value}")
    return float(value)


@dataclass
class _Prepared:
    """One document's units, their embeddings and token counts."""

    text: str
    units: list[Unit]
    vectors: np.ndarray  # (n, dim), L2-normalised rows; (n, 0) when n <= 1
    heading: list[bool]
    first: list[int]  # tokens of unit k alone
    prefix: list[int]  # prefix[k + 1] - prefix[k] = tokens of the gap before unit k plus unit k (k >= 1)
    tokenize: TokenizeFn

    @property
    def n(self) -> int:
        return len(self.units)

    def estimate(self, s: int, e: int) -> int:
        """Tokens of units s..e (inclusive) from per-unit counts; checked exactly once chunks are formed."""
        return self.first[s] + self.prefix[e + 1] - self.prefix[s + 1]

    def chunk_text(self, span: Span) -> str:
        return self.text[self.units[span[0]].start : self.units[span[1]].end]

    def exact(self, span: Span) -> int:
        return len(self.tokenize(self.chunk_text(span)))

    def centroid(self, span: Span) -> np.ndarray:
        s, e = span
        content = [k for k in range(s, e + 1) if not self.heading[k]] or list(range(s, e + 1))
        mean = self.vectors[content].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else mean


class _SemanticChunker:
    """The shared pipeline of the semantic chunkers; ``signature`` defaults to the name, and the factory that
    knows the tokenizer and limits (``app.chunking.make_chunker``) sets a fuller one."""

    name = "semantic-base"
    parallel_documents = 1

    def __init__(self, embed: EmbedFn, tokenize: TokenizeFn, max_tokens: int, min_tokens: int) -> None:
        if not callable(embed):
            raise ValueError(f"embed must be callable (list[str] -> np.ndarray), got {embed!r}")
        if not callable(tokenize):
            raise ValueError(f"tokenize must be callable (str -> list[int]), got {tokenize!r}")
        self.max_tokens = _check_int("max_tokens", max_tokens, MIN_MAX_TOKENS)
        self.min_tokens = _check_int("min_tokens", min_tokens, 0, self.max_tokens - 1)
        self._embed = embed
        self._tokenize = tokenize
        self.signature: str = self.name

    # -- the strategy -------------------------------------------------------------------------------------------
    def _group(self, doc: _Prepared) -> list[Span]:
        raise NotImplementedError

    # -- shared pipeline ----------------------------------------------------------------------------------------
    def chunk(self, document: Document) -> list[Chunk]:
        doc = self._prepare(document.text)
        if doc.n == 0:
            return []
        spans = self._group(doc) if doc.n > 1 else [(0, 0)]
        spans = self._enforce_cap(doc, spans)
        spans = self._merge_small(doc, spans)
        texts = [doc.chunk_text(span) for span in spans]
        return [
            Chunk(
                id=chunk_id(document.doc_id, index, text),
                doc_id=document.doc_id,
                text=text,
                metadata={**document.metadata, "chunk_index": index, "chunker": self.name},
            )
            for index, text in enumerate(texts)
        ]

    def _prepare(self, text: str) -> _Prepared:
        units = [piece for unit in split_units(text) for piece in self._split_long(text, unit)]
        n = len(units)
        first = [len(self._tokenize(u.text)) for u in units]
        prefix = [0] * (n + 1)
        for k in range(n):
            gap_and_unit = first[k] if k == 0 else len(self._tokenize(text[units[k - 1].end : units[k].end]))
            prefix[k + 1] = prefix[k] + gap_and_unit
        if n > 1:
            vectors = np.asarray(self._embed([u.text for u in units]), dtype=np.float64)
            if vectors.ndim != 2 or vectors.shape[0] != n:
                raise ValueError(f"embed returned an array of shape {vectors.shape} for {n} texts")
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        else:
            vectors = np.zeros((n, 0))
        return _Prepared(text, units, vectors, [u.kind == "heading" for u in units], first, prefix, self._tokenize)

    def _split_long(self, text: str, unit: Unit) -> list[Unit]:
        """The unit itself, or pieces of at most ``max_tokens`` tokens, cut at a line break or space if possible."""
        return split_long(text, unit, self._tokenize, self.max_tokens)

    def _enforce_cap(self, doc: _Prepared, spans: list[Span]) -> list[Span]:
        """Re-pack, by exact counts, any chunk the per-unit estimate let over the cap."""
        result: list[Span] = []
        for s, e in spans:
            if s == e or doc.exact((s, e)) <= self.max_tokens:
                result.append((s, e))
                continue
            start = s
            for k in range(s + 1, e + 1):
                if doc.exact((start, k)) > self.max_tokens:
                    result.append((start, k - 1))
                    start = k
            result.append((start, e))
        return result

    def _merge_small(self, doc: _Prepared, spans: list[Span]) -> list[Span]:
        """Merge chunks under ``min_tokens`` into their more similar neighbour (see the module docstring)."""
        if self.min_tokens == 0:
            return spans
        spans = list(spans)
        sizes = [doc.exact(span) for span in spans]
        i = 0
        while i < len(spans) and len(spans) > 1:
            s, e = spans[i]
            if sizes[i] >= self.min_tokens:
                i += 1
                continue
            only_headings = all(doc.heading[s : e + 1])
            options = []
            if i + 1 < len(spans) and (only_headings or not doc.heading[spans[i + 1][0]]):
                options.append(i + 1)
            if i > 0 and (not doc.heading[s] or (only_headings and i + 1 == len(spans))):
                options.append(i - 1)
            best: tuple[float, int, int] | None = None
            for j in options:
                merged = (min(s, spans[j][0]), max(e, spans[j][1]))
                size = doc.exact(merged)
                if size > self.max_tokens:
                    continue
                similarity = 1.0 if only_headings else float(doc.centroid(spans[i]) @ doc.centroid(spans[j]))
                if best is None or similarity > best[0]:
                    best = (similarity, j, size)
            if best is None:
                i += 1
                continue
            _, j, size = best
            low = min(i, j)
            spans[low : low + 2] = [(spans[low][0], spans[low + 1][1])]
            sizes[low : low + 2] = [size]
            i = max(low - 1, 0)  # the merged chunk (or its left neighbour) may now be mergeable too
        return spans


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class MaxMinSemanticChunker(_SemanticChunker):
    """Max–Min semantic chunking (Kiss, Nagy & Szilágyi, "Max–Min semantic chunking of documents for RAG
    application", Discover Computing, 2025): a greedy pass over the units in order, where a unit joins the current
    chunk when its *max* similarity to the chunk beats a threshold that adapts to the chunk's own cohesion, its
    *min* pairwise similarity.

    The rule, for the current chunk C (its content units: headings excluded) and the next unit s, with
    ``sim`` the cosine similarity of the embeddings:

    * |C| = 0 (the chunk holds only headings): s joins, heading or not;
    * |C| = 1, C = {c}: s joins iff ``sim(s, c) >= initial_threshold``;
    * |C| >= 2: s joins iff ``max_{c in C} sim(s, c) > max(c_scale * min_{a != b in C} sim(a, b) * sigmoid(|C|),
      hard_threshold)``;

    and s never joins when it is a heading (unless |C| = 0) or when the chunk would exceed ``max_tokens``. This is the
    paper's formulation, with its first-pair test ``init_const * sim > hard_thr`` written as one threshold
    (``initial_threshold = hard_thr / init_const``); min_sim is taken over all of C, not a window.

    The defaults are calibrated for all-MiniLM-L6-v2, whose cosines run lower and wider than those of the models
    in the paper (same-topic sentences score 0.2-0.6, different topics up to 0.3): the paper's values
    (hard_thr 0.6, init_const 1.5, so an initial threshold of 0.4, and c 0.9) leave most sentences on their own or
    cut a topic after its two most similar sentences. With 0.25 / 0.3 / 0.7 every topic boundary of the test
    documents is found; in a sweep, initial 0.2-0.25, hard 0.3-0.35 and c 0.6-0.7 all did as well.
    """

    name = "semantic"

    def __init__(
        self,
        embed: EmbedFn,
        tokenize: TokenizeFn,
        max_tokens: int = 256,
        min_tokens: int = 32,
        initial_threshold: float = 0.25,
        hard_threshold: float = 0.3,
        c_scale: float = 0.7,
    ) -> None:
        super().__init__(embed, tokenize, max_tokens, min_tokens)
        self.initial_threshold = _check_float("initial_threshold", initial_threshold, -1.0, 1.0)
        self.hard_threshold = _check_float("hard_threshold", hard_threshold, -1.0, 1.0)
        self.c_scale = _check_float("c_scale", c_scale, 0.0, 1.0, low_open=True)

    def _group(self, doc: _Prepared) -> list[Span]:
        spans: list[Span] = []
        start = 0  # first unit of the current chunk
        content = 0 if not doc.heading[0] else None  # first content unit of the current chunk
        min_sim = math.inf  # min pairwise similarity among the content units
        for k in range(1, doc.n):
            # A heading only follows headings (it must lead its chunk); nothing joins past the cap.
            joins = (content is None or not doc.heading[k]) and doc.estimate(start, k) <= self.max_tokens
            sims = None
            if joins and content is not None:
                sims = doc.vectors[content:k] @ doc.vectors[k]
                size = k - content
                if size == 1:
                    joins = float(sims[0]) >= self.initial_threshold
                else:
                    threshold = max(self.c_scale * min_sim * _sigmoid(size), self.hard_threshold)
                    joins = float(sims.max()) > threshold
            if joins:
                if sims is not None:
                    min_sim = min(min_sim, float(sims.min()))
                elif content is None and not doc.heading[k]:
                    content = k
                continue
            spans.append((start, k - 1))
            start = k
            content = None if doc.heading[k] else k
            min_sim = math.inf
        spans.append((start, doc.n - 1))
        return spans


class ClusterSemanticChunker(_SemanticChunker):
    """The cluster variant: boundaries chosen globally, by dynamic programming, to maximise within-chunk similarity.

    Objective (the per-pair penalty form, as in Chroma's ClusterSemanticChunker, Smith & Troynikov, "Evaluating
    Chunking Strategies for Retrieval", 2024): over all segmentations of the units into consecutive chunks,
    maximise

        sum over chunks C of  sum over pairs {a, b} in C of (sim(a, b) - penalty)

    where ``penalty`` is ``pair_penalty``, or by default the document's mean pairwise similarity (so a pair more
    alike than the document's average pulls its units together and a less alike pair pushes them apart; a
    single-unit chunk scores 0). Headings take no part (their pairs score 0). Constraints: each chunk is at most
    ``max_tokens`` (by per-unit counts, checked exactly afterwards) and headings only lead a chunk. Ties go to
    fewer, longer chunks.

    Solved exactly: ``best[e] = max_s best[s] + score(s..e-1)`` over the at most ``w`` starts whose chunk fits the
    cap, with ``score`` extended one unit at a time from band sums of the similarity matrix, so time and memory
    are O(n·w) (plus O(n·w·dim) for the band of similarities).
    """

    name = "semantic-cluster"

    def __init__(
        self,
        embed: EmbedFn,
        tokenize: TokenizeFn,
        max_tokens: int = 256,
        min_tokens: int = 32,
        pair_penalty: float | None = None,
    ) -> None:
        super().__init__(embed, tokenize, max_tokens, min_tokens)
        self.pair_penalty = None if pair_penalty is None else _check_float("pair_penalty", pair_penalty, -1.0, 1.0)

    def _group(self, doc: _Prepared) -> list[Span]:
        n = doc.n
        heading = doc.heading
        # first_content[s]: the first non-heading unit at or after s; next_heading[k]: the first heading after k.
        first_content = [n] * (n + 1)
        next_heading = [n] * (n + 1)
        for k in range(n - 1, -1, -1):
            first_content[k] = first_content[k + 1] if heading[k] else k
            next_heading[k] = k + 1 if k + 1 < n and heading[k + 1] else next_heading[k + 1]

        # The feasible starts of a chunk ending at e, longest first stops at the cap: lowest[e].
        lowest = [0] * n
        for e in range(n):
            s = e
            while s > 0 and doc.estimate(s - 1, e) <= self.max_tokens:
                s -= 1
            lowest[e] = s
        width = max(e - lowest[e] + 1 for e in range(n))

        vectors = doc.vectors
        content = np.array([not h for h in heading])
        penalty = self.pair_penalty
        if penalty is None:
            rows = vectors[content]
            m = len(rows)
            total = rows.sum(axis=0)
            penalty = float((total @ total - m) / (m * (m - 1))) if m > 1 else 0.0
        # band[s, d] = sim(s, s + d) - penalty for content pairs, 0 otherwise; cum[s, d] = sum of band[s, 1..d].
        band = np.zeros((n, width))
        for d in range(1, width):
            sims = np.einsum("ij,ij->i", vectors[: n - d], vectors[d:]) - penalty
            band[: n - d, d] = np.where(content[: n - d] & content[d:], sims, 0.0)
        cum = np.cumsum(band, axis=1).tolist()

        best = [0.0] + [-math.inf] * n  # best[e]: the best score of units 0..e-1
        back = [0] * (n + 1)
        for e in range(n):
            score = 0.0
            for s in range(e, lowest[e] - 1, -1):
                score += cum[s][e - s]  # add the pairs (s, s+1..e)
                f = first_content[s]
                if f <= e and next_heading[f] <= e:  # a heading after content: so for every smaller s too
                    break
                candidate = best[s] + score
                if candidate > best[e + 1] - 1e-9:  # ">=" with slack: on a tie the longer chunk wins
                    best[e + 1] = candidate
                    back[e + 1] = s
        spans: list[Span] = []
        e = n
        while e > 0:
            spans.append((back[e], e - 1))
            e = back[e]
        return spans[::-1]
