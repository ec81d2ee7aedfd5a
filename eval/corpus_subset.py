"""A fixed, documented subset of a BEIR corpus, for evaluations too slow to run on every document.

Embedding all of SciFact (5,183 abstracts) once per chunker is slow on a small CPU box, above all for the
semantic chunkers (every sentence is embedded) and RAPTOR (an LLM summary per cluster). The subset keeps every
document judged for the evaluated queries, so each query's relevant documents stay findable, and fills up with a
seeded sample of the other documents as distractors. The same arguments always give the same subset, so every
chunker is compared on exactly the same documents.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping


def corpus_subset(
    corpus_ids: Iterable[str], qrels: Mapping[str, Mapping[str, int]], size: int, seed: int = 0
) -> list[str]:
    """The doc ids judged in ``qrels`` plus a ``seed``-ed sample of the rest, ``size`` in all, in corpus order.

    Raises ``ValueError`` when ``size`` cannot hold the judged documents (evaluate fewer queries instead) or a
    judged document is missing from the corpus."""
    ordered = list(corpus_ids)
    present = set(ordered)
    judged = {doc_id for judgments in qrels.values() for doc_id in judgments}
    missing = sorted(judged - present)
    if missing:
        raise ValueError(f"{len(missing)} judged documents are not in the corpus (first: {missing[0]})")
    if size < len(judged):
        raise ValueError(
            f"a subset of {size} documents cannot hold the {len(judged)} judged for the evaluated queries; "
            "raise the size or evaluate fewer queries"
        )
    others = sorted(present - judged)
    chosen = judged | set(random.Random(seed).sample(others, min(size - len(judged), len(others))))
    return [doc_id for doc_id in ordered if doc_id in chosen]
