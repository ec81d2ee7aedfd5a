"""``ragline eval position | compression | abstention | prefix-cache``: context experiments on NQ-Open.

Each command talks to a running vLLM (``ragline llm serve``; ``--llm-url`` to point elsewhere), reads the
``nq-open-oracle`` folder, prints a table and writes a JSON report under ``<data_dir>/reports/``. The passages are
ingested once into a collection (incremental: a second run embeds nothing) with their id as ``passage`` metadata,
which is what lets the abstention experiment withhold a question's gold passage with a filter.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from app.query.pipeline import Answer, Pipeline
    from app.resources import Resources
    from eval.context_experiments import NQQuestion, Passage

DEFAULT_DATA = Path("../shared/data/nq-open-oracle")
COLLECTION = "nq-open-oracle"
SAMPLE_COLLECTION = "sample"
DATASETS = Path(__file__).resolve().parent.parent / "eval" / "datasets"
SAMPLE_QA = DATASETS / "sample_qa.jsonl"
SAMPLE_OFFTOPIC = DATASETS / "sample_offtopic.jsonl"
DataOption = Annotated[Path, typer.Option("--data", help="The nq-open-oracle folder.")]
LimitOption = Annotated[int, typer.Option(min=1, help="Questions to evaluate (the first N).")]
UrlOption = Annotated[str | None, typer.Option(help="vLLM base URL; default RAGLINE_LLM_BASE_URL.")]
WorkersOption = Annotated[int, typer.Option(min=1, help="Requests in flight (vLLM batches them).")]
ANSWER_TOKENS = 48
ANSWER_TAG = f"answer-tokens={ANSWER_TOKENS}"


def _resources(llm_url: str | None) -> Resources:
    from app.cli.common import fail as _fail
    from app.resources import Resources
    from app.settings import get_settings
    from app.vllm_server import is_ready

    settings = get_settings()
    if llm_url:
        settings = settings.model_copy(update={"llm_base_url": llm_url})
    if not is_ready(settings.llm_base_url):
        raise _fail(f"no vLLM answers at {settings.llm_base_url}: start one with `ragline llm serve` or give --llm-url")
    return Resources(settings)


def _load(data: Path, limit: int | None, extra: int = 300) -> tuple[list[NQQuestion], dict[str, Passage]]:
    """The first ``limit`` questions and the corpus: gold passages of all questions plus ``extra`` others."""
    from app.cli.common import fail as _fail
    from eval.context_experiments import load_nq

    try:
        questions, passages = load_nq(data)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    return questions[:limit] if limit else questions, nq_corpus(questions, passages, extra)


def nq_corpus(questions: list[NQQuestion], passages: dict[str, Passage], extra: int) -> dict[str, Passage]:
    """The gold passages of every question plus the first ``extra`` others: all 2,600 take half an hour to embed
    on a busy 2-core host, and retrieval over the golds of other questions still yields hard distractors."""
    golds = {q.gold for q in questions}
    others = [pid for pid in passages if pid not in golds][:extra]
    return {pid: passages[pid] for pid in (*sorted(golds), *others)}


def ensure_nq_collection(resources: Resources, passages: dict[str, Passage]) -> None:
    from app.chunking import make_chunker
    from ingest.document import Document
    from ingest.job import ingest_documents

    documents = (Document(p.id, f"{p.title}\n{p.text}", {"title": p.title, "passage": p.id}) for p in passages.values())
    chunker = make_chunker(resources, "fixed")
    summary = ingest_documents(resources.index, chunker, documents, COLLECTION, total=len(passages))
    typer.echo(f"{COLLECTION}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} unchanged")


@contextmanager
def _llm_errors() -> Iterator[None]:
    """An LLM failure mid-run (a timeout on a busy server) ends the command with its message, not a traceback."""
    from app.cli.common import fail as _fail
    from app.llm import LLMUnavailableError

    try:
        yield
    except LLMUnavailableError as exc:
        raise _fail(f"{exc} (a busy server: raise RAGLINE_LLM_TIMEOUT_S or lower --workers)") from None


def _write(resources: Resources, name: str, payload: dict[str, Any]) -> Path:
    reports = resources.settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / f"context-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    typer.echo(f"report: {path}")
    return path


def _answer(
    pipeline: Pipeline, question: str, options: dict[str, Any], filters: dict[str, Any] | None = None
) -> tuple[Answer, float]:
    started = time.perf_counter()
    answer = pipeline.run(question, COLLECTION, filters, options=options)
    return answer, (time.perf_counter() - started) * 1000


def _stage(answer: Any, name: str) -> dict[str, Any]:
    return next((s for s in answer.trace["stages"] if s["stage"] == name), {})


def eval_position(
    data: DataOption = DEFAULT_DATA,
    limit: LimitOption = 40,
    k: Annotated[
        list[int] | None, typer.Option("--k", min=3, help="Passages in each prompt; repeat for several (10, 20).")
    ] = None,
    workers: WorkersOption = 8,
    pipeline_runs: Annotated[
        bool, typer.Option("--pipeline", help="Also run the full pipeline with edge against relevance order.")
    ] = False,
    stored_only: Annotated[
        bool, typer.Option("--stored-only", help="Ask nothing: report the questions a cut-short run fully answered.")
    ] = False,
    positioning: Annotated[
        list[str] | None,
        typer.Option("--positioning", help="Positioning stages compared (repeat): edge, edge-last, relevance."),
    ] = None,
    slot: Annotated[
        list[str] | None,
        typer.Option(
            "--slot",
            help="Input slots of the gold passage (repeat): first, middle, last; default all three. First is the "
            "baseline and always asked.",
        ),
    ] = None,
    llm_url: UrlOption = None,
) -> None:
    """Lost in the middle: exact match with the gold passage first, in the middle and last among k passages, as
    given to the model (input order) and after our edge positioning stage.

    Distractors are the passages dense retrieval ranks highest for the question that hold none of its answers. Each
    passage keeps its dense cosine to the question as its relevance score; "with edge" ranks the same k passages by
    that score and runs the positioning stage, so the gold passage lands wherever its score puts it, whatever its
    input slot. Identical prompts are generated once (with edge, the three input slots give the same prompt unless
    scores tie). A report is written after each k, so a long sweep keeps what it finished.

    ``--slot first`` asks two prompts per question instead of four (without positioning, gold first; and each
    stage): the stage's prompt does not depend on the input slot, so this is how to afford the hundreds of questions
    a gap of two points needs on a CPU server.
    """
    from app.context.positioning import POSITIONINGS
    from eval.context_experiments import SLOT_NAMES, em_rate, format_table, paired_difference, positions

    sizes = k or [10, 20]
    stages = list(dict.fromkeys(positioning or ["edge"]))
    if unknown := [name for name in stages if name not in POSITIONINGS or name == "document"]:
        raise typer.BadParameter(f"--positioning takes edge, edge-last or relevance; got {', '.join(unknown)}")
    if unknown := [name for name in slot or [] if name not in SLOT_NAMES]:
        raise typer.BadParameter(f"--slot takes first, middle or last; got {', '.join(unknown)}")
    slots = [name for name in SLOT_NAMES if name == "first" or name in (slot or SLOT_NAMES)]
    resources = _resources(llm_url)
    questions, passages = _load(data, limit)
    ensure_nq_collection(resources, passages)
    rows: list[dict[str, Any]] = []
    per_k: dict[str, Any] = {}
    skipped_per_k: dict[str, list[dict[str, str]]] = {}
    report: Path | None = None
    gaps: dict[str, float] = {}
    paired: dict[str, dict[str, float | int]] = {}
    started = time.perf_counter()
    for size in sizes:
        t0 = time.perf_counter()
        with _llm_errors():
            results, skipped = _position_sweep(
                resources, questions, passages, size, workers, stored_only, stages, slots
            )
        if skipped:
            typer.echo(
                f"k={size}: skipped {len(skipped)} questions, too few answer-free distractors: "
                + "; ".join(f"{s['id']} ({s['question']!r})" for s in skipped)
            )
        skipped_per_k[str(size)] = skipped
        per_k[str(size)] = results
        for slot_name in [name for name in positions(size) if name in slots]:
            done = [r for r in results if r["slot"] == slot_name]
            row: dict[str, Any] = {
                "position": slot_name,
                "k": size,
                "questions": len(done),
                "em_without": em_rate([r["em_without"] for r in done]),
            }
            for name in stages:
                row[f"em_with_{name}"] = em_rate([r[f"em_with_{name}"] for r in done])
                landed = sorted(r[f"gold_slot_with_{name}"] for r in done)
                row[f"gold_slot_with_{name}_median"] = landed[len(landed) // 2] if landed else None
            rows.append(row)
        typer.echo(f"k={size}: {len(results)} rows (question × gold slot) in {time.perf_counter() - t0:.0f} s")
        typer.echo(format_table(rows, list(rows[0])))
        mine = [r for r in rows if r["k"] == size]
        first = sorted((r for r in results if r["slot"] == "first"), key=lambda r: r["id"])
        for name in stages if results else []:
            key = f"{size}" if name == "edge" else f"{size}:{name}"
            gaps[key] = gap = round(100 * max(mine[0]["em_without"] - r[f"em_with_{name}"] for r in mine), 1)
            typer.echo(f"k={size}: largest shortfall with {name} against gold first (input order): {gap} points")
            paired[key] = pair = paired_difference(
                [r[f"em_with_{name}"] for r in first], [r["em_without"] for r in first]
            )
            ranked_first = sum(r["gold_rank"] == 1 for r in first)
            typer.echo(
                f"k={size}: {name} vs gold first, paired over {pair['questions']} questions: "
                f"{pair['difference_points']:+} points (95% CI {pair['ci95_low_points']:+} to "
                f"{pair['ci95_high_points']:+}); {pair['only_treated_right']} right only with {name}, "
                f"{pair['only_baseline_right']} only with gold first; the score ranked the gold passage first for "
                f"{ranked_first} of {len(first)}"
            )
        payload = {
            "data": str(data),
            "questions": len(questions),
            "k": sizes,
            "k_done": [int(s) for s in per_k],
            "generator": resources.generator.model,
            "answer_tokens": ANSWER_TOKENS,
            "distractors": "top dense (all-MiniLM-L6-v2) passages holding none of the answers",
            "relevance_score": "dense cosine of passage and question",
            "seconds": round(time.perf_counter() - started, 1),
            "results": rows,
            "edge_shortfall_vs_gold_first_points": gaps,
            "edge_vs_gold_first_paired": paired,
            "positioning": stages,
            "slots": slots,
            "skipped": skipped_per_k,
            "per_question": per_k,
        }
        if report is None:
            report = _write(resources, "position", payload)
        else:
            report.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    if pipeline_runs and report is not None:
        _pipeline_positioning(resources, questions, sizes[0], workers, report, payload)


def _position_sweep(
    resources: Resources,
    questions: list[NQQuestion],
    passages: dict[str, Passage],
    k: int,
    workers: int,
    stored_only: bool = False,
    stages: Sequence[str] = ("edge",),
    slots: Sequence[str] = ("first", "middle", "last"),  # eval.context_experiments.SLOT_NAMES
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """One row per question and gold slot (of ``slots``): exact match in input order and after each positioning
    stage; and the questions skipped because too few retrieved passages are free of every answer (an answer as
    short as "S" occurs in nearly every passage, so no prompt without it can be built).

    ``stored_only``: ask nothing; report the questions whose prompts all have stored answers (a sweep cut short)."""
    from app.answer_cache import AnswerCache
    from app.context.positioning import make_positioner
    from app.query.prompt import build_messages
    from app.query.stages.position import PositionContext
    from eval.context_experiments import exact_match, place, positions, run_concurrently
    from retrieval.types import Chunk, Hit, QueryState

    def hit(passage: Passage, score: float) -> Hit:
        chunk = Chunk(id=passage.id, doc_id=passage.id, text=f"{passage.title}\n{passage.text}")
        return Hit(chunk, score, "dense")

    def scored(q: NQQuestion) -> tuple[Hit, list[Hit]]:
        gold = resources.index.search_dense(COLLECTION, q.question, 1, {"passage": q.gold})
        if not gold:
            raise RuntimeError(f"the gold passage {q.gold} of {q.id} is not in the {COLLECTION} collection")
        found = resources.index.search_dense(COLLECTION, q.question, 3 * k + 10, {"passage": {"$ne": q.gold}})
        others: dict[str, float] = {}
        for h in found:
            passage = passages.get(h.chunk.doc_id)
            if passage and h.chunk.doc_id not in others and not exact_match(passage.text, q.answers):
                others[h.chunk.doc_id] = h.score
        if len(others) < k - 1:
            raise TooFewDistractorsError(f"{len(others)} answer-free distractors of {k - 1} (answers {q.answers})")
        distractors = [hit(passages[pid], score) for pid, score in list(others.items())[: k - 1]]
        return hit(passages[q.gold], gold[0].score), distractors

    positioners = {name: PositionContext(name, make_positioner(name)) for name in stages}
    variants = ("without", *(f"with_{name}" for name in stages))
    plans: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for q in questions:
        try:
            gold, distractors = scored(q)
        except TooFewDistractorsError as exc:
            skipped.append({"id": q.id, "question": q.question, "reason": str(exc)})
            continue
        for slot_name, slot in positions(k).items():
            if slot_name not in slots:
                continue
            given = place(gold, distractors, slot)
            plan: dict[str, Any] = {
                "question": q,
                "slot": slot_name,
                "without": build_messages(q.question, given),
                "gold_rank": sorted(given, key=lambda h: -h.score).index(gold) + 1,
            }
            for name, stage in positioners.items():
                state = QueryState(question=q.question, collection=COLLECTION)
                state.context = sorted(given, key=lambda h: -h.score)
                positioned = stage(state).context
                plan[f"with_{name}"] = build_messages(q.question, positioned)
                plan[f"gold_slot_with_{name}"] = [h.chunk.id for h in positioned].index(q.gold) + 1
            plans.append(plan)
    prompts = {json.dumps(p[v]): p[v] for p in plans for v in variants}
    cache = AnswerCache(
        resources.settings.reports_dir / "context-position-answers.jsonl", resources.generator.model, ANSWER_TAG
    )
    keys = [key for key in prompts if cache.get(key) is None]
    typer.echo(f"k={k}: {len(prompts)} distinct prompts, {len(prompts) - len(keys)} answered by an earlier run")

    def ask(key: str) -> str:
        text = resources.generator.chat(prompts[key], max_tokens=ANSWER_TOKENS).text
        cache.put(key, text)
        return text

    if stored_only:
        complete = {
            q.id
            for q in questions
            if all(cache.get(json.dumps(p[v])) is not None for p in plans if p["question"] is q for v in variants)
        }
        plans = [p for p in plans if p["question"].id in complete]
        typer.echo(f"k={k}: --stored-only, {len(complete)} of {len(questions)} questions fully answered")
    else:
        run_concurrently(ask, keys, workers)
    answers = {key: cache.get(key) or "" for key in prompts}
    rows = []
    for p in plans:
        q = p["question"]
        row: dict[str, Any] = {"id": q.id, "slot": p["slot"], "gold_rank": p["gold_rank"]}
        without = answers[json.dumps(p["without"])]
        row["em_without"], row["answer_without"] = exact_match(without, q.answers), without
        for name in stages:
            answer = answers[json.dumps(p[f"with_{name}"])]
            row[f"gold_slot_with_{name}"] = p[f"gold_slot_with_{name}"]
            row[f"em_with_{name}"] = exact_match(answer, q.answers)
            row[f"answer_with_{name}"] = answer
        rows.append(row)
    return rows, skipped


class TooFewDistractorsError(RuntimeError):
    """A question whose prompt cannot be built: fewer answer-free passages than the prompt needs."""


def _pipeline_positioning(
    resources: Resources,
    questions: list[NQQuestion],
    k: int,
    workers: int,
    report: Path,
    payload: dict[str, Any],
) -> None:
    """The full pipeline (retrieval, fusion, k passages) with edge positioning against plain relevance order,
    paired over the same questions.

    Generations are stored as they arrive (``context-pipeline-answers.jsonl``), so a run cut short resumes: the
    retrieval is re-run, the answers it leads to are read back. The report is rewritten after each order."""
    from app.answer_cache import AnswerCache, CachedGenerator
    from app.query.pipeline import Pipeline
    from eval.context_experiments import em_rate, exact_match, format_table, paired_difference, run_concurrently

    generator = resources.generator
    cache = AnswerCache(resources.settings.reports_dir / "context-pipeline-answers.jsonl", generator.model, "chat")
    cached = CachedGenerator(generator, cache)
    resources.generator = cached  # type: ignore[assignment]  # the Generate stage asks through the cache
    try:
        pipeline = Pipeline(resources)
        runs: dict[str, list[dict[str, Any]]] = {}
        rows = []
        for positioning in ("relevance", "edge"):
            options = {"context_top_k": k, "positioning": positioning, "max_answer_tokens": ANSWER_TOKENS}

            def run(q: NQQuestion, options: dict[str, Any] = options) -> dict[str, Any]:
                answer, ms = _answer(pipeline, q.question, options)
                doc_of = {h["chunk_id"]: h["doc_id"] for h in _stage(answer, "fusion").get("hits", [])}
                order = [doc_of.get(cid) for cid in _stage(answer, "position").get("order", [])]
                return {
                    "id": q.id,
                    "em": exact_match(answer.text, q.answers),
                    "ms": round(ms),
                    "gold_slot": order.index(q.gold) + 1 if q.gold in order else None,
                    "answer": answer.text,
                }

            t0, reused = time.perf_counter(), cached.reused
            runs[positioning] = run_concurrently(run, questions, workers)
            typer.echo(
                f"pipeline, {positioning}: {len(questions)} questions in {time.perf_counter() - t0:.0f} s, "
                f"{cached.reused - reused} answers from an earlier run"
            )
            rows.append({"pipeline": positioning, "k": k, "em": em_rate([r["em"] for r in runs[positioning]])})
            payload = {**payload, "pipeline": rows, "per_question_pipeline": runs}
            report.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    finally:
        resources.generator = generator  # type: ignore[assignment]
    pair = paired_difference([r["em"] for r in runs["edge"]], [r["em"] for r in runs["relevance"]])
    typer.echo(format_table(rows, list(rows[0])))
    typer.echo(
        f"pipeline, k={k}: edge vs relevance order, paired over {pair['questions']} questions: "
        f"{pair['difference_points']:+} points (95% CI {pair['ci95_low_points']:+} to {pair['ci95_high_points']:+}); "
        f"{pair['only_treated_right']} right only with edge, {pair['only_baseline_right']} only with relevance order"
    )
    payload = {**payload, "pipeline_edge_vs_relevance_paired": pair}
    report.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    typer.echo(f"report: {report}")


def eval_compression(
    data: DataOption = DEFAULT_DATA,
    limit: LimitOption = 15,
    k: Annotated[int, typer.Option(min=1, help="Passages in each prompt.")] = 5,
    methods: Annotated[str, typer.Option(help="Comma-separated: llmlingua, longllmlingua.")] = "longllmlingua",
    rate: Annotated[float, typer.Option(min=0.05, max=1.0, help="Target share of tokens kept.")] = 0.5,
    calibrate: Annotated[
        bool, typer.Option("--calibrate", help="Measure prefill and compression speed; write calibration.json.")
    ] = False,
    repeats: Annotated[int, typer.Option(min=1, help="With --calibrate: measurements of each speed.")] = 3,
    llm_url: UrlOption = None,
) -> None:
    """Compression ratio against exact-match retention and net latency (compression time included).

    Requests run one at a time, each variant right after the uncompressed baseline of the same question, so the
    latencies compare like with like on a machine whose load changes; the ratio of medians is the number to read.
    With ``--calibrate``, measures instead the two speeds the ``auto`` rule weighs (vLLM prefill and compression,
    in generator tokens per second) and writes ``<data_dir>/calibration.json``.
    """
    from app.query.pipeline import Pipeline
    from eval.context_experiments import em_rate, exact_match, format_table, median_ms

    resources = _resources(llm_url)
    questions, passages = _load(data, limit)
    if calibrate:
        _calibrate(resources, questions, passages, repeats)
        return
    ensure_nq_collection(resources, passages)
    pipeline = Pipeline(resources)
    variants = ["off", *[m.strip() for m in methods.split(",") if m.strip()]]
    base = {"context_top_k": k, "max_answer_tokens": ANSWER_TOKENS, "compression_rate": rate}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for q in questions:
        for variant in variants:
            answer, ms = _answer(pipeline, q.question, {**base, "compression": variant})
            compress, generate = _stage(answer, "compress"), _stage(answer, "generate")
            runs[variant].append(
                {
                    "id": q.id,
                    "em": exact_match(answer.text, q.answers),
                    "ms": round(ms),
                    "compress_ms": compress.get("compress_ms", 0.0),
                    "ratio": compress.get("ratio"),
                    "prompt_tokens": generate.get("prompt_tokens"),
                }
            )
    baseline_em = em_rate([r["em"] for r in runs["off"]]) or 0.0
    baseline_ms = median_ms([r["ms"] for r in runs["off"]]) or 1.0
    rows = []
    for variant, results in runs.items():
        em = em_rate([r["em"] for r in results])
        ratios = [r["ratio"] for r in results if r["ratio"]]
        rows.append(
            {
                "method": variant,
                "em": em,
                "em_retention": round(em / baseline_em, 3) if baseline_em and em is not None else None,
                "ratio_median": round(sorted(ratios)[len(ratios) // 2], 2) if ratios else 1.0,
                "prompt_tokens_median": median_ms([r["prompt_tokens"] for r in results if r["prompt_tokens"]]),
                "compress_ms_median": median_ms([r["compress_ms"] for r in results]),
                "latency_ms_median": median_ms([r["ms"] for r in results]),
                "latency_vs_off": round((median_ms([r["ms"] for r in results]) or 0) / baseline_ms, 3),
            }
        )
    typer.echo(format_table(rows, list(rows[0])))
    _write(
        resources,
        "compression",
        {
            "data": str(data),
            "questions": len(questions),
            "k": k,
            "rate": rate,
            "generator": resources.generator.model,
            "compression_model": resources.settings.compression_model,
            "results": rows,
            "per_question": runs,
        },
    )


def _calibrate(resources: Resources, questions: list[NQQuestion], passages: dict[str, Passage], repeats: int) -> None:
    """Prefill speed: two prompts (system text, question; the same with ~10 passages), each behind a fresh nonce so
    the prefix cache cannot help, differ in time by the prefill of the passages alone. Compression speed: the
    ``auto`` method reads passages with the question, timed per passage. Both in generator tokens per second."""
    from app.cli.common import fail as _fail
    from app.context.calibration import (
        Calibration,
        CalibrationError,
        calibration_path,
        prefill_rate,
        save_calibration,
    )
    from app.context.compression import CompressionUnavailableError, EvidenceCompressor, timed_compress
    from app.context.tokens import TokenCounter
    from app.query.build import AUTO_METHOD, compression_model_dir
    from app.query.prompt import SYSTEM_PROMPT

    settings = resources.settings
    counter = TokenCounter(resources.generator_dir)
    texts = [f"{p.title}\n{p.text}" for p in passages.values()]
    samples: list[tuple[int, float, int, float]] = []
    for i in range(repeats):
        question = questions[i % len(questions)].question
        evidence = "\n\n".join(texts[i * 10 : i * 10 + 10])

        def timed(user: str) -> tuple[int, float]:
            messages = [
                {"role": "system", "content": f"[{uuid.uuid4().hex}] {SYSTEM_PROMPT}"},
                {"role": "user", "content": user},
            ]
            started = time.perf_counter()
            completion = resources.generator.chat(messages, max_tokens=1)
            return completion.prompt_tokens, time.perf_counter() - started

        short, long = timed(question), timed(f"{evidence}\n\nQuestion: {question}")
        samples.append((*short, *long))
        typer.echo(f"prefill {i + 1}/{repeats}: {short[0]} tokens {short[1]:.2f} s, {long[0]} tokens {long[1]:.2f} s")
    try:
        compressor = EvidenceCompressor(
            AUTO_METHOD, compression_model_dir(settings, AUTO_METHOD), settings.compression_rate
        )
    except CompressionUnavailableError as exc:
        raise _fail(str(exc)) from None
    read, spent = 0, 0.0
    for i in range(repeats * 3):
        text = texts[i]
        _, ms = timed_compress(compressor, text, questions[i % len(questions)].question)
        read, spent = read + counter.count(text), spent + ms / 1000
    try:
        prefill = prefill_rate(samples)
    except CalibrationError as exc:
        raise _fail(str(exc)) from None
    calibration = Calibration(
        prefill_tokens_per_s=round(prefill, 1),
        compression_tokens_per_s=round(read / spent, 1),
        generator=resources.generator.model,
        compression_model=settings.compression_model,
        method=AUTO_METHOD,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    path = save_calibration(calibration, calibration_path(settings.data_dir))
    ratio = calibration.prefill_tokens_per_s / calibration.compression_tokens_per_s
    typer.echo(
        f"prefill {calibration.prefill_tokens_per_s} tokens/s, compression {calibration.compression_tokens_per_s} "
        f"tokens/s (prefill/compression {ratio:.1f}); at rate {settings.compression_rate} compressing pays only "
        f"when prefill is slower than {1 - settings.compression_rate:.2f} × compression speed"
    )
    typer.echo(f"calibration: {path}")
    _write(resources, "calibration", {"calibration": calibration.__dict__, "prefill_samples": samples})


def eval_abstention(
    data: DataOption = DEFAULT_DATA,
    limit: LimitOption = 40,
    calibrate: Annotated[int, typer.Option(min=10, help="Questions after the evaluated ones, to set the cut.")] = 120,
    sample_qa: Annotated[Path, typer.Option(help="Answerable questions on the sample corpus.")] = SAMPLE_QA,
    offtopic: Annotated[Path, typer.Option(help="Off-topic questions for the sample corpus.")] = SAMPLE_OFFTOPIC,
    max_false_abstention: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of answerable questions the suggested cut may refuse.")
    ] = 0.0,
    threshold: Annotated[
        float | None, typer.Option(help="Run the pipeline at this cut; default: the suggested safe cut.")
    ] = None,
    scores_only: Annotated[bool, typer.Option("--scores-only", help="Score distributions and cuts; no LLM.")] = False,
    llm_check: Annotated[
        bool,
        typer.Option("--llm-check", help="Also record the generator's answerability judgement and tabulate its cuts."),
    ] = False,
    workers: WorkersOption = 8,
    llm_url: UrlOption = None,
) -> None:
    """Where to set ``abstain_threshold``: the best dense cosine of answerable questions (NQ with its gold passage,
    the sample QA set on the ``sample`` collection) against unanswerable ones (NQ with the gold withheld by a
    filter; off-topic and on-topic-but-unanswered questions on the sample corpus).

    Suggests a cut (``suggest_threshold``: at most ``max_false_abstention`` of each answerable set refused, in the
    middle of the gap down to the best off-topic score), shows what it and the balanced-accuracy cut (NQ,
    ``calibrate`` questions) catch, then (unless ``--scores-only``) runs the pipeline at the suggested cut (or
    ``--threshold``) on ``limit`` NQ questions with the gold present and withheld.
    """
    from app.cli.common import fail as _fail
    from eval.context_experiments import (
        abstained_share,
        best_threshold,
        format_table,
        score_summary,
        suggest_threshold,
    )

    resources = _resources(llm_url) if not scores_only else _offline_resources()
    everything, passages = _load(data, None)
    ensure_nq_collection(resources, passages)
    evaluated, held_out = everything[:limit], everything[limit : limit + calibrate]

    def best_score(collection: str, question: str, where: dict[str, Any] | None) -> float:
        hits = resources.index.search_dense(collection, question, 1, where)
        return hits[0].score if hits else -1.0

    nq = [*evaluated, *held_out]
    groups: dict[str, list[float]] = {
        "nq gold present": [best_score(COLLECTION, q.question, None) for q in nq],
        "nq gold withheld": [best_score(COLLECTION, q.question, {"passage": {"$ne": q.gold}}) for q in nq],
    }
    try:
        sample_rows = [*_jsonl(sample_qa), *_jsonl(offtopic)]
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    ensure_sample_collection(resources)
    for kind, label in (
        ("answerable", "sample answerable"),
        ("unanswerable", "sample unanswerable"),
        ("off_topic", "sample off-topic"),
    ):
        rows = [r for r in sample_rows if _sample_kind(r) == kind]
        groups[label] = [best_score(SAMPLE_COLLECTION, r["question"], r.get("filters")) for r in rows]
    answerable = ("nq gold present", "sample answerable")
    safe = suggest_threshold([groups[g] for g in answerable], groups["sample off-topic"], max_false_abstention)
    balanced = best_threshold(groups["nq gold present"][limit:], groups["nq gold withheld"][limit:])
    summary = [{"group": g, **score_summary(v)} for g, v in groups.items()]
    typer.echo("best dense cosine (all-MiniLM-L6-v2) per question")
    typer.echo(format_table(summary, list(summary[0])))
    cuts = sorted({safe, balanced["threshold"], 0.2, 0.3, 0.35, 0.4, 0.5})
    table = [
        {"cut": cut, **{g: abstained_share(v, cut) for g, v in groups.items()}, "note": _cut_note(cut, safe, balanced)}
        for cut in cuts
    ]
    typer.echo("\nshare abstained at each cut (answerable groups: false abstention)")
    typer.echo(format_table(table, list(table[0])))
    typer.echo(
        f"\nsuggested abstain_threshold: {safe} (≤ {max_false_abstention:.0%} false abstention on each answerable set, "
        "in the middle of the gap down to the best off-topic score)"
    )
    typer.echo(
        f"balanced cut for {COLLECTION} alone: {balanced['threshold']} (refuses "
        f"{balanced['abstained_withheld']:.0%} with the gold withheld, answers {balanced['answered_present']:.0%} "
        f"with it present); to use it there: RAGLINE_ABSTAIN_THRESHOLDS='{{\"{COLLECTION}\": {balanced['threshold']}}}'"
    )
    payload: dict[str, Any] = {
        "data": str(data),
        "sample_qa": str(sample_qa),
        "offtopic": str(offtopic),
        "nq_questions": len(nq),
        "nq_corpus_passages": len(passages),
        "score": "best dense cosine (all-MiniLM-L6-v2)",
        "max_false_abstention": max_false_abstention,
        "suggested_threshold": safe,
        "balanced_cut_nq": balanced,
        "summary": summary,
        "cuts": table,
        "scores": groups,
    }
    if not scores_only:
        cut = safe if threshold is None else threshold
        payload["pipeline"] = _abstention_runs(resources, evaluated, cut, workers, llm_check)
    _write(resources, "abstention", payload)


def _cut_note(cut: float, safe: float, balanced: dict[str, float]) -> str:
    notes = [name for name, value in (("suggested", safe), ("nq balanced", balanced["threshold"])) if value == cut]
    return ", ".join(notes)


def _sample_kind(row: dict[str, Any]) -> str:
    kind = row.get("kind", "")
    return kind if kind in ("unanswerable", "off_topic") else "answerable"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [i + 1 for i, r in enumerate(rows) if not isinstance(r, dict) or not str(r.get("question", "")).strip()]
    if bad:
        raise ValueError(f"{path}: rows without a question on lines {bad[:5]}")
    return rows


def ensure_sample_collection(resources: Resources) -> None:
    """The bundled sample corpus in the ``sample`` collection (incremental: unchanged files are not re-embedded)."""
    from app.chunking import make_chunker
    from ingest.job import ingest_path
    from ingest.samples import sample_corpus_dir

    summary = ingest_path(
        resources.index, make_chunker(resources, "fixed"), sample_corpus_dir(), SAMPLE_COLLECTION, progress=False
    )
    typer.echo(
        f"{SAMPLE_COLLECTION}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} unchanged"
    )


def _offline_resources() -> Resources:
    from app.resources import Resources
    from app.settings import get_settings

    return Resources(get_settings())


def _abstention_runs(
    resources: Resources, evaluated: list[NQQuestion], cut: float, workers: int, llm_check: bool = False
) -> dict[str, Any]:
    """The pipeline at ``cut`` on each question with its gold passage present and withheld. With ``llm_check``
    the answerability judgement is recorded on every question (threshold 0: it never abstains here), so that the
    trade-off at every cut can be read off afterwards from one run."""
    from app.query.pipeline import Pipeline
    from eval.answer_metrics import abstained
    from eval.context_experiments import em_rate, exact_match, format_table, run_concurrently

    pipeline = Pipeline(resources)
    options: dict[str, Any] = {"abstain_threshold": cut, "abstain_thresholds": {}, "max_answer_tokens": ANSWER_TOKENS}
    if llm_check:
        options.update(answerability_check=True, answerability_threshold=0.0)

    def run(job: tuple[NQQuestion, bool]) -> dict[str, Any]:
        q, hide = job
        answer, ms = _answer(pipeline, q.question, options, {"passage": {"$ne": q.gold}} if hide else None)
        gate = _stage(answer, "abstain")
        return {
            "id": q.id,
            "withheld": hide,
            "abstained": bool(gate.get("abstain")),
            "score": gate.get("score"),
            "p_yes": _stage(answer, "answerable").get("p_yes"),
            "dont_know": abstained(answer.text, answer.trace),
            "em": exact_match(answer.text, q.answers),
            "citations": len(answer.citations),
            "ms": round(ms),
        }

    results = run_concurrently(run, [(q, hide) for q in evaluated for hide in (False, True)], workers)
    rows = []
    for condition, hide in (("gold present", False), ("gold withheld", True)):
        group = [r for r in results if r["withheld"] is hide]
        rows.append(
            {
                "condition": condition,
                "abstained": em_rate([r["abstained"] for r in group]),
                "I don't know (gate or model)": em_rate([r["dont_know"] for r in group]),
                "em_all": em_rate([r["em"] for r in group]),
                "em_answered": em_rate([r["em"] for r in group if not r["abstained"]]),
            }
        )
    typer.echo(f"\npipeline at abstain_threshold {cut} on {len(evaluated)} NQ questions")
    typer.echo(format_table(rows, list(rows[0])))
    payload: dict[str, Any] = {"threshold": cut, "questions": len(evaluated), "results": rows, "per_question": results}
    if llm_check:
        payload["answerability"] = answerability_table(results)
        typer.echo("\nanswerability check: at each P(yes) cut (on top of the cosine gate)")
        typer.echo(format_table(payload["answerability"], list(payload["answerability"][0])))
    return payload


ANSWERABILITY_CUTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def answerability_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per P(yes) cut: share of gold-withheld questions that would say "I don't know", share of gold-present ones
    refused, and share of gold-present ones answered correctly (not refused and exact match). A question the cosine
    gate already refused counts as refused at every cut; an unreadable judgement (no yes/no) is never refused."""

    def refused(row: dict[str, Any], cut: float) -> bool:
        return bool(row["abstained"]) or (row.get("p_yes") is not None and row["p_yes"] < cut)

    from eval.context_experiments import em_rate

    present = [r for r in results if not r["withheld"]]
    withheld = [r for r in results if r["withheld"]]
    return [
        {
            "p_yes cut": cut,
            "withheld: I don't know": em_rate([refused(r, cut) for r in withheld]),
            "present: refused": em_rate([refused(r, cut) for r in present]),
            "present: correct": em_rate([not refused(r, cut) and bool(r["em"]) for r in present]),
        }
        for cut in ANSWERABILITY_CUTS
    ]


def eval_prefix_cache(
    data: DataOption = DEFAULT_DATA,
    repeats: Annotated[int, typer.Option(min=1, help="Cold and warm requests each.")] = 5,
    passages_in_prefix: Annotated[int, typer.Option(min=1, help="Passages in the shared prefix.")] = 8,
    llm_url: UrlOption = None,
) -> None:
    """Time to first token with and without a prefix-cache hit, in one process, one request at a time.

    The prompt layout puts the stable part first; here that part is the system text and a history turn carrying
    passages. Cold: the prefix starts with a fresh nonce, so vLLM has never seen it. Warm: the same prefix as the
    previous request, with a different question at the end, as in a follow-up turn.
    """
    from app.query.prompt import SYSTEM_PROMPT
    from eval.context_experiments import format_table, median_ms

    resources = _resources(llm_url)
    questions, passages = _load(data, repeats * 2)
    documents = "\n\n".join(f"{p.title}\n{p.text}" for p in list(passages.values())[:passages_in_prefix])

    def ttft(messages: list[dict[str, str]]) -> float:
        started = time.perf_counter()
        for _ in resources.generator.stream(messages, max_tokens=1):
            break
        return (time.perf_counter() - started) * 1000

    cold, warm = [], []
    for i in range(repeats):
        prefix = [
            {"role": "system", "content": f"[session {uuid.uuid4().hex}] {SYSTEM_PROMPT}"},
            {"role": "user", "content": f"Here are documents for this conversation:\n{documents}"},
            {"role": "assistant", "content": "Thank you, I have read them."},
        ]
        cold.append(ttft([*prefix, {"role": "user", "content": questions[2 * i].question}]))
        warm.append(ttft([*prefix, {"role": "user", "content": questions[2 * i + 1].question}]))
    prompt_tokens = resources.generator.chat(
        [*prefix, {"role": "user", "content": questions[0].question}], max_tokens=1
    ).prompt_tokens
    rows = [
        {"request": "cold (prefix unseen)", "ttft_ms_median": median_ms(cold)},
        {"request": "warm (prefix cached)", "ttft_ms_median": median_ms(warm)},
    ]
    speedup = round((median_ms(cold) or 0) / (median_ms(warm) or 1), 2)
    typer.echo(format_table(rows, list(rows[0])))
    typer.echo(f"prompt tokens {prompt_tokens}; cold/warm TTFT ratio {speedup}")
    _write(
        resources,
        "prefix-cache",
        {
            "prompt_tokens": prompt_tokens,
            "repeats": repeats,
            "cold_ms": [round(v, 1) for v in cold],
            "warm_ms": [round(v, 1) for v in warm],
            "results": rows,
            "cold_over_warm": speedup,
        },
    )


def eval_hyde(
    beir: Annotated[Path, typer.Option(help="A BEIR folder (corpus, queries, qrels/).")] = Path(
        "../shared/data/scifact"
    ),
    split: Annotated[str, typer.Option(help="Which qrels/<split>.tsv.")] = "train",
    limit_queries: Annotated[int, typer.Option(min=1, help="Judged queries to evaluate (the first N).")] = 100,
    collection: Annotated[str | None, typer.Option(help="Collection; default beir-<folder>.")] = None,
    sample_qa: Annotated[
        bool, typer.Option("--sample-qa/--no-sample-qa", help="Also the sample QA set on the sample collection.")
    ] = True,
    depth: Annotated[int, typer.Option(min=10, help="Candidates fetched from each search.")] = 100,
    latency_queries: Annotated[
        int, typer.Option(min=0, help="Queries timed one at a time, plain and HyDE (0: skip).")
    ] = 10,
    workers: WorkersOption = 4,
    llm_url: UrlOption = None,
) -> None:
    """nDCG@10 and Recall@10 of BM25, dense and hybrid retrieval with and without HyDE, and the latency it adds.

    The hypothetical passages are written once per query (the ``hyde`` stage, ``workers`` in flight); both variants
    then search the same index to the same depth and are scored by the same code as ``ragline eval retrieval``.
    Latency: ``latency_queries`` queries, one at a time, each timed as plain search and as HyDE (generation plus
    search) in the same process; on a shared host the ratio is the number to read.
    """
    from app.cli.common import fail as _fail
    from app.eval_commands import ensure_corpus_collection
    from eval.beir import load_corpus, load_qrels, load_queries
    from eval.context_experiments import format_table, median_ms

    resources = _resources(llm_url)
    try:
        judged = load_qrels(beir / "qrels" / f"{split}.tsv")
        texts = load_queries(beir / "queries.jsonl")
        corpus_path = next((beir / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (beir / n).exists()), None)
        if corpus_path is None:
            raise FileNotFoundError(f"no corpus.jsonl[.gz] in {beir}")
        documents = load_corpus(corpus_path)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    name = collection or f"beir-{beir.resolve().name}"
    ensure_corpus_collection(resources, name, documents)
    sets: list[tuple[str, str, dict[str, tuple[str, dict[str, Any] | None]], dict[str, dict[str, int]]]] = [
        (beir.resolve().name, name, {q: (texts[q], None) for q in list(judged)[:limit_queries] if q in texts}, judged)
    ]
    if sample_qa:
        try:
            rows = [r for r in _jsonl(SAMPLE_QA) if r.get("doc_ids")]
        except (FileNotFoundError, ValueError) as exc:
            raise _fail(str(exc)) from None
        ensure_sample_collection(resources)
        sets.append(
            (
                "sample-qa",
                SAMPLE_COLLECTION,
                {r["id"]: (r["question"], r.get("filters")) for r in rows},
                {r["id"]: dict.fromkeys(r["doc_ids"], 1) for r in rows},
            )
        )
    rows_out: list[dict[str, Any]] = []
    per_set: dict[str, Any] = {}
    for label, coll, queries, qrels in sets:
        with _llm_errors():
            hypothetical, gen_ms = _hypotheticals(resources, {q: t for q, (t, _) in queries.items()}, workers)
        plain = _scores(resources, coll, queries, qrels, depth)
        hyde = _scores(resources, coll, {q: (hypothetical[q], w) for q, (_, w) in queries.items()}, qrels, depth)
        for variant in plain:
            rows_out.append(
                {
                    "set": label,
                    "queries": len(queries),
                    "retrieval": variant,
                    "ndcg@10": round(plain[variant]["ndcg@10"], 4),
                    "ndcg@10_hyde": round(hyde[variant]["ndcg@10"], 4),
                    "recall@10": round(plain[variant]["recall@10"], 4),
                    "recall@10_hyde": round(hyde[variant]["recall@10"], 4),
                }
            )
        per_set[label] = {"hypothetical": hypothetical, "generation_ms_concurrent": gen_ms}
    typer.echo(format_table(rows_out, list(rows_out[0])))
    latency: dict[str, Any] = {}
    if latency_queries:
        with _llm_errors():
            latency = _hyde_latency(resources, name, [texts[q] for q in list(sets[0][2])[:latency_queries]])
        typer.echo(
            f"latency, {latency['queries']} queries one at a time: plain search {latency['plain_ms_median']} ms, "
            f"HyDE {latency['hyde_ms_median']} ms (generation {latency['generation_ms_median']} ms); "
            f"HyDE/plain {latency['hyde_over_plain']}×"
        )
    _write(
        resources,
        "hyde",
        {
            "beir": str(beir),
            "split": split,
            "fusion": resources.settings.fusion,
            "generator": resources.generator.model,
            "depth": depth,
            "results": rows_out,
            "latency": latency,
            "generation_ms_concurrent_median": {
                k: median_ms(v["generation_ms_concurrent"]) for k, v in per_set.items()
            },
            "per_set": per_set,
        },
    )


def _hypotheticals(resources: Resources, questions: dict[str, str], workers: int) -> tuple[dict[str, str], list[float]]:
    """The HyDE search query of each question (the ``hyde`` stage itself), and each generation's time."""
    from app.answer_cache import AnswerCache
    from app.query.stages.hyde import HYDE_PROMPT, HYDE_TOKENS, HypotheticalDocument
    from eval.context_experiments import run_concurrently
    from retrieval.types import QueryState

    stage = HypotheticalDocument(resources.generator)
    cache = AnswerCache(
        resources.settings.reports_dir / "context-hyde-queries.jsonl",
        resources.generator.model,
        f"hyde={HYDE_TOKENS}",
        progress="HyDE queries written",
    )
    missing = [q for q, text in questions.items() if cache.get(HYDE_PROMPT.format(question=text)) is None]
    typer.echo(f"HyDE: {len(questions) - len(missing)} of {len(questions)} queries written by an earlier run")

    def write(qid: str) -> float:
        started = time.perf_counter()
        state = stage(QueryState(question=questions[qid], collection=""))
        elapsed = (time.perf_counter() - started) * 1000
        cache.put(HYDE_PROMPT.format(question=questions[qid]), state.query)
        return elapsed

    spent = run_concurrently(write, missing, workers)
    return {q: cache.get(HYDE_PROMPT.format(question=t)) or t for q, t in questions.items()}, spent


def _scores(
    resources: Resources,
    collection: str,
    queries: dict[str, tuple[str, dict[str, Any] | None]],
    qrels: dict[str, dict[str, int]],
    depth: int,
) -> dict[str, dict[str, float]]:
    """BM25, dense and the configured hybrid fusion, scored like ``ragline eval retrieval`` (filters applied)."""
    from eval.retrieval_bench import Candidates, evaluate_variants, standard_variants

    settings = resources.settings
    candidates = Candidates()
    for qid, (text, where) in queries.items():
        candidates.lists[qid] = {
            "bm25": resources.index.search_bm25(collection, text, depth, where),
            "dense": resources.index.search_dense(collection, text, depth, where),
        }
    variants = standard_variants(settings.rrf_k, [settings.fusion_alpha])
    hybrid = f"rrf(k={settings.rrf_k})" if settings.fusion == "rrf" else f"convex(α={settings.fusion_alpha:.2f})"
    chosen = {"bm25": variants["bm25"], "dense": variants["dense"], f"hybrid {hybrid}": variants[hybrid]}
    return evaluate_variants(candidates, qrels, chosen, (10,))


def _hyde_latency(resources: Resources, collection: str, questions: list[str]) -> dict[str, Any]:
    from app.query.stages.hyde import HypotheticalDocument
    from eval.context_experiments import median_ms
    from retrieval.types import QueryState

    stage = HypotheticalDocument(resources.generator)
    settings = resources.settings

    def search(text: str) -> None:
        resources.index.search_bm25(collection, text, settings.bm25_top_k)
        resources.index.search_dense(collection, text, settings.dense_top_k)

    plain, hyde, generation = [], [], []
    for question in questions:
        started = time.perf_counter()
        search(question)
        plain.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        query = stage(QueryState(question=question, collection=collection)).query
        generated = time.perf_counter()
        search(query)
        hyde.append((time.perf_counter() - started) * 1000)
        generation.append((generated - started) * 1000)
    return {
        "queries": len(questions),
        "plain_ms_median": median_ms(plain),
        "hyde_ms_median": median_ms(hyde),
        "generation_ms_median": median_ms(generation),
        "hyde_over_plain": round((median_ms(hyde) or 0) / (median_ms(plain) or 1), 1),
        "plain_ms": [round(v, 1) for v in plain],
        "hyde_ms": [round(v, 1) for v in hyde],
    }


def register(eval_app: typer.Typer) -> None:
    """Adds the context experiments to the ``ragline eval`` group."""
    eval_app.command("position")(eval_position)
    eval_app.command("compression")(eval_compression)
    eval_app.command("abstention")(eval_abstention)
    eval_app.command("prefix-cache")(eval_prefix_cache)
    eval_app.command("hyde")(eval_hyde)
