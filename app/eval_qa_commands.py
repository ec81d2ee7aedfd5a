"""``ragline eval qa`` (end-to-end QA evaluation with RAGAS and HTML reports) and ``ragline eval compare``."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.resources import Resources
    from eval.qa import RunStore


def register(group: typer.Typer) -> None:
    """Add the commands of this module to the ``ragline eval`` group."""
    group.command("qa")(eval_qa)
    group.command("compare")(eval_compare)


def load_config_file(path: Path) -> dict[str, Any]:
    """A config TOML: a flat table of ``Settings`` field overrides. Unknown names fail here, before any question
    runs; the values themselves are validated by the pipeline against the full ``Settings`` model."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config {path} is not valid TOML: {exc}") from None
    nested = [key for key, value in values.items() if isinstance(value, dict)]
    if nested:
        raise ValueError(f"config {path}: tables are not settings ({', '.join(nested)}); use top-level keys")
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"config {path}: unknown setting(s) {', '.join(unknown)}")
    return values


def _configs(
    settings: Settings, config_files: list[Path], preset: str | None, reranker: str | None
) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    from eval.presets import build_preset

    configs: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, str]] = []
    if preset:
        fields = type(settings).model_fields
        built = build_preset(
            preset, fields, reranker or getattr(settings, "reranker", None), settings.resolved_models_dir
        )
        configs.update({c.name: {"options": c.options, "note": c.note} for c in built.configs})
        skipped = [{"name": s.name, "reason": s.reason} for s in built.skipped]
    for path in config_files:
        name = path.stem
        while name in configs:
            name += "'"
        configs[name] = {"options": load_config_file(path), "note": str(path)}
    if not configs:
        configs["default"] = {"options": {}, "note": "the effective settings"}
    return configs, skipped


def _ingest_corpus(resources: Resources, corpus: Path, collection: str, chunker: str) -> None:
    """A ``.jsonl[.gz]`` corpus is BEIR-style records (``_id``, ``title``, ``text``; doc ids are the ``_id``s);
    anything else is a file or folder of documents, ingested as ``ragline ingest`` does."""
    from app.chunking import make_chunker
    from app.eval_commands import ensure_corpus_collection
    from eval.beir import load_corpus
    from ingest.job import ingest_path

    if corpus.name.endswith((".jsonl", ".jsonl.gz")):
        ensure_corpus_collection(resources, collection, load_corpus(corpus), chunker)
        return
    summary = ingest_path(
        resources.index,
        make_chunker(resources, chunker),
        corpus,
        collection,
        max_file_mb=resources.settings.max_file_mb,
        batch_documents=resources.settings.ingest_batch_documents,
    )
    typer.echo(f"{collection}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} unchanged")
    for doc_id, reason in summary.failed.items():
        typer.echo(f"  not ingested: {doc_id}: {reason}", err=True)


def _new_manifest(
    settings: Settings,
    run_id: str,
    dataset: Path,
    loaded_questions: int,
    limit: int | None,
    collection: str,
    corpus: Path | None,
    configs: dict[str, dict[str, Any]],
    skipped: list[dict[str, str]],
    row_errors: list[dict[str, Any]],
    k: int,
    judge: dict[str, Any] | None,
    ragas_limit: int | None,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "dataset": str(dataset.resolve()),
        "questions": loaded_questions,
        "limit": limit,
        "collection": collection,
        "corpus": str(corpus.resolve()) if corpus else None,
        "generator": settings.generator,
        "llm_base_url": settings.llm_base_url,
        "k": k,
        "configs": configs,
        "skipped": skipped,
        "row_errors": row_errors,
        "judge": judge,
        "ragas_limit": ragas_limit,
    }


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
    from app.cli.common import configure_logging as _configure_logging
    from app.cli.common import fail as _fail
    from app.llm import LLMUnavailableError
    from app.query.pipeline import Pipeline
    from app.resources import ModelMissingError, Resources, served_model_name
    from eval.qa import DatasetError, RunStore, load_dataset
    from eval.ragas_judge import JudgeConfig, JudgeUnavailableError, RagasJudge

    _configure_logging()
    settings = get_settings()
    if report_only:
        if not resume:
            raise typer.BadParameter("--report-only needs --resume RUN_ID")
        store = RunStore(settings.reports_dir / resume)
        if not store.manifest_path.is_file():
            raise _fail(f"{store.folder} is not a QA run: run.json is missing")
        _finish(store)
        return
    if resume:
        store = RunStore(settings.reports_dir / resume)
        try:
            manifest = store.manifest()
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from None
        dataset_path, limit = Path(manifest["dataset"]), manifest["limit"]
        typer.echo(f"resuming {resume}: {len(store.done())} results already stored; run options come from run.json")
    else:
        if dataset is None:
            raise typer.BadParameter("give --dataset (or --resume RUN_ID)")
        if corpus is None and collection is None:
            raise typer.BadParameter("give --collection NAME or --corpus FILE")
        if corpus is not None and not corpus.exists():
            raise typer.BadParameter(f"{corpus} does not exist")
        dataset_path = dataset
    try:
        loaded = load_dataset(dataset_path, limit)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    for error in loaded.errors:
        typer.secho(f"skipped {dataset_path}:{error.line}: {error.reason}", fg=typer.colors.YELLOW, err=True)

    try:
        resources = Resources(settings)
        if resume:
            name = manifest["collection"]
        else:
            name = collection or f"qa-{corpus.name.split('.')[0]}"  # type: ignore[union-attr]
            if corpus is not None:
                _ingest_corpus(resources, corpus, name, chunker)
        resources.index.require_collection(name)
        resources.generator.served_models()
    except (ModelMissingError, LLMUnavailableError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    pipeline = Pipeline(resources)

    if not resume:
        try:
            configs, skipped = _configs(settings, config or [], preset, reranker)
            for options in configs.values():
                pipeline.settings_for(options["options"])
        except ValueError as exc:
            raise _fail(str(exc)) from None
        judge_info = (
            {
                "base_url": judge_url or settings.llm_base_url,
                "model": judge_model or served_model_name(settings),
                "max_tokens": judge_max_tokens,
                "strictness": judge_strictness,
                "api_key": judge_key,
            }
            if ragas
            else None
        )
        run_name = run_id or time.strftime("qa-%Y%m%d-%H%M%S")
        store = RunStore(settings.reports_dir / run_name)
        if store.manifest_path.exists():
            raise _fail(f"run {run_name} exists already: pick another --run-id or --resume {run_name}")
        manifest = _new_manifest(
            settings, run_name, dataset_path, len(loaded.items), limit, name, corpus, configs, skipped,
            [{"line": e.line, "reason": e.reason} for e in loaded.errors], k, judge_info, ragas_limit,
        )  # fmt: skip
        store.write_manifest({**manifest, "judge": _public_judge(judge_info)})
        manifest["judge"] = judge_info
    for item in manifest["skipped"]:
        typer.secho(f"config {item['name']} skipped: {item['reason']}", fg=typer.colors.YELLOW, err=True)

    judge = None
    if manifest["judge"]:
        info = manifest["judge"]
        judge_config = JudgeConfig(
            base_url=info["base_url"],
            model=info["model"],
            api_key=info.get("api_key") or judge_key,
            max_tokens=info["max_tokens"],
            strictness=info["strictness"],
        )
        ragas_judge = RagasJudge(judge_config, resources.embedder)
        try:
            ragas_judge.check()
        except JudgeUnavailableError as exc:
            raise _fail(str(exc)) from None

        def judge(item: Any, answer: str, contexts: list[str]) -> dict[str, dict[str, Any]]:
            return ragas_judge.score(item.question, answer, contexts, item.reference)

    _run_all(store, manifest, pipeline, resources, loaded.items, workers, judge)
    _finish(store)


def _public_judge(judge: dict[str, Any] | None) -> dict[str, Any] | None:
    """The judge settings as stored in run.json: a key other than the placeholder is not written to disk."""
    if judge is None:
        return None
    return {**judge, "api_key": None if judge.get("api_key") not in (None, "x") else judge.get("api_key")}


def _run_all(
    store: RunStore,
    manifest: dict[str, Any],
    pipeline: Any,
    resources: Resources,
    items: list[Any],
    workers: int,
    judge: Any,
) -> None:
    from eval.qa import run_config

    chunks = {chunk.id: chunk for chunk in resources.index.manifest.chunks(manifest["collection"])}
    for name, config in manifest["configs"].items():
        counter = {"n": sum(1 for c, _ in store.done() if c == name)}
        total = len(items)

        def progress(
            record: dict[str, Any], name: str = name, counter: dict[str, int] = counter, total: int = total
        ) -> None:
            counter["n"] += 1
            state = f"error: {record['error']}" if record.get("error") else f"{record['wall_ms']:.0f} ms"
            typer.echo(f"[{name} {counter['n']}/{total}] {record['id']}: {state}")

        started = time.perf_counter()
        ran = run_config(
            pipeline, chunks, items, manifest["collection"], name, config["options"], store,
            k=manifest["k"], workers=workers, judge=judge, judge_limit=manifest.get("ragas_limit"), progress=progress,
        )  # fmt: skip
        if ran:
            typer.echo(f"{name}: {ran} questions in {time.perf_counter() - started:.0f} s")


def _finish(store: RunStore) -> None:
    from eval.report import HEADLINE, flat_metrics, write_report

    report = write_report(store.folder, store.manifest(), store.results())
    summary = report["summary"]
    keys = [k for k in HEADLINE if any(flat_metrics(s).get(k) is not None for s in summary.values())]
    keys += sorted({k for s in summary.values() for k in s["metrics"] if k.startswith(("p@", "recall@"))})
    typer.echo("\n" + f"{'config':16}" + "".join(f"{key[:12]:>13}" for key in keys) + f"{'p50 ms':>9}")
    for config, values in summary.items():
        flat = flat_metrics(values)
        cells = "".join(f"{'–' if flat.get(key) is None else format(flat[key], '.3f'):>13}" for key in keys)
        wall = values["latency_ms"].get("total (wall)", {}).get("p50")
        typer.echo(f"{config:16}{cells}{'–' if wall is None else format(wall, '.0f'):>9}")
        for error in values["errors"][:3]:
            typer.secho(f"  {error['id']}: {error['error']}", fg=typer.colors.RED, err=True)
    typer.echo(f"\nreport: {store.folder / 'report.html'}")


def eval_compare(
    run_a: Annotated[str, typer.Argument(help="Baseline run: run id, run folder or report.json.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run.")],
    fail_on_regression: Annotated[bool, typer.Option(help="Exit 1 when a metric drops more than --tolerance.")] = False,
    tolerance: Annotated[float, typer.Option(min=0, help="Allowed drop (absolute, metrics are 0..1).")] = 0.02,
) -> None:
    """Print per-config metric deltas of RUN_B against RUN_A; with --fail-on-regression, gate CI on them."""
    from app.cli.common import fail as _fail
    from eval.compare import compare_reports, format_deltas, load_report, regressions

    settings = get_settings()
    try:
        before, after = load_report(run_a, settings.reports_dir), load_report(run_b, settings.reports_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    deltas = compare_reports(before, after)
    only = sorted(set(before["summary"]) ^ set(after["summary"]))
    if only:
        typer.echo(f"configs in only one run (not compared): {', '.join(only)}")
    if not deltas:
        raise _fail("the two runs share no config")
    typer.echo(format_deltas(deltas, tolerance))
    bad = regressions(deltas, tolerance)
    if bad:
        typer.secho(f"\n{len(bad)} metric(s) regressed by more than {tolerance}", fg=typer.colors.RED, err=True)
        if fail_on_regression:
            raise typer.Exit(code=1)
    else:
        typer.echo(f"\nno metric regressed by more than {tolerance}")
