"""``ragline eval position | abstention | compression | hyde | prefix-cache``: the context experiments.

Each command talks to a running vLLM (``ragline llm serve``; ``--llm-url`` to point elsewhere), reads the
``nq-open-oracle`` folder (hyde: a BEIR folder), prints a table and writes a JSON report under
``<data_dir>/reports/``. The experiments live in ``eval.experiments``; ``app.experiment_wiring`` builds what they
measure. Answer accuracy is containment (``accuracy_contains``): an accepted answer occurs in the output.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.common import fail
from app.experiment_wiring import (
    SAMPLE_OFFTOPIC,
    SAMPLE_QA,
    LLMNotReadyError,
    calibrate_host,
    check_positionings,
    ensure_injection_collection,
    ensure_nq_collection,
    ensure_sample_collection,
    experiment_pipeline,
    experiment_resources,
    hybrid_config,
    hyde_query_sets,
    hyde_query_writer,
    ingested_line,
    injection_asker,
    offline_resources,
    position_models,
    stored_generation,
)
from eval.experiments.abstention import abstention_report, abstention_runs, abstention_scores
from eval.experiments.common import ReportFile, read_question_rows
from eval.experiments.compression import run_compression_experiment
from eval.experiments.hyde import run_hyde_experiment
from eval.experiments.nq import NQQuestion, Passage, load_nq_experiment
from eval.experiments.position import (
    SLOT_NAMES,
    PipelinePositioning,
    PositionExperiment,
    PositionSweep,
    compare_pipeline_positioning,
    pipeline_lines,
    run_position_experiment,
)
from eval.experiments.prefix_cache import run_prefix_cache_experiment

if TYPE_CHECKING:
    from app.resources import Resources

app = typer.Typer()

DEFAULT_DATA = Path("../shared/data/nq-open-oracle")
DataOption = Annotated[Path, typer.Option("--data", help="The nq-open-oracle folder.")]
LimitOption = Annotated[int, typer.Option(min=1, help="Questions to evaluate (the first N).")]
UrlOption = Annotated[str | None, typer.Option(help="vLLM base URL; default RAGLINE_LLM_BASE_URL.")]
WorkersOption = Annotated[int, typer.Option(min=1, help="Requests in flight (vLLM batches them).")]


@contextmanager
def _llm_errors() -> Iterator[None]:
    """An LLM failure mid-run (a timeout on a busy server) ends the command with its message, not a traceback."""
    from app.llm import LLMUnavailableError

    try:
        yield
    except LLMUnavailableError as exc:
        raise fail(f"{exc} (a busy server: raise RAGLINE_LLM_TIMEOUT_S or lower --workers)") from None


def _resources(llm_url: str | None) -> Resources:
    try:
        return experiment_resources(llm_url)
    except LLMNotReadyError as exc:
        raise fail(str(exc)) from None


def _nq(data: Path, limit: int | None) -> tuple[list[NQQuestion], dict[str, Passage]]:
    try:
        return load_nq_experiment(data, limit)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None


def _echo(lines: Sequence[str]) -> None:
    for line in lines:
        typer.echo(line)


def _write_report(resources: Resources, name: str, payload: dict[str, Any]) -> None:
    typer.echo(f"report: {ReportFile(resources.settings.reports_dir, name).write(payload)}")


@app.command("position")
def position(
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
    """Lost in the middle: answer accuracy (containment) with the gold passage first, in the middle and last among
    k passages, as given to the model (input order) and after our edge positioning stage.

    Distractors are the passages dense retrieval ranks highest for the question that hold none of its answers; "with
    edge" ranks the same k passages by their dense cosine and runs the positioning stage. Identical prompts are
    generated once, and a report is written after each k, so a long sweep keeps what it finished.

    ``--slot first`` asks two prompts per question instead of four (without positioning, gold first; and each
    stage): the stage's prompt does not depend on the input slot, so this is how to afford the hundreds of questions
    a gap of two points needs on a CPU server.
    """
    stages = list(dict.fromkeys(positioning or ["edge"]))
    try:
        check_positionings(stages)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if unknown := [name for name in slot or [] if name not in SLOT_NAMES]:
        raise typer.BadParameter(f"--slot takes first, middle or last; got {', '.join(unknown)}")
    resources = _resources(llm_url)
    questions, passages = _nq(data, limit)
    typer.echo(ingested_line(ensure_nq_collection(resources, passages)))
    report = ReportFile(resources.settings.reports_dir, "position")

    def checkpoint(experiment: PositionExperiment, sweep: PositionSweep) -> None:
        _echo(experiment.sweep_lines(sweep))
        first = report.path is None
        path = report.write(experiment.report())
        if first:
            typer.echo(f"report: {path}")

    with _llm_errors():
        experiment = run_position_experiment(
            position_models(resources, stages, typer.echo),
            questions,
            passages,
            data=data,
            sizes=k or [10, 20],
            workers=workers,
            slots=[name for name in SLOT_NAMES if name == "first" or name in (slot or SLOT_NAMES)],
            stored_only=stored_only,
            on_progress=typer.echo,
            on_sweep=checkpoint,
        )
    if pipeline_runs and experiment.sweeps:
        _position_pipeline(resources, experiment, questions, workers, report)


def _position_pipeline(
    resources: Resources, experiment: PositionExperiment, questions: list[NQQuestion], workers: int, report: ReportFile
) -> None:
    """``--pipeline``: edge against relevance order through the whole pipeline, the report rewritten after each."""

    def checkpoint(comparison: PipelinePositioning) -> None:
        experiment.pipeline = comparison
        report.write(experiment.report())

    with _llm_errors(), stored_generation(resources, typer.echo) as (pipeline, stored):
        experiment.pipeline = compare_pipeline_positioning(
            pipeline,
            stored,
            questions,
            k=experiment.sizes[0],
            workers=workers,
            on_progress=typer.echo,
            on_order=checkpoint,
        )
    _echo(pipeline_lines(experiment.pipeline))
    typer.echo(f"report: {report.write(experiment.report())}")


@app.command("compression")
def compression(
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
    """Compression ratio against answer-accuracy retention and net latency (compression time included).

    Requests run one at a time, each variant right after the uncompressed baseline of the same question, so the
    latencies compare like with like on a machine whose load changes; the ratio of medians is the number to read.
    With ``--calibrate``, measures instead the two speeds the ``auto`` rule weighs (vLLM prefill and compression,
    in generator tokens per second) and writes ``<data_dir>/calibration.json``.
    """
    resources = _resources(llm_url)
    questions, passages = _nq(data, limit)
    if calibrate:
        _calibrate(resources, questions, passages, repeats)
        return
    typer.echo(ingested_line(ensure_nq_collection(resources, passages)))
    with _llm_errors():
        experiment = run_compression_experiment(
            experiment_pipeline(resources),
            questions,
            [m.strip() for m in methods.split(",") if m.strip()],
            data=data,
            k=k,
            rate=rate,
            generator=resources.generator.model,
            compression_model=resources.settings.compression_model,
        )
    typer.echo(experiment.table())
    _write_report(resources, "compression", experiment.report())


def _calibrate(resources: Resources, questions: list[NQQuestion], passages: dict[str, Passage], repeats: int) -> None:
    """``--calibrate``: measure and save the host's prefill and compression speeds."""
    from app.context.calibration import CalibrationError
    from app.context.compression import CompressionUnavailableError

    try:
        with _llm_errors():
            host = calibrate_host(resources, questions, passages, repeats, typer.echo)
    except (CompressionUnavailableError, CalibrationError) as exc:
        raise fail(str(exc)) from None
    calibration, rate = host.calibration, resources.settings.compression_rate
    ratio = calibration.prefill_tokens_per_s / calibration.compression_tokens_per_s
    typer.echo(
        f"prefill {calibration.prefill_tokens_per_s} tokens/s, compression {calibration.compression_tokens_per_s} "
        f"tokens/s (prefill/compression {ratio:.1f}); at rate {rate} compressing pays only "
        f"when prefill is slower than {1 - rate:.2f} × compression speed"
    )
    typer.echo(f"calibration: {host.path}")
    _write_report(
        resources, "calibration", {"calibration": calibration.__dict__, "prefill_samples": host.samples.prefill}
    )


@app.command("abstention")
def abstention(
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

    Suggests a cut (at most ``max_false_abstention`` of each answerable set refused, in the middle of the gap down
    to the best off-topic score), shows what it and the balanced-accuracy cut (NQ, ``calibrate`` questions) catch,
    then (unless ``--scores-only``) runs the pipeline at the suggested cut (or ``--threshold``) on ``limit`` NQ
    questions with the gold present and withheld.
    """
    resources = offline_resources() if scores_only else _resources(llm_url)
    questions, passages = _nq(data, None)
    try:
        sample_rows = [*read_question_rows(sample_qa), *read_question_rows(offtopic)]
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(ingested_line(ensure_nq_collection(resources, passages)))
    typer.echo(ingested_line(ensure_sample_collection(resources)))
    evaluated, held_out = questions[:limit], questions[limit : limit + calibrate]
    scores = abstention_scores(resources.index, evaluated, held_out, sample_rows, max_false_abstention)
    _echo(scores.lines())
    runs = None
    if not scores_only:
        cut = scores.suggested if threshold is None else threshold
        with _llm_errors():
            runs = abstention_runs(experiment_pipeline(resources), evaluated, cut, workers, llm_check)
        _echo(runs.lines())
    payload = abstention_report(
        scores, runs, data=data, sample_qa=sample_qa, offtopic=offtopic, corpus_passages=len(passages)
    )
    _write_report(resources, "abstention", payload)


@app.command("prefix-cache")
def prefix_cache(
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

    resources = _resources(llm_url)
    questions, passages = _nq(data, repeats * 2)
    try:
        with _llm_errors():
            experiment = run_prefix_cache_experiment(
                resources.generator,
                SYSTEM_PROMPT,
                questions,
                passages,
                repeats=repeats,
                passages_in_prefix=passages_in_prefix,
            )
    except ValueError as exc:
        raise fail(str(exc)) from None
    _echo(experiment.lines())
    _write_report(resources, "prefix-cache", experiment.report())


@app.command("hyde")
def hyde(
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
    resources = _resources(llm_url)
    try:
        query_sets = hyde_query_sets(resources, beir, split, limit_queries, collection, sample_qa, typer.echo)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    with _llm_errors():
        experiment = run_hyde_experiment(
            resources.index,
            hyde_query_writer(resources, typer.echo),
            query_sets,
            beir=beir,
            split=split,
            generator=resources.generator.model,
            hybrid=hybrid_config(resources),
            depth=depth,
            workers=workers,
            latency_queries=latency_queries,
            on_progress=typer.echo,
        )
    _echo(experiment.lines())
    _write_report(resources, "hyde", experiment.report())


@app.command("injection")
def injection(
    limit: Annotated[int | None, typer.Option(min=1, help="Items per split (the first N of dev and of test).")] = None,
    split: Annotated[
        list[str] | None, typer.Option(help="Only this split (dev or test; repeatable); default both.")
    ] = None,
    workers: WorkersOption = 8,
    llm_url: UrlOption = None,
) -> None:
    """Prompt injection: how often a planted instruction is followed, and the true fact still answered.

    Each item of eval/datasets/injection/ is asked with its clean document, its injected document with the
    screening off, and with it on (the default), beside the sample corpus as distractors; printed per split
    (dev was used to write the rules, test never) and per style. Answers are stored as they arrive
    (context-pipeline-answers.jsonl), so a rerun asks only what is new.
    """
    from eval.experiments.injection import SPLITS, load_items, run_injection_experiment

    resources = _resources(llm_url)
    try:
        items = load_items(limit=limit, splits=split or SPLITS)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    for summary in ensure_injection_collection(resources, items):
        typer.echo(ingested_line(summary))
    with _llm_errors(), stored_generation(resources, typer.echo) as (pipeline, stored):
        experiment = run_injection_experiment(
            items,
            injection_asker(pipeline),
            generator=resources.generator.model,
            workers=workers,
            on_progress=typer.echo,
        )
    typer.echo(f"answers read back from an earlier run: {stored.reused}")
    _echo(experiment.lines())
    _write_report(resources, "injection", experiment.report())
