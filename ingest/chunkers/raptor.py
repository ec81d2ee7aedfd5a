"""RAPTOR: a tree of LLM summaries over a document's chunks, indexed together with the chunks themselves.

The leaves are a leaf chunker's chunks (level 0). Each level is embedded, reduced with PCA, clustered with a
Gaussian mixture (number of clusters by lowest BIC, soft membership), and every cluster is summarised by the
language model into a node of the next level; this repeats up to ``max_levels`` or until a level is too small to
cluster. All levels are returned and indexed as one pool: "collapsed-tree" retrieval, the default in the RAPTOR
paper (Sarthi et al., 2024), lets a question match a detail chunk or a summary, whichever fits it better.

One tree per document, not one over the collection: ingestion is incremental by document, and a changed document
then rebuilds only its own tree. A cross-document tree would have to be rebuilt (and every summary regenerated)
whenever any document changed, added or removed.

UMAP, which the paper uses for reduction, is not a dependency; PCA (scikit-learn) stands in for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from retrieval.types import Chunk

if TYPE_CHECKING:
    from ingest.document import Document
    from ingest.job import Chunker
    from retrieval.protocols import TextGenerator

log = logging.getLogger(__name__)

SUMMARY_PROMPT = (
    "Write a concise, factual summary of the passages below in one paragraph. Keep names, numbers, dates, "
    "codes and other identifiers exactly as written. Use only information from the passages; do not add "
    "opinions, explanations or anything else.\n\n{passages}\n\nSummary:"
)

# GaussianMixture's covariance regulariser, relative to the mean per-dimension variance of the reduced points:
# with a handful of points a full covariance collapses onto them and the likelihood (and so BIC) runs away; a
# relative floor keeps the choice of k the same whatever the spread of a level's embeddings.
_RELATIVE_REG_COVAR = 1e-2
_DEFAULT_REDUCTION_DIM = 5


def summary_id(doc_id: str, level: int, index: int, text: str) -> str:
    """Deterministic, in the manner of ``chunk_id``: the same document and summaries give the same ids."""
    return hashlib.sha256(f"{doc_id}\0L{level}-{index}\0{text}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Clustering:
    """A level's clusters: member positions per cluster (in document order), and each node's best cluster."""

    clusters: list[list[int]]
    best: list[int]


class RaptorChunker:
    """Leaves from ``leaf_chunker`` plus a tree of summaries per document; see the module docstring.

    ``embed`` turns texts into vectors (one call per level); ``generator`` writes the summaries, one ``complete``
    call per level with all of that level's cluster prompts, so they run concurrently. ``max_clusters`` caps the
    mixture's components per level, ``reduction_dim`` the PCA dimensions (``None``: cluster raw embeddings),
    ``soft_threshold`` the posterior from which a node also belongs to a cluster other than its best, and
    ``max_cluster_chars`` the text one summary prompt may carry (a larger cluster is cut into consecutive parts).
    ``parallel_documents`` is how many documents' trees the ingestion job builds at once (``ingest.job.chunk_all``):
    a short document has one cluster per level, so without it vLLM would see one request at a time.
    ``signature`` defaults to the name; ``app.chunking.make_chunker`` sets one naming the leaves and the model.
    """

    name = "raptor"

    def __init__(
        self,
        leaf_chunker: Chunker,
        embed: Callable[[list[str]], np.ndarray],
        generator: TextGenerator,
        *,
        max_levels: int = 3,
        max_clusters: int = 50,
        summary_tokens: int = 150,
        reduction_dim: int | None = _DEFAULT_REDUCTION_DIM,
        seed: int = 0,
        soft_threshold: float = 0.1,
        max_cluster_chars: int = 8000,
        parallel_documents: int = 16,
    ) -> None:
        if max_levels < 1:
            raise ValueError(f"max_levels must be at least 1, got {max_levels}")
        if max_clusters < 1:
            raise ValueError(f"max_clusters must be at least 1, got {max_clusters}")
        if summary_tokens < 1:
            raise ValueError(f"summary_tokens must be positive, got {summary_tokens}")
        if reduction_dim is not None and reduction_dim < 1:
            raise ValueError(f"reduction_dim must be positive or None, got {reduction_dim}")
        if not 0.0 < soft_threshold <= 1.0:
            raise ValueError(f"soft_threshold must be in (0, 1], got {soft_threshold}")
        if max_cluster_chars < 1:
            raise ValueError(f"max_cluster_chars must be positive, got {max_cluster_chars}")
        if parallel_documents < 1:
            raise ValueError(f"parallel_documents must be at least 1, got {parallel_documents}")
        self.leaf_chunker = leaf_chunker
        self.embed = embed
        self.generator = generator
        self.max_levels = max_levels
        self.max_clusters = max_clusters
        self.summary_tokens = summary_tokens
        self.reduction_dim = reduction_dim
        self.seed = seed
        self.soft_threshold = soft_threshold
        self.max_cluster_chars = max_cluster_chars
        self.parallel_documents = parallel_documents
        self.signature: str = self.name

    def chunk(self, document: Document) -> list[Chunk]:
        base = {**document.metadata, "chunker": self.name}
        nodes = [
            dataclasses.replace(leaf, level=0, metadata={**leaf.metadata, "chunker": self.name, "level": 0})
            for leaf in self.leaf_chunker.chunk(document)
        ]
        done: list[Chunk] = []
        level = 0
        while level < self.max_levels and len(nodes) > 2:
            clustering = self._cluster([n.text for n in nodes])
            prompts = [self._prompt([nodes[i].text for i in members]) for members in clustering.clusters]
            answers = self.generator.complete(prompts, max_tokens=self.summary_tokens)
            if len(answers) != len(prompts):
                raise RuntimeError(f"the generator answered {len(answers)} of {len(prompts)} prompts")
            summaries = []
            for index, (members, answer) in enumerate(zip(clustering.clusters, answers, strict=True)):
                text = answer.strip()
                metadata = {**base, "level": level + 1, "children": ",".join(nodes[i].id for i in members)}
                if not text:  # a model that stops at once must not leave an empty, unsearchable node
                    log.warning(
                        "empty summary for %s level %d cluster %d; kept its passages", document.doc_id, level + 1, index
                    )
                    text = self._fallback([nodes[i].text for i in members])
                    metadata["summary"] = "fallback"
                summaries.append(
                    Chunk(
                        id=summary_id(document.doc_id, level + 1, index, text),
                        doc_id=document.doc_id,
                        text=text,
                        metadata=metadata,
                        level=level + 1,
                    )
                )
            done.extend(_with_parents(nodes, clustering, summaries))
            nodes = summaries
            level += 1
        return done + nodes

    def _vectors(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.embed(texts), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"embed returned shape {vectors.shape} for {len(texts)} texts")
        return vectors

    def _reduce(self, vectors: np.ndarray) -> np.ndarray:
        """PCA to at most ``reduction_dim`` and at most n - 2 dimensions, so a full covariance stays estimable."""
        n, dim = vectors.shape
        if self.reduction_dim is None:
            return vectors
        target = max(1, min(self.reduction_dim, n - 2))
        if target >= dim:
            return vectors
        from sklearn.decomposition import PCA

        return PCA(n_components=target, random_state=self.seed).fit_transform(vectors)

    def _cluster(self, texts: list[str]) -> Clustering:
        """Soft clusters of a level's texts, in document order, each cut to at most ``max_cluster_chars``."""
        posterior = self._posterior(texts)
        n = len(texts)
        top = posterior.argmax(axis=1)
        raw = [
            [i for i in range(n) if posterior[i, c] >= self.soft_threshold or top[i] == c]
            for c in range(posterior.shape[1])
        ]
        # Components in order of their first member, so the tree reads in document order whatever the labels.
        order = sorted((c for c in range(len(raw)) if raw[c]), key=lambda c: raw[c])
        clusters: list[list[int]] = []
        part_of: dict[tuple[int, int], int] = {}  # (component, node) -> cluster index after size capping
        for component in order:
            for part in _pack(raw[component], [len(t) for t in texts], self.max_cluster_chars):
                for i in part:
                    part_of[component, i] = len(clusters)
                clusters.append(part)
        return Clustering(clusters=clusters, best=[part_of[int(top[i]), i] for i in range(n)])

    def _posterior(self, texts: list[str]) -> np.ndarray:
        """Cluster membership probabilities (n x k) from a Gaussian mixture, k in 1..min(max_clusters, n - 1) by
        lowest BIC. A level of at most ``reduction_dim + 1`` nodes is too small to fit a mixture to (as in the
        paper's code) and becomes one cluster without being embedded."""
        n = len(texts)
        if n <= (self.reduction_dim or _DEFAULT_REDUCTION_DIM) + 1 or self.max_clusters == 1:
            return np.ones((n, 1))
        from sklearn.mixture import GaussianMixture

        points = self._reduce(self._vectors(texts))
        reg = _RELATIVE_REG_COVAR * float(points.var(axis=0).mean()) or 1e-6
        best_bic, best = np.inf, None
        for k in range(1, min(self.max_clusters, n - 1) + 1):
            mixture = GaussianMixture(k, covariance_type="full", reg_covar=reg, random_state=self.seed)
            mixture.fit(points)
            bic = mixture.bic(points)
            if bic < best_bic:
                best_bic, best = bic, mixture
        assert best is not None
        return best.predict_proba(points)

    @staticmethod
    def _prompt(passages: list[str]) -> str:
        body = "\n\n".join(f"Passage {i}:\n{text.strip()}" for i, text in enumerate(passages, start=1))
        return SUMMARY_PROMPT.format(passages=body)

    def _fallback(self, passages: list[str]) -> str:
        return " ".join(" ".join(passages).split())[: self.summary_tokens * 4]


def _pack(members: list[int], sizes: Sequence[int], limit: int) -> list[list[int]]:
    """Cut a cluster into consecutive parts of at most ``limit`` characters (a single oversized node stays whole)."""
    parts: list[list[int]] = [[]]
    used = 0
    for i in members:
        if parts[-1] and used + sizes[i] > limit:
            parts.append([])
            used = 0
        parts[-1].append(i)
        used += sizes[i]
    return parts


def _with_parents(nodes: list[Chunk], clustering: Clustering, summaries: list[Chunk]) -> list[Chunk]:
    """Set each node's best parent in ``parent_id`` and every parent in metadata ``parents``."""
    parents: list[list[str]] = [[] for _ in nodes]
    for cluster, members in enumerate(clustering.clusters):
        for i in members:
            parents[i].append(summaries[cluster].id)
    return [
        dataclasses.replace(
            node,
            parent_id=summaries[clustering.best[i]].id,
            metadata={**node.metadata, "parents": ",".join(parents[i])},
        )
        for i, node in enumerate(nodes)
    ]
