"""``ragline serve | ui | demo`` and ``ragline llm serve | status``: the long-running services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import ProfileOption, configure_logging, fail, stop_on_sigterm, use_profile
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.vllm_server import VLLMServer

app = typer.Typer()
llm_app = typer.Typer(help="Run and check the vLLM generator service.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")

REPO_ROOT = Path(__file__).resolve().parents[2]


def ui_command_line(port: int) -> list[str]:
    """The Streamlit command line of the chat UI, bound to 127.0.0.1."""
    return [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "streamlit_app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # A served UI does not hot-reload: watching the repository (virtualenvs, data dir) costs CPU and inotify.
        "--server.fileWatcherType", "none",
    ]  # fmt: skip


def _require_free_port(host: str, port: int, hint: str = "pass --port") -> None:
    from app.vllm_server import port_is_free

    if not port_is_free(host, port):
        raise fail(f"port {port} on {host} is already in use: stop what listens there or {hint}")


@app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    profile: ProfileOption = None,
) -> None:
    """Run the REST API."""
    import uvicorn

    use_profile(profile)
    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    _require_free_port(host, port)
    uvicorn.run("app.api.main:create_app", factory=True, host=host, port=port, log_level="info")


@app.command("ui")
def ui_command(
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(help="A file holding one tenant's API key: the UI serves that tenant only, without sign-in."),
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Run the Streamlit chat UI."""
    from app.ui.start_key import KEY_ENV, StartKeyError, read_start_key

    use_profile(profile)
    settings = get_settings()
    port = port or settings.ui_port
    env = dict(os.environ)
    if api_key_file is not None:
        try:
            env[KEY_ENV], tenant = read_start_key(api_key_file, settings.api_keys_file)
        except StartKeyError as exc:
            raise fail(f"--api-key-file: {exc}") from None
        typer.echo(f"the UI serves tenant {tenant.name} only, without sign-in", err=True)
    _require_free_port("127.0.0.1", port)
    raise typer.Exit(subprocess.call(ui_command_line(port), env=env))


def vllm_server(settings: Settings, model: str | None, port: int | None) -> VLLMServer:
    """The vLLM server for ``model`` (default: the configured generator) on 127.0.0.1."""
    from urllib.parse import urlparse

    from app.model_registry import ModelRole
    from app.resources import resolve_model_dir
    from app.vllm_server import VLLMServer

    name = model or settings.generator
    return VLLMServer(
        resolve_model_dir(settings, name, ModelRole.GENERATOR),
        served_name=Path(name).name,
        python=settings.vllm_python,
        host="127.0.0.1",
        port=port or urlparse(settings.llm_base_url).port or 8000,
        max_model_len=settings.vllm_max_model_len,
        kvcache_gib=settings.vllm_kvcache_gib,
        dtype=settings.vllm_dtype,
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
    stop_on_sigterm()
    try:
        server = vllm_server(settings, model, port)
    except ModelMissingError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"starting vLLM ({server.served_name}) on {server.base_url}; log: {server.log_path}")
    started = time.perf_counter()
    try:
        server.start(settings.vllm_start_timeout_s)
        typer.echo(f"vLLM ready at {server.base_url} after {time.perf_counter() - started:.0f} s (Ctrl-C stops it)")
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except VLLMStartError as exc:
        raise fail(str(exc)) from None
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
        raise fail(str(exc)) from None
    typer.echo(f"{settings.llm_base_url}: up, serving {', '.join(served)}")
    if served_model_name(settings) not in served:
        raise fail(f"the configured generator {served_model_name(settings)!r} is not among them")


def demo_env(settings: Settings) -> dict[str, str]:
    """The services' environment: the demo reranker turns the rerank stage on when it was trained and no reranker
    is configured; without it the demo says how to get one instead of silently running without."""
    from app.reranker.sample import DEMO_RERANKER, is_trained

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
def demo_command(profile: ProfileOption = None) -> None:
    """Ingest the sample corpus, start vLLM, the API and the UI; Ctrl-C stops everything."""
    from app.resources import ModelMissingError
    from app.vllm_server import VLLMStartError

    configure_logging()
    stop_on_sigterm()
    use_profile(profile)
    settings = get_settings()
    for port in (settings.api_port, settings.ui_port):
        _require_free_port("127.0.0.1", port, "set RAGLINE_API_PORT / RAGLINE_UI_PORT")
    children: list[subprocess.Popen[bytes]] = []
    servers: list[VLLMServer] = []
    try:
        _start_demo_services(settings, children, servers)
        while all(child.poll() is None for child in children):
            time.sleep(1)
        raise fail("a service stopped unexpectedly; see the messages above")
    except KeyboardInterrupt:
        typer.echo("\nstopping…")
    except (ModelMissingError, VLLMStartError) as exc:
        raise fail(str(exc)) from None
    finally:
        _stop_children(children)
        for server in servers:
            server.stop()


def _start_demo_services(
    settings: Settings, children: list[subprocess.Popen[bytes]], servers: list[VLLMServer]
) -> None:
    """Ingest the sample corpus, start vLLM unless one answers, then the API and UI. What is started is appended
    to ``children`` and ``servers`` at once, so the caller stops it even when a later step fails."""
    from app.ingestion import run_ingest
    from app.vllm_server import is_ready
    from ingest.samples import SAMPLE_COLLECTION, sample_corpus_dir

    summary = run_ingest(settings, sample_corpus_dir(), SAMPLE_COLLECTION, prune=True, meta={}, chunker="fixed")
    typer.echo(f"sample corpus: {len(summary.added) + len(summary.updated)} indexed, "
               f"{len(summary.skipped)} unchanged, {len(summary.failed)} failed")  # fmt: skip
    if is_ready(settings.llm_base_url):
        typer.echo(f"using the vLLM already answering at {settings.llm_base_url}")
    else:
        server = vllm_server(settings, None, None)
        servers.append(server)
        typer.echo(f"starting vLLM on {server.base_url} (about 40-100 s on a CPU); log: {server.log_path}")
        server.start(settings.vllm_start_timeout_s)
    env = demo_env(settings)
    print_precision_stages(settings, env)
    children.append(subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], start_new_session=True, env=env))
    children.append(subprocess.Popen(ui_command_line(settings.ui_port), start_new_session=True, env=env))
    typer.secho(
        f"\nragline is up:\n  API  http://127.0.0.1:{settings.api_port}/docs\n"
        f"  UI   http://127.0.0.1:{settings.ui_port}\n  LLM  {settings.llm_base_url}\n"
        f'Try: ragline ask "How long do EU customers have to request a refund?"\nCtrl-C stops everything.',
        fg=typer.colors.GREEN,
    )


def print_precision_stages(settings: Settings, env: dict[str, str]) -> None:
    """Which optional precision stages the services run, and why each is on or off."""
    from app.profiles import precision_stages

    reranker = env.get("RAGLINE_RERANKER", settings.reranker)
    effective = settings.model_copy(update={"reranker": reranker})
    typer.echo(f"profile: {settings.profile}; precision stages:")
    for state in precision_stages(effective):
        mark = typer.style("on ", fg=typer.colors.GREEN) if state.on else typer.style("off", fg=typer.colors.YELLOW)
        typer.echo(f"  {mark} {state.stage}: {state.why}")


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child's process group, then SIGKILL whatever has not stopped after 15 s."""
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
