"""The root ``ragline`` app: it only assembles the groups, each of which lives in its own module."""

from __future__ import annotations

import os

import typer

from app.cli import bench, config, evaluation, experiments, models, reranker, run, services, worker

app = typer.Typer(help="ragline: grounded, cited answers from your documents, offline.", no_args_is_help=True)
app.add_typer(run.app)  # ingest, ask, chat
app.add_typer(services.app)  # serve, ui, demo, llm
app.add_typer(worker.app)  # worker
app.add_typer(models.app, name="models")
app.add_typer(config.app, name="config")
evaluation.app.add_typer(experiments.app)  # position, abstention, compression, hyde, prefix-cache join `eval`
app.add_typer(evaluation.app, name="eval")
app.add_typer(bench.app, name="bench")
app.add_typer(reranker.app, name="reranker")


def main() -> None:
    """Entry point of the ``ragline`` script: offline by default, whatever the environment says."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    app()
