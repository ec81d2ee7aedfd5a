"""Long-context reranking: each candidate scored by the cross-encoder *with* the other candidates of its document.

Isolated reranking (``retrieval.rerank``) shows the cross-encoder one chunk at a time, so a chunk that answers the
query only together with its neighbours ("It" in the second sentence, the result in one chunk and the claim it
tests in the next) is scored as if it stood alone. Long-context reranking gives the scorer what the model will
read: the retrieved candidates are grouped by document, put in document order (``chunk_index``), and each one is
scored in a joint passage — itself plus its retrieved neighbours of the same document, in document order, nearest
first, as many as fit the cross-encoder's context (``max_length`` tokens with the query). The score is the
cross-encoder's for (query, joint passage), blended into the incoming score exactly as isolated reranking blends.

This is passage scoring with document context, the idea behind BERT-MaxP/FirstP (Dai & Callan, "Deeper Text
Understanding for IR with Contextual Neural Language Modeling", SIGIR 2019) and PARADE (Li et al., 2020), applied
to the candidates retrieval already found rather than to whole documents: no new model, the same cross-encoder,
and the same number of pairs or fewer (candidates whose joint passages are identical are scored once). A listwise
LLM scorer over one joint prompt (the generator's log-probabilities) was the other route; on a CPU it costs a
prefill of every candidate per query, seconds where this costs a rerank.

A candidate without a position (a RAPTOR summary, a chunk from a chunker that records none) is scored alone, and
the trace says how many were.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.rerank import CrossEncoderReranker, blend_and_sort
from retrieval.types import Hit

POSITION_FIELD = "chunk_index"
"""Chunk metadata key of a chunk's place in its document (every built-in leaf chunker writes it)."""
ADJACENT, GAP = " ", " … "
"""Joins two candidates that are neighbours in the document, and two with unretrieved text between them."""
PAIR_OVERHEAD = 3
"""Special tokens of a (query, passage) pair: [CLS] query [SEP] passage [SEP]."""


@dataclass(frozen=True)
class JointPassages:
    """Per candidate, the index of its joint passage in ``texts``; how many candidates were scored alone."""

    texts: list[str]
    of_hit: list[int]
    alone: int


def _position(hit: Hit) -> int | None:
    value = hit.chunk.metadata.get(POSITION_FIELD)
    return value if isinstance(value, int) and hit.chunk.level == 0 else None


def joint_passages(hits: Sequence[Hit], budget: int, count: Callable[[str], int]) -> JointPassages:
    """For each hit, its joint passage: the hit and its retrieved same-document neighbours in document order,
    grown from the hit outwards (nearer neighbour first, the earlier one on a tie) while the passage stays within
    ``budget`` tokens as ``count`` measures them. Identical passages are stored once."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for index, hit in enumerate(hits):
        position = _position(hit)
        if position is not None:
            groups.setdefault(hit.chunk.doc_id, []).append((position, index))
    for members in groups.values():
        members.sort()
    tokens = [count(hit.chunk.text) for hit in hits]
    gap_tokens = count(GAP.strip())
    texts: list[str] = []
    seen: dict[str, int] = {}
    of_hit: list[int] = []
    alone = 0
    for index, hit in enumerate(hits):
        position = _position(hit)
        if position is None:
            alone += 1
            text = hit.chunk.text
        else:
            text = _grow(hits, groups[hit.chunk.doc_id], index, tokens, gap_tokens, budget)
        of_hit.append(seen.setdefault(text, len(seen)))
        if of_hit[-1] == len(texts):
            texts.append(text)
    return JointPassages(texts, of_hit, alone)


def _grow(
    hits: Sequence[Hit], members: list[tuple[int, int]], index: int, tokens: list[int], gap_tokens: int, budget: int
) -> str:
    """The joint passage of ``hits[index]`` within its document's sorted ``members`` (position, hit index)."""
    centre = next(slot for slot, (_, hit_index) in enumerate(members) if hit_index == index)
    first = last = centre
    used = tokens[index]
    while True:
        options = [slot for slot in (first - 1, last + 1) if 0 <= slot < len(members)]
        options.sort(key=lambda slot: (abs(members[slot][0] - members[centre][0]), slot))
        grown = False
        for slot in options:
            inner = first if slot < first else last  # the member it joins
            adjacent = abs(members[slot][0] - members[inner][0]) <= 1
            cost = tokens[members[slot][1]] + (0 if adjacent else gap_tokens)
            if used + cost <= budget:
                used += cost
                first, last = min(first, slot), max(last, slot)
                grown = True
                break
        if not grown:
            break
    parts = [hits[members[first][1]].chunk.text]
    for slot in range(first + 1, last + 1):
        adjacent = members[slot][0] - members[slot - 1][0] <= 1
        parts.append((ADJACENT if adjacent else GAP) + hits[members[slot][1]].chunk.text)
    return "".join(parts)


def reranker_token_counter(reranker: CrossEncoderReranker) -> Callable[[str], int]:
    """Counts tokens with the cross-encoder's own tokenizer, without special tokens (they are ``PAIR_OVERHEAD``)."""
    from transformers import AutoTokenizer

    local = Path(reranker.source).exists()
    tokenizer: Any = AutoTokenizer.from_pretrained(reranker.source, local_files_only=local)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


class LongContextReranker:
    """Scores candidates in joint passages of their document (see the module docstring); same ``rerank`` contract
    as ``CrossEncoderReranker``, whose model (loaded at the joint ``max_length``) it uses."""

    def __init__(self, reranker: CrossEncoderReranker, count: Callable[[str], int] | None = None) -> None:
        self.reranker = reranker
        self.count = count or reranker_token_counter(reranker)

    @property
    def name(self) -> str:
        return self.reranker.name

    @property
    def max_length(self) -> int:
        return self.reranker.max_length

    def passages(self, query: str, hits: Sequence[Hit]) -> JointPassages:
        """The joint passages of ``hits`` for ``query``: the room left by the query in ``max_length``."""
        budget = self.max_length - self.count(query) - PAIR_OVERHEAD
        if budget <= 0:
            raise ValueError(
                f"the query takes {self.count(query)} tokens, leaving no room in the reranker's {self.max_length}"
            )
        return joint_passages(hits, budget, self.count)

    def rerank(self, query: str, hits: Sequence[Hit], weight: float = 1.0) -> list[Hit]:
        """``hits`` rescored from their joint passages and sorted best first; the chunks are returned unchanged."""
        return self.rerank_joint(query, hits, weight)[0]

    def rerank_joint(self, query: str, hits: Sequence[Hit], weight: float = 1.0) -> tuple[list[Hit], JointPassages]:
        """``rerank``, and the joint passages it scored (for the trace)."""
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be within [0, 1], got {weight}")
        per_hit, joint = self.score_hits(query, hits)
        return blend_and_sort(hits, per_hit, weight), joint

    def score_hits(self, query: str, hits: Sequence[Hit]) -> tuple[np.ndarray, JointPassages]:
        """One cross-encoder score per hit, each its joint passage's (identical passages scored once)."""
        joint = self.passages(query, hits)
        scores = self.reranker.score(query, joint.texts)
        return np.asarray([scores[i] for i in joint.of_hit], dtype=np.float32), joint
