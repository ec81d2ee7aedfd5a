"""Lost in the middle: answer accuracy with the gold passage first, in the middle and last among k passages, as
given to the model (input order) and after each positioning stage; and, through the whole pipeline, edge against
relevance order.

Distractors are the passages dense retrieval ranks highest for the question that hold none of its answers. Each
passage keeps its dense cosine to the question as its relevance score; "with edge" ranks the same k passages by
that score and runs the positioning, so the gold passage lands wherever its score puts it, whatever its input
slot. Identical prompts are generated once and every answer is stored as it arrives (``AnswerCache``), so a sweep
cut short resumes by asking only what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar

from eval.experiments.answer_cache import AnswerCache
from eval.experiments.common import (
    ANSWER_TOKENS,
    PairedDifference,
    Progress,
    format_table,
    no_progress,
    paired_difference,
    run_concurrently,
    stage_entry,
    true_rate,
)
from eval.experiments.nq import NQ_COLLECTION, NQQuestion, Passage, answer_contained
from retrieval.protocols import AnswersQuestions, ChatModel, DenseSearch
from retrieval.types import Chunk, Hit

SLOT_NAMES = ("first", "middle", "last")
PIPELINE_ORDERS = ("relevance", "edge")
Positioner = Callable[[Sequence[Hit]], list[Hit]]
PromptBuilder = Callable[[str, list[Hit]], list[dict[str, str]]]
T = TypeVar("T")


def positions(k: int) -> dict[str, int]:
    """0-based slots of the gold passage among ``k``, by name (``SLOT_NAMES``)."""
    return dict(zip(SLOT_NAMES, (0, (k - 1) // 2, k - 1), strict=True))


def place(gold: T, distractors: Sequence[T], slot: int) -> list[T]:
    """The distractors with ``gold`` inserted at ``slot``."""
    ordered = list(distractors)
    ordered.insert(slot, gold)
    return ordered


class TooFewDistractorsError(RuntimeError):
    """A question whose prompt cannot be built: fewer answer-free passages than the prompt needs."""


class SkippedQuestion(TypedDict):
    id: str
    question: str
    reason: str


@dataclass(frozen=True)
class PositionModels:
    """What the sweep asks: the index for gold and distractor scores, the generator, the prompt layout of the
    pipeline, the positioning stages compared (by name) and the store of answers."""

    index: DenseSearch
    generator: ChatModel
    build_prompt: PromptBuilder
    positioners: Mapping[str, Positioner]
    answers: AnswerCache


@dataclass(frozen=True)
class PositionSweep:
    """One prompt size ``k``: a row per question and gold slot, and the questions that could not be asked."""

    k: int
    rows: list[dict[str, Any]]
    skipped: list[SkippedQuestion]
    seconds: float


@dataclass
class PipelinePositioning:
    """The whole pipeline at ``k`` passages in relevance and in edge order, paired over the same questions."""

    k: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paired: PairedDifference | None = None


@dataclass
class PositionExperiment:
    """The sweep over every ``k`` so far (a report is written after each), and the pipeline comparison if run."""

    data: Path
    questions: int
    sizes: list[int]
    generator: str
    stages: list[str]
    slots: list[str]
    started: float = field(default_factory=time.perf_counter)
    sweeps: list[PositionSweep] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    shortfall_points: dict[str, float] = field(default_factory=dict)
    paired: dict[str, PairedDifference] = field(default_factory=dict)
    pipeline: PipelinePositioning | None = None

    def add(self, sweep: PositionSweep) -> None:
        """Summarises ``sweep`` per gold slot and pairs each stage with gold first over the same questions."""
        self.sweeps.append(sweep)
        for slot_name in [name for name in positions(sweep.k) if name in self.slots]:
            done = [r for r in sweep.rows if r["slot"] == slot_name]
            row: dict[str, Any] = {
                "position": slot_name,
                "k": sweep.k,
                "questions": len(done),
                "accuracy_contains_without": true_rate([r["answer_contained_without"] for r in done]),
            }
            for name in self.stages:
                row[f"accuracy_contains_with_{name}"] = true_rate([r[f"answer_contained_with_{name}"] for r in done])
                landed = sorted(r[f"gold_slot_with_{name}"] for r in done)
                row[f"gold_slot_with_{name}_median"] = landed[len(landed) // 2] if landed else None
            self.results.append(row)
        mine = [r for r in self.results if r["k"] == sweep.k]
        first = self.gold_first_rows(sweep)
        for name in self.stages if sweep.rows else []:
            key = self.stage_key(sweep.k, name)
            self.shortfall_points[key] = round(
                100 * max(mine[0]["accuracy_contains_without"] - r[f"accuracy_contains_with_{name}"] for r in mine), 1
            )
            self.paired[key] = paired_difference(
                [r[f"answer_contained_with_{name}"] for r in first], [r["answer_contained_without"] for r in first]
            )

    @staticmethod
    def stage_key(k: int, stage: str) -> str:
        """The report key of a stage at ``k``: ``"10"`` for edge, ``"10:edge-last"`` for the others."""
        return f"{k}" if stage == "edge" else f"{k}:{stage}"

    @staticmethod
    def gold_first_rows(sweep: PositionSweep) -> list[dict[str, Any]]:
        return sorted((r for r in sweep.rows if r["slot"] == "first"), key=lambda r: r["id"])

    def sweep_lines(self, sweep: PositionSweep) -> list[str]:
        """What to print after ``sweep``: skipped questions, the table so far, each stage against gold first."""
        lines = []
        if sweep.skipped:
            lines.append(
                f"k={sweep.k}: skipped {len(sweep.skipped)} questions, too few answer-free distractors: "
                + "; ".join(f"{s['id']} ({s['question']!r})" for s in sweep.skipped)
            )
        lines.append(f"k={sweep.k}: {len(sweep.rows)} rows (question × gold slot) in {sweep.seconds:.0f} s")
        lines.append(format_table(self.results))
        first = self.gold_first_rows(sweep)
        ranked_first = sum(r["gold_rank"] == 1 for r in first)
        for name in self.stages if sweep.rows else []:
            key = self.stage_key(sweep.k, name)
            pair = self.paired[key]
            lines.append(
                f"k={sweep.k}: largest shortfall with {name} against gold first (input order): "
                f"{self.shortfall_points[key]} points"
            )
            lines.append(
                f"k={sweep.k}: {name} vs gold first, paired over {pair['questions']} questions: "
                f"{pair['difference_points']:+} points (95% CI {pair['ci95_low_points']:+} to "
                f"{pair['ci95_high_points']:+}); {pair['only_treated_right']} right only with {name}, "
                f"{pair['only_baseline_right']} only with gold first; the score ranked the gold passage first for "
                f"{ranked_first} of {len(first)}"
            )
        return lines

    def report(self) -> dict[str, Any]:
        """The JSON report: the summary rows, both comparisons and every answer."""
        payload: dict[str, Any] = {
            "data": str(self.data),
            "questions": self.questions,
            "k": self.sizes,
            "k_done": [s.k for s in self.sweeps],
            "generator": self.generator,
            "answer_tokens": ANSWER_TOKENS,
            "distractors": "top dense (all-MiniLM-L6-v2) passages holding none of the answers",
            "relevance_score": "dense cosine of passage and question",
            "seconds": round(time.perf_counter() - self.started, 1),
            "results": self.results,
            "edge_shortfall_vs_gold_first_points": self.shortfall_points,
            "edge_vs_gold_first_paired": self.paired,
            "positioning": self.stages,
            "slots": self.slots,
            "skipped": {str(s.k): s.skipped for s in self.sweeps},
            "per_question": {str(s.k): s.rows for s in self.sweeps},
        }
        if self.pipeline is not None:
            payload.update(pipeline=self.pipeline.rows, per_question_pipeline=self.pipeline.runs)
            if self.pipeline.paired is not None:
                payload["pipeline_edge_vs_relevance_paired"] = self.pipeline.paired
        return payload


def run_position_experiment(
    models: PositionModels,
    questions: list[NQQuestion],
    passages: dict[str, Passage],
    *,
    data: Path,
    sizes: Sequence[int],
    workers: int,
    slots: Sequence[str] = SLOT_NAMES,
    stored_only: bool = False,
    on_progress: Progress = no_progress,
    on_sweep: Callable[[PositionExperiment, PositionSweep], None] = lambda experiment, sweep: None,
) -> PositionExperiment:
    """The sweep at each prompt size in ``sizes``; ``on_sweep`` is called after each (to print and write the report).

    ``stored_only``: ask nothing; report the questions whose prompts all have stored answers (a sweep cut short).
    """
    experiment = PositionExperiment(
        data, len(questions), list(sizes), models.generator.model, list(models.positioners), list(slots)
    )
    for k in sizes:
        sweep = position_sweep(models, questions, passages, k, workers, slots, stored_only, on_progress)
        experiment.add(sweep)
        on_sweep(experiment, sweep)
    return experiment


def _hit(passage: Passage, score: float) -> Hit:
    chunk = Chunk(id=passage.id, doc_id=passage.id, text=f"{passage.title}\n{passage.text}")
    return Hit(chunk, score, "dense")


def _scored(index: DenseSearch, q: NQQuestion, passages: dict[str, Passage], k: int) -> tuple[Hit, list[Hit]]:
    """The gold passage and the ``k - 1`` best-scored answer-free distractors, each with its dense cosine."""
    gold = index.search_dense(NQ_COLLECTION, q.question, 1, {"passage": q.gold})
    if not gold:
        raise RuntimeError(f"the gold passage {q.gold} of {q.id} is not in the {NQ_COLLECTION} collection")
    found = index.search_dense(NQ_COLLECTION, q.question, 3 * k + 10, {"passage": {"$ne": q.gold}})
    others: dict[str, float] = {}
    for h in found:
        passage = passages.get(h.chunk.doc_id)
        if passage and h.chunk.doc_id not in others and not answer_contained(passage.text, q.answers):
            others[h.chunk.doc_id] = h.score
    if len(others) < k - 1:
        raise TooFewDistractorsError(f"{len(others)} answer-free distractors of {k - 1} (answers {q.answers})")
    distractors = [_hit(passages[pid], score) for pid, score in list(others.items())[: k - 1]]
    return _hit(passages[q.gold], gold[0].score), distractors


def _plans(
    models: PositionModels, questions: list[NQQuestion], passages: dict[str, Passage], k: int, slots: Sequence[str]
) -> tuple[list[dict[str, Any]], list[SkippedQuestion]]:
    """Per question and gold slot: the prompt in input order and after each positioning stage."""
    plans: list[dict[str, Any]] = []
    skipped: list[SkippedQuestion] = []
    for q in questions:
        try:
            gold, distractors = _scored(models.index, q, passages, k)
        except TooFewDistractorsError as exc:
            skipped.append({"id": q.id, "question": q.question, "reason": str(exc)})
            continue
        for slot_name, slot in positions(k).items():
            if slot_name not in slots:
                continue
            given = place(gold, distractors, slot)
            ranked = sorted(given, key=lambda h: -h.score)
            plan: dict[str, Any] = {
                "question": q,
                "slot": slot_name,
                "without": models.build_prompt(q.question, given),
                "gold_rank": ranked.index(gold) + 1,
            }
            for name, order in models.positioners.items():
                positioned = order(ranked)
                plan[f"with_{name}"] = models.build_prompt(q.question, positioned)
                plan[f"gold_slot_with_{name}"] = [h.chunk.id for h in positioned].index(q.gold) + 1
            plans.append(plan)
    return plans, skipped


def position_sweep(
    models: PositionModels,
    questions: list[NQQuestion],
    passages: dict[str, Passage],
    k: int,
    workers: int,
    slots: Sequence[str] = SLOT_NAMES,
    stored_only: bool = False,
    on_progress: Progress = no_progress,
) -> PositionSweep:
    """One row per question and gold slot (of ``slots``): answer containment in input order and after each
    positioning stage; and the questions skipped because too few retrieved passages are free of every answer (an
    answer as short as "S" occurs in nearly every passage, so no prompt without it can be built)."""
    started = time.perf_counter()
    variants = ("without", *(f"with_{name}" for name in models.positioners))
    plans, skipped = _plans(models, questions, passages, k, slots)
    prompts = {json.dumps(p[v]): p[v] for p in plans for v in variants}
    cache = models.answers
    keys = [key for key in prompts if cache.get(key) is None]
    on_progress(f"k={k}: {len(prompts)} distinct prompts, {len(prompts) - len(keys)} answered by an earlier run")

    def ask(key: str) -> str:
        text = models.generator.chat(prompts[key], max_tokens=ANSWER_TOKENS).text
        cache.put(key, text)
        return text

    if stored_only:
        complete = {
            q.id
            for q in questions
            if all(cache.get(json.dumps(p[v])) is not None for p in plans if p["question"] is q for v in variants)
        }
        plans = [p for p in plans if p["question"].id in complete]
        on_progress(f"k={k}: --stored-only, {len(complete)} of {len(questions)} questions fully answered")
    else:
        run_concurrently(ask, keys, workers)
    answers = {key: cache.get(key) or "" for key in prompts}
    rows = []
    for p in plans:
        q = p["question"]
        row: dict[str, Any] = {"id": q.id, "slot": p["slot"], "gold_rank": p["gold_rank"]}
        without = answers[json.dumps(p["without"])]
        row["answer_contained_without"], row["answer_without"] = answer_contained(without, q.answers), without
        for name in models.positioners:
            answer = answers[json.dumps(p[f"with_{name}"])]
            row[f"gold_slot_with_{name}"] = p[f"gold_slot_with_{name}"]
            row[f"answer_contained_with_{name}"] = answer_contained(answer, q.answers)
            row[f"answer_with_{name}"] = answer
        rows.append(row)
    return PositionSweep(k, rows, skipped, time.perf_counter() - started)


class CountsReuse(Protocol):
    """A generator in front of stored answers (``CachedGenerator``): how many answers it read back so far."""

    @property
    def reused(self) -> int: ...


def compare_pipeline_positioning(
    pipeline: AnswersQuestions,
    stored: CountsReuse,
    questions: list[NQQuestion],
    *,
    k: int,
    workers: int,
    on_progress: Progress = no_progress,
    on_order: Callable[[PipelinePositioning], None] = lambda comparison: None,
) -> PipelinePositioning:
    """The full pipeline (retrieval, fusion, ``k`` passages) with edge positioning against plain relevance order,
    paired over the same questions. ``pipeline`` generates through ``stored``, so a run cut short resumes: the
    retrieval is re-run, the answers it leads to are read back. ``on_order`` is called after each order (to
    rewrite the report)."""
    comparison = PipelinePositioning(k)
    for positioning in PIPELINE_ORDERS:
        options = {"context_top_k": k, "positioning": positioning, "max_answer_tokens": ANSWER_TOKENS}

        def run(q: NQQuestion, options: dict[str, Any] = options) -> dict[str, Any]:
            started = time.perf_counter()
            answer = pipeline.run(q.question, NQ_COLLECTION, None, options=options)
            ms = (time.perf_counter() - started) * 1000
            doc_of = {h["chunk_id"]: h["doc_id"] for h in stage_entry(answer.trace, "fusion").get("hits", [])}
            order = [doc_of.get(cid) for cid in stage_entry(answer.trace, "position").get("order", [])]
            return {
                "id": q.id,
                "answer_contained": answer_contained(answer.text, q.answers),
                "ms": round(ms),
                "gold_slot": order.index(q.gold) + 1 if q.gold in order else None,
                "answer": answer.text,
            }

        started, reused = time.perf_counter(), stored.reused
        comparison.runs[positioning] = runs = run_concurrently(run, questions, workers)
        on_progress(
            f"pipeline, {positioning}: {len(questions)} questions in {time.perf_counter() - started:.0f} s, "
            f"{stored.reused - reused} answers from an earlier run"
        )
        comparison.rows.append(
            {"pipeline": positioning, "k": k, "accuracy_contains": true_rate([r["answer_contained"] for r in runs])}
        )
        on_order(comparison)
    comparison.paired = paired_difference(
        [r["answer_contained"] for r in comparison.runs["edge"]],
        [r["answer_contained"] for r in comparison.runs["relevance"]],
    )
    return comparison


def pipeline_lines(comparison: PipelinePositioning) -> list[str]:
    """What to print after the pipeline comparison: its table and the paired difference."""
    pair = comparison.paired
    if pair is None:
        raise ValueError("the pipeline comparison has not finished: no paired difference yet")
    return [
        format_table(comparison.rows),
        f"pipeline, k={comparison.k}: edge vs relevance order, paired over {pair['questions']} questions: "
        f"{pair['difference_points']:+} points (95% CI {pair['ci95_low_points']:+} to {pair['ci95_high_points']:+}); "
        f"{pair['only_treated_right']} right only with edge, {pair['only_baseline_right']} only with relevance order",
    ]
