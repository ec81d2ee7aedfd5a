"""Honest selection: a seeded partition of labelled queries into ``fit``, ``choose`` and ``report`` parts.

A number that helped pick a setting is not an estimate of how the setting does on new queries: the pick is tuned
to that number's noise. So every tuned choice (a rerank weight, a pair length, a fusion α, a training recipe) is made
on ``choose``, models learn on ``fit`` only, and the number a README may quote comes from ``report``, a part nothing
was chosen on. The partition is a pure function of the query ids, the sizes and the seed, and its record (seed,
sizes, order and a digest of each part) goes into every report that uses it, so anyone can rebuild and check it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_CHOOSE", "DEFAULT_REPORT", "PARTS", "QuerySplit", "kfold", "split_queries_three_way"]

PARTS = ("fit", "choose", "report")
"""What each part is for: training, selection of settings, and the reported number (used for nothing else)."""
ORDER = ("report", "fit", "choose")
"""The order the parts are cut from the shuffled ids. ``choose`` is cut last, as the old single held-out set was
(``app.reranker.data.split_queries`` shuffles the same way): with seed 13 and ``choose`` at most 209, ``report``
holds none of the 209 queries that ``ragline reranker train --held-out 209`` held out before this protocol and that
earlier choices (blend weight 0.4, 192-token pairs) were made on."""

DEFAULT_CHOOSE = 150
DEFAULT_REPORT = 200
"""The reranker's defaults. SciFact train has 809 queries: 459 to fit, 150 to choose on, 200 to report; with seed 13
none of the report part was in the old 209-query held-out set that earlier choices were made on (see ``ORDER``)."""


@dataclass(frozen=True)
class QuerySplit:
    """The three disjoint parts (each sorted) and how they were made."""

    seed: int
    fit: tuple[str, ...]
    choose: tuple[str, ...]
    report: tuple[str, ...]

    def part(self, name: str) -> tuple[str, ...]:
        if name not in PARTS:
            raise ValueError(f"part must be one of {', '.join(PARTS)}, got {name!r}")
        return getattr(self, name)  # type: ignore[no-any-return]

    @property
    def sizes(self) -> dict[str, int]:
        return {name: len(self.part(name)) for name in PARTS}

    def as_record(self) -> dict[str, object]:
        """What a report stores: enough to rebuild the split (seed, sizes, order) and to check it (digests)."""
        return {
            "seed": self.seed,
            "sizes": self.sizes,
            "order": list(ORDER),
            "rule": "sorted query ids shuffled with random.Random(seed); parts cut in `order`",
            "sha256": {name: _digest(self.part(name)) for name in PARTS},
        }


def split_queries_three_way(qids: Iterable[str], *, choose: int, report: int, seed: int) -> QuerySplit:
    """``report`` and ``choose`` queries and the rest for ``fit``, from a ``seed``-ed shuffle of the sorted ids.

    The input order does not matter (ids are sorted first) and duplicates are refused, so the same ids, sizes and
    seed always give the same parts. ``fit`` may not be empty: something has to be learned from.
    """
    ids = list(qids)
    if len(set(ids)) != len(ids):
        raise ValueError("query ids must be unique")
    if choose < 1 or report < 1:
        raise ValueError(f"choose and report must each hold at least one query, got {choose} and {report}")
    if choose + report >= len(ids):
        raise ValueError(
            f"choose + report ({choose} + {report}) must leave queries to fit on; there are {len(ids)} queries"
        )
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    fit_size = len(ids) - choose - report
    sizes = {"report": report, "fit": fit_size, "choose": choose}
    parts: dict[str, tuple[str, ...]] = {}
    start = 0
    for name in ORDER:
        parts[name] = tuple(sorted(shuffled[start : start + sizes[name]]))
        start += sizes[name]
    return QuerySplit(seed, parts["fit"], parts["choose"], parts["report"])


def split_from_record(qids: Iterable[str], record: Mapping[str, object]) -> QuerySplit:
    """Rebuild a split from its record and refuse if the ids no longer give the recorded parts (data changed)."""
    sizes = record["sizes"]
    if not isinstance(sizes, Mapping):
        raise ValueError("split record has no sizes")
    split = split_queries_three_way(
        qids, choose=int(sizes["choose"]), report=int(sizes["report"]), seed=int(str(record["seed"]))
    )
    if split.as_record()["sha256"] != record.get("sha256"):
        raise ValueError("these query ids do not rebuild the recorded split (the queries file or qrels changed)")
    return split


def kfold(qids: Iterable[str], k: int, seed: int) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """``k`` (rest, fold) pairs from a seeded shuffle of the sorted ids: every id is in exactly one fold.

    For choices cheap enough to make k times (a fusion α, a blend weight): choose on the rest, score on the fold,
    and the mean over folds estimates the chosen setting on unseen queries with every query used once."""
    ids = sorted(qids)
    if not 2 <= k <= len(ids):
        raise ValueError(f"k must be between 2 and the number of queries ({len(ids)}), got {k}")
    random.Random(seed).shuffle(ids)
    folds = [tuple(sorted(ids[i::k])) for i in range(k)]
    return [(tuple(sorted(q for j, fold in enumerate(folds) if j != i for q in fold)), folds[i]) for i in range(k)]


def _digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:16]
