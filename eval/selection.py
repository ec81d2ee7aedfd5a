"""Choose on one part, report on another: the selection step of the fit/choose/report protocol (``eval.splits``).

Every candidate setting is scored per query on both parts; the one with the best ``choose`` mean wins, and its
``report`` mean is the number to quote, with a paired bootstrap interval against the baseline on ``report``. Both
columns are kept side by side so a reader sees how much of a choose-part gain was the choice itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

from eval.bootstrap import PairedInterval, paired_bootstrap
from eval.metrics import ndcg_at_k
from retrieval.types import Hit

__all__ = ["Selection", "alpha_selection", "choose_then_report", "format_selection", "per_query_ndcg"]


def per_query_ndcg(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int
) -> dict[str, float]:
    """nDCG@k of each judged query's ranking (doc ids, best first); a judged query without a ranking scores 0,
    as in ``eval.metrics.evaluate_retrieval``, whose mean over the same queries this reproduces."""
    judged = {qid: rels for qid, rels in qrels.items() if any(rel > 0 for rel in rels.values())}
    return {qid: ndcg_at_k(rankings.get(qid, ()), rels, k) for qid, rels in judged.items()}


@dataclass(frozen=True)
class Selection:
    """One tuned choice: each candidate's mean on ``choose`` and ``report``, the winner (best on ``choose``; ties go
    to the earlier candidate) and the winner's paired gain over ``baseline`` on both parts."""

    what: str
    candidates: tuple[str, ...]
    choose: dict[str, float]
    report: dict[str, float]
    chosen: str
    baseline: str
    choose_gain: PairedInterval
    report_gain: PairedInterval
    fixed: bool = False
    """The winner was fixed beforehand (a refit model, trained on ``choose`` too, keeps the settings chosen for its
    fit-only twin): nothing was chosen here and the ``choose`` column is not a held-out number."""

    def as_dict(self) -> dict[str, object]:
        return {
            "what": self.what,
            "chosen": self.chosen,
            "fixed": self.fixed,
            "baseline": self.baseline,
            "table": {
                c: {"choose": round(self.choose[c], 5), "report": round(self.report[c], 5)} for c in self.candidates
            },
            "gain_over_baseline": {"choose": self.choose_gain.as_dict(), "report": self.report_gain.as_dict()},
        }


def choose_then_report(
    what: str,
    per_query: Mapping[str, Mapping[str, float]],
    baseline: str,
    choose_ids: Sequence[str],
    report_ids: Sequence[str],
    *,
    seed: int = 0,
    fixed: str | None = None,
) -> Selection:
    """Pick the candidate (a key of ``per_query``, each mapping query id → score) with the best mean over
    ``choose_ids``; ``baseline`` (also a key) is what the gain is measured against. Every candidate must score
    every query of both parts, and the parts must not share a query. ``fixed`` names a candidate settled before
    this run; it is then reported as it is, whatever ``choose`` says."""
    if set(choose_ids) & set(report_ids):
        raise ValueError("the choose and report parts share queries: the report would not be honest")
    if not choose_ids or not report_ids:
        raise ValueError("both the choose and the report part need queries")
    if baseline not in per_query:
        raise ValueError(f"baseline {baseline!r} is not among the candidates")
    if fixed is not None and fixed not in per_query:
        raise ValueError(f"the fixed candidate {fixed!r} is not among the candidates")
    needed = set(choose_ids) | set(report_ids)
    for name, scores in per_query.items():
        if missing := needed - set(scores):
            raise ValueError(f"{name!r} has no score for {len(missing)} queries (first: {sorted(missing)[0]})")
    candidates = tuple(per_query)
    choose = {c: fmean(per_query[c][q] for q in choose_ids) for c in candidates}
    report = {c: fmean(per_query[c][q] for q in report_ids) for c in candidates}
    chosen = fixed if fixed is not None else max(candidates, key=lambda c: (choose[c], -candidates.index(c)))

    def gain(ids: Sequence[str]) -> PairedInterval:
        return paired_bootstrap(
            {q: per_query[chosen][q] for q in ids}, {q: per_query[baseline][q] for q in ids}, seed=seed
        )

    return Selection(
        what, candidates, choose, report, chosen, baseline, gain(choose_ids), gain(report_ids), fixed is not None
    )


def format_selection(selection: Selection, metric: str = "nDCG@10") -> list[str]:
    """A table of every candidate's choose and report numbers, the winner marked, and the gains in points."""
    width = max(len(c) for c in selection.candidates) + 2
    how = (
        "fixed beforehand (`choose` was trained on: its column is not held out)"
        if selection.fixed
        else "chosen on `choose`"
    )
    lines = [f"{selection.what}: {how}, reported on `report` ({metric})",
             "  " + "candidate".ljust(width) + "choose".rjust(9) + "report".rjust(9)]  # fmt: skip
    picked = "  <- fixed" if selection.fixed else "  <- chosen"
    for c in selection.candidates:
        mark = picked if c == selection.chosen else ("  (baseline)" if c == selection.baseline else "")
        lines.append(f"  {c.ljust(width)}{selection.choose[c]:9.4f}{selection.report[c]:9.4f}{mark}")
    lines.append(
        f"  {selection.chosen} over {selection.baseline}, points [95% paired bootstrap]: choose "
        f"{selection.choose_gain.points()}, report {selection.report_gain.points()}"
    )
    return lines


def alpha_selection(
    lists: Mapping[str, Mapping[str, Sequence[Hit]]],
    qrels: Mapping[str, Mapping[str, int]],
    choose_ids: Sequence[str],
    report_ids: Sequence[str],
    alphas: Sequence[float],
    current: float,
    k: int = 10,
) -> Selection:
    """Convex fusion's α chosen on ``choose`` from each query's ``{"bm25", "dense"}`` lists (``eval.retrieval_quality
    .gather``), reported on ``report``, against the ``current`` α (added to the candidates if missing)."""
    from eval.retrieval_quality import doc_ranking
    from retrieval.fusion import ConvexFusion

    def label(alpha: float) -> str:
        return f"α={alpha:.2f}"

    per_query = {}
    for alpha in dict.fromkeys([*alphas, current]):
        fusion = ConvexFusion(alpha)
        rankings = {q: doc_ranking(fusion.fuse(lists[q])) for q in [*choose_ids, *report_ids]}
        per_query[label(alpha)] = per_query_ndcg(rankings, {q: qrels[q] for q in rankings}, k)
    return choose_then_report("hybrid convex-fusion α", per_query, label(current), choose_ids, report_ids)
