"""``ragline eval retrieval | qa | compare``: retrieval and answer quality on your data or public benchmarks.

Each command parses its flags, calls one function of ``app.retrieval_evaluation``, ``app.qa_evaluation`` or
``eval.compare`` and prints what it returns. The experiments (``app.cli.experiments``) join this same group.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import ConsoleLog, comma_ints, configure_logging, fail
from app.settings import get_settings
from eval.splits import DEFAULT_CHOOSE, DEFAULT_REPORT

if TYPE_CHECKING:
    from eval.qa_summary import RunReport

app = typer.Typer(help="Evaluate retrieval and answers on your data or public benchmarks.", no_args_is_help=True)

DEFAULT_ALPHAS = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"


def _parse_alphas(text: str) -> tuple[float, ...]:
    """``--alphas``: comma-separated weights in [0, 1]."""
    try:
        alphas = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise typer.BadParameter(f"--alphas must be comma-separated numbers, got {text!r}") from None
    if any(not 0 <= a <= 1 for a in alphas):
        raise typer.BadParameter("every α must be in [0, 1]")
    return alphas


@app.command("retrieval")
def eval_retrieval(
    corpus: Annotated[Path | None, typer.Option(help="BEIR corpus.jsonl[.gz]: {_id, title, text} per line.")] = None,
    queries: Annotated[Path | None, typer.Option(help="BEIR queries.jsonl: {_id, text} per line.")] = None,
    qrels: Annotated[Path | None, typer.Option(help="TSV with header query-id corpus-id score.")] = None,
    beir: Annotated[Path | None, typer.Option(help="A BEIR folder (instead of the three files).")] = None,
    split: Annotated[str, typer.Option(help="With --beir: which qrels/<split>.tsv.")] = "test",
    pipeline: Annotated[
        str,
        typer.Option(
            help="bm25 | dense | hybrid | hybrid+rerank (RAGLINE_RERANKER, in its rerank_mode) | rerank-modes "
            "(hybrid, isolated and long-context rerank) | all (variants + α sweep)."
        ),
    ] = "all",
    k: Annotated[int, typer.Option(min=1, help="Cut-off of the headline metrics.")] = 10,
    depth: Annotated[int, typer.Option(min=10, help="Candidates fetched from each search.")] = 100,
    alphas: Annotated[str, typer.Option(help="Convex-fusion weights to sweep (pipeline all).")] = DEFAULT_ALPHAS,
    collection: Annotated[
        str | None, typer.Option(help="Collection to (re)use; default beir-<folder>[-chunker].")
    ] = None,
    chunker: Annotated[
        str, typer.Option(help="fixed | semantic | semantic-cluster | raptor | sentence-window.")
    ] = "fixed",
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N judged queries.")] = None,
    corpus_sample: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Index only N documents: all judged for the evaluated queries plus a seeded sample of the rest "
            "(same subset for every chunker). For slow chunkers on a small machine.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --corpus-sample.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """nDCG@k, Recall@k, Recall@100, MRR@k, P@k and latency for BM25, dense and hybrid retrieval.

    The corpus is ingested incrementally into a collection (content hashes): a second run re-embeds nothing.
    A document's score is its best chunk's score. Only queries present in the qrels are evaluated. The collection
    name holds the chunker and the subset, and each document's hash the chunker's settings, so a cached collection
    is reused only for the same corpus, chunker and settings.
    """
    from app.chunking import CHUNKERS
    from app.llm import LLMUnavailableError
    from app.retrieval_evaluation import RetrievalEvalRequest, run_retrieval_evaluation
    from eval.beir import resolve_beir_files
    from eval.retrieval_quality import PIPELINES

    if pipeline not in PIPELINES:
        raise typer.BadParameter(f"--pipeline must be one of {', '.join(PIPELINES)}")
    if chunker not in CHUNKERS:
        raise typer.BadParameter(f"--chunker must be one of {', '.join(CHUNKERS)}")
    configure_logging()
    sweep = _parse_alphas(alphas) if pipeline == "all" else ()
    try:
        files = resolve_beir_files(beir, corpus, queries, qrels, split)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    request = RetrievalEvalRequest(
        files, pipeline, k, depth, sweep, collection, chunker, limit, corpus_sample, seed, json_out
    )
    try:
        result = run_retrieval_evaluation(get_settings(), request, ConsoleLog())
    except (FileNotFoundError, ValueError, LLMUnavailableError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"\n{result.dataset}: {result.queries} judged queries, depth {result.depth}\n")
    typer.echo(result.table)
    if result.best is not None:
        best = result.best
        typer.echo(f"\nbest α = {best.alpha:.2f} (nDCG@{result.k} {best.convex:.4f}); RRF {best.rrf:.4f} → "
                   f"{best.winner} wins")  # fmt: skip
        typer.echo("  (in-sample: chosen and scored on the same queries; `ragline eval select` chooses on one part "
                   "and reports on another)")  # fmt: skip
    typer.echo("search latency (ms): " + ", ".join(f"{key} {value}" for key, value in result.latency_ms.items()))
    typer.echo(f"report: {result.report_path}")


@app.command("select")
def eval_select(
    beir: Annotated[Path, typer.Option(help="A BEIR folder (corpus, queries, qrels).")],
    split: Annotated[str, typer.Option(help="Which qrels/<split>.tsv holds the judged queries.")] = "train",
    chunk_sizes: Annotated[
        str, typer.Option(help="Fixed-chunker sizes tried (tokens, comma-separated); the configured one is added.")
    ] = "128,256,384",
    alphas: Annotated[
        str, typer.Option(help="Convex-fusion α tried (comma-separated); the configured one is added.")
    ] = "0.3,0.4,0.5,0.6,0.7",
    choose: Annotated[int, typer.Option(min=1, help="Queries the choice is made on.")] = DEFAULT_CHOOSE,
    report: Annotated[int, typer.Option(min=1, help="Queries the choice is reported on (used for nothing else).")] = (
        DEFAULT_REPORT
    ),
    split_seed: Annotated[int, typer.Option(help="Seed of the choose/report split (the reranker's: 13).")] = 13,
    k: Annotated[int, typer.Option(min=1, help="nDCG cut-off.")] = 10,
    depth: Annotated[int, typer.Option(min=10, help="Candidates fetched from each search.")] = 100,
    corpus_sample: Annotated[
        int | None,
        typer.Option(min=1, help="Index only N documents: every judged one plus a seeded sample (faster)."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report here.")] = None,
) -> None:
    """Chunk size and fusion α chosen on `choose` queries, reported on `report` queries no choice used.

    Every (chunk size, α) pair is scored with hybrid retrieval on the same queries; the best on `choose` is reported
    on `report` beside the configured pair, with a 95% paired bootstrap interval of the gain. The split is the
    reranker's (same seed and sizes, same `report` part). One collection per chunk size, reused on a second run.
    """
    from app.retrieval_selection import RetrievalSelectionRequest, run_retrieval_selection
    from eval.beir import resolve_beir_files
    from eval.selection import format_selection

    configure_logging()
    sizes = comma_ints(chunk_sizes, "--chunk-sizes")
    if any(size < 16 for size in sizes):
        raise typer.BadParameter("every chunk size must be at least 16 tokens")
    try:
        files = resolve_beir_files(beir, None, None, None, split)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    request = RetrievalSelectionRequest(
        files, sizes, _parse_alphas(alphas), choose, report, split_seed, k, depth, corpus_sample, json_out=json_out
    )
    try:
        selection, path = run_retrieval_selection(get_settings(), request, ConsoleLog())
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo("")
    for line in format_selection(selection, f"nDCG@{k}"):
        typer.echo(line)
    typer.echo(f"report: {path}")


@app.command("qa")
def eval_qa(
    dataset: Annotated[Path | None, typer.Option(help="Question set, .jsonl or .csv (question, answers).")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection to answer (or to fill from --corpus).")] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="Ingest this first: BEIR-style .jsonl[.gz] ({_id,title,text}) or files.")
    ] = None,
    config: Annotated[
        list[Path] | None, typer.Option("--config", help="TOML of settings overrides; repeat to compare configs.")
    ] = None,
    preset: Annotated[str | None, typer.Option(help="ablation: bm25/dense/hybrid/+rerank/+positioning/...")] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Application profiles to compare, comma-separated (default,enterprise,research,code)."),
    ] = None,
    reranker: Annotated[str | None, typer.Option(help="Reranker for the ablation's +rerank step.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N valid questions.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Questions in flight at once (vLLM batches them).")] = 4,
    k: Annotated[int, typer.Option(min=1, help="Cut-off of P@k and Recall@k.")] = 5,
    ragas: Annotated[bool, typer.Option(help="Score with RAGAS (LLM judge).")] = True,
    ragas_limit: Annotated[
        int | None, typer.Option(min=1, help="Judge only the first N questions (the judge is slow on a CPU).")
    ] = None,
    judge_url: Annotated[str | None, typer.Option(help="OpenAI-compatible judge URL (default: generator's).")] = None,
    judge_model: Annotated[str | None, typer.Option(help="Judge model name (default: the served generator).")] = None,
    judge_key: Annotated[str, typer.Option(help="API key for the judge endpoint.")] = "x",
    judge_max_tokens: Annotated[int, typer.Option(min=64, help="Output tokens per judge call.")] = 1024,
    judge_strictness: Annotated[int, typer.Option(min=1, help="Questions answer relevancy generates.")] = 1,
    chunker: Annotated[str, typer.Option(help="Chunker for --corpus.")] = "fixed",
    run_id: Annotated[str | None, typer.Option(help="Name of the run folder (default: qa-<timestamp>).")] = None,
    resume: Annotated[str | None, typer.Option(help="Finish an interrupted run: its RUN_ID.")] = None,
    report_only: Annotated[
        bool, typer.Option(help="With --resume: rebuild the report from the stored results, run nothing.")
    ] = False,
) -> None:
    """Run the whole pipeline over a question set for one or more configs; write an HTML/JSON report.

    Answers are scored with EM, token F1, containment and abstention; retrieval with P@k, Recall@k, MRR and
    nDCG@10 when the set has gold document ids; and with RAGAS (faithfulness, answer relevancy, context
    precision and recall) by an LLM judge. Results go to <reports_dir>/<run-id>/ as they arrive, so
    `--resume RUN_ID` continues an interrupted run.
    """
    from app.llm import LLMUnavailableError
    from app.qa_evaluation import JudgeOptions, QARunRequest, rebuild_qa_report, resume_qa_run, start_qa_run
    from eval.ragas_judge import JudgeUnavailableError

    configure_logging()
    settings = get_settings()
    if report_only and not resume:
        raise typer.BadParameter("--report-only needs --resume RUN_ID")
    judge = JudgeOptions(judge_url, judge_model, judge_key, judge_max_tokens, judge_strictness) if ragas else None
    try:
        if resume and report_only:
            report = rebuild_qa_report(settings, resume)
        elif resume:
            report = resume_qa_run(settings, resume, workers=workers, judge_key=judge_key, log=ConsoleLog())
        else:
            request = QARunRequest(
                dataset=_new_run_dataset(dataset, collection, corpus), collection=collection, corpus=corpus,
                config_files=config or [], preset=preset, profiles=_profiles(profile), reranker=reranker,
                limit=limit, workers=workers, k=k, judge=judge, ragas_limit=ragas_limit, chunker=chunker,
                run_id=run_id,
            )  # fmt: skip
            report = start_qa_run(settings, request, ConsoleLog())
    except (FileNotFoundError, ValueError, LLMUnavailableError, JudgeUnavailableError) as exc:
        raise fail(str(exc)) from None
    _print_run_report(report)


def _profiles(text: str | None) -> list[str]:
    """``--profile``: comma-separated profile names, each once, in the order given."""
    from app.profiles import PROFILE_NAMES

    names = list(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))
    unknown = [n for n in names if n not in PROFILE_NAMES]
    if unknown:
        raise typer.BadParameter(f"--profile takes {', '.join(PROFILE_NAMES)}; got {', '.join(unknown)}")
    return names


def _new_run_dataset(dataset: Path | None, collection: str | None, corpus: Path | None) -> Path:
    """A new run needs a question set, and a collection to answer from or a corpus to build it from."""
    if dataset is None:
        raise typer.BadParameter("give --dataset (or --resume RUN_ID)")
    if corpus is None and collection is None:
        raise typer.BadParameter("give --collection NAME or --corpus FILE")
    if corpus is not None and not corpus.exists():
        raise typer.BadParameter(f"{corpus} does not exist")
    return dataset


def _print_run_report(report: RunReport) -> None:
    """The table of configs, each config's first errors in red under its row, and where the HTML report is."""
    typer.echo("\n" + report.header)
    for row in report.rows:
        typer.echo(row.line)
        for error in row.errors:
            typer.secho(f"  {error}", fg=typer.colors.RED, err=True)
    typer.echo(f"\nreport: {report.html}")


@app.command("compare")
def eval_compare(
    run_a: Annotated[str, typer.Argument(help="Baseline run: run id, run folder or report.json.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run.")],
    fail_on_regression: Annotated[bool, typer.Option(help="Exit 1 when a metric drops more than --tolerance.")] = False,
    tolerance: Annotated[float, typer.Option(min=0, help="Allowed drop (absolute, metrics are 0..1).")] = 0.02,
) -> None:
    """Print per-config metric deltas of RUN_B against RUN_A; with --fail-on-regression, gate CI on them."""
    from eval.compare import compare_runs, format_deltas

    try:
        comparison = compare_runs(run_a, run_b, get_settings().reports_dir, tolerance)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    if comparison.only_in_one:
        typer.echo(f"configs in only one run (not compared): {', '.join(comparison.only_in_one)}")
    if not comparison.deltas:
        raise fail("the two runs share no config")
    typer.echo(format_deltas(comparison.deltas, tolerance))
    if not comparison.regressions:
        typer.echo(f"\nno metric regressed by more than {tolerance}")
        return
    typer.secho(
        f"\n{len(comparison.regressions)} metric(s) regressed by more than {tolerance}", fg=typer.colors.RED, err=True
    )
    if fail_on_regression:
        raise typer.Exit(code=1)
