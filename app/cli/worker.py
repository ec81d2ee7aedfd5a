"""``ragline worker``: run ingestion jobs from the shared database until stopped (``app.jobs.worker``)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from app.cli.common import ProfileOption, configure_logging, use_profile
from app.settings import get_settings

app = typer.Typer()


@app.command("worker")
def worker_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once the queue has no job this worker can take.")
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Run upload jobs that `ragline serve` enqueued (RAGLINE_DATABASE_URL: the shared PostgreSQL).

    Start any number, on any hosts: each job runs once, jobs of one collection one at a time, and a worker killed
    mid-job has its job retried by another after `writer_lease_s`. SIGTERM or Ctrl-C finishes the current job, then
    exits; a database that is down is waited for."""
    from app.jobs.worker import Worker
    from app.resources import Resources

    use_profile(profile)
    configure_logging()
    settings = get_settings()
    if settings.runs_jobs_in_process:
        typer.secho(
            "warning: with these settings the API runs upload jobs itself and enqueues none for workers; set "
            "RAGLINE_DATABASE_URL (a shared PostgreSQL) or RAGLINE_INGEST_WORKERS_IN_PROCESS=false for the API "
            "and the workers",
            fg=typer.colors.YELLOW,
            err=True,
        )
    stop = threading.Event()

    def finish(signum: int, frame: object) -> None:
        typer.echo(f"worker: signal {signum}: finishing the current job, then exiting", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    worker = Worker(Resources(settings))
    try:
        stats = worker.run(stop, until_idle=until_idle)
    finally:
        worker.close()
    typer.echo(f"worker: {len(stats.jobs)} job(s) run, {stats.lost} put back in the queue")
