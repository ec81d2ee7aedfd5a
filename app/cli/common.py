"""What every command of the CLI shares: failing with a message, logging set-up, and SIGTERM as Ctrl-C.

Only the CLI imports this module; library code raises exceptions and never prints or exits.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ingest.job import IngestSummary

NOISY_LOGGERS = ("httpx", "sentence_transformers", "chromadb", "urllib3", "bm25s")


ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Application profile: default | enterprise | research | code (docs/profiles.md); "
        "default: RAGLINE_PROFILE or ragline.toml.",
        show_default=False,
    ),
]


def use_profile(profile: str | None) -> None:
    """Make ``--profile`` the profile of this process and of every service it starts (``RAGLINE_PROFILE``)."""
    if profile is None:
        return
    from app.profiles import PROFILE_NAMES
    from app.settings import get_settings

    if profile not in PROFILE_NAMES:
        raise typer.BadParameter(f"--profile takes {', '.join(PROFILE_NAMES)}; got {profile!r}")
    os.environ["RAGLINE_PROFILE"] = profile
    get_settings.cache_clear()


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` in red on stderr and return the exit to raise (``raise fail(...) from None``)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def configure_logging(verbose: bool = False) -> None:
    """INFO (or DEBUG) on stderr, with the chatty third-party loggers held at WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so the cleanup that stops child servers runs either way."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


class ConsoleLog:
    """A run's progress on the terminal (``app.run_log.RunLog``): info on stdout, warnings in yellow on stderr."""

    def info(self, message: str) -> None:
        typer.echo(message)

    def warn(self, message: str) -> None:
        typer.secho(message, fg=typer.colors.YELLOW, err=True)


def check_collection_name(collection: str) -> None:
    """Collection names become Chroma names and folder names: refuse anything else before work starts."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}", collection):
        raise fail(f"collection name {collection!r} must be 1-63 letters, digits, '-' or '_'")


def print_corpus_ingest(summary: IngestSummary) -> None:
    """The one line a command prints after ingesting its evaluation corpus, and the failures (on stderr) if any."""
    from app.corpus_collections import describe_corpus_failures, describe_corpus_ingest

    log = ConsoleLog()
    log.info(describe_corpus_ingest(summary))
    if failures := describe_corpus_failures(summary):
        log.warn(failures)


def comma_ints(text: str | None, option: str) -> tuple[int, ...]:
    """Comma-separated positive integers (token lengths, depths)."""
    try:
        values = tuple(int(v) for v in _comma_values(text, option))
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated whole numbers; got {text!r}") from None
    if any(v < 1 for v in values):
        raise typer.BadParameter(f"{option} takes positive numbers; got {text!r}")
    return values


def comma_floats(text: str | None, option: str) -> tuple[float, ...]:
    return tuple(float(v) for v in _comma_values(text, option))


def _comma_values(text: str | None, option: str) -> list[str]:
    values = [v.strip() for v in (text or "").split(",") if v.strip()]
    try:
        [float(v) for v in values]
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated numbers; got {text!r}") from None
    return values
