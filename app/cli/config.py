"""``ragline config show``: every effective setting and where its value came from."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import make_url

from app.cli.common import fail
from app.settings import Settings
from app.settings_docs import render_settings_markdown, write_settings_markdown

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print every effective setting and where its value came from."""
    try:
        settings = Settings()
    except Exception as exc:
        raise fail(f"invalid configuration: {exc}") from None
    origins = settings.origins()
    values = settings.model_dump(mode="json")
    if values["database_url"]:  # the URL may carry the database password: show where, not how to get in
        values["database_url"] = make_url(values["database_url"]).render_as_string(hide_password=True)
    if as_json:
        typer.echo(json.dumps({k: {"value": values[k], "from": origins[k]} for k in values}, indent=2))
        return
    for key, value in values.items():
        typer.echo(f"{key:22} = {json.dumps(value):40} # {origins[key]}")


@app.command("docs")
def config_docs(
    write: Annotated[bool, typer.Option("--write", help="Write docs/configuration.md instead of printing.")] = False,
) -> None:
    """Print the settings reference as Markdown (env var, type, default, description), or write it to docs/."""
    if not write:
        typer.echo(render_settings_markdown(), nl=False)
        return
    typer.echo(f"wrote {write_settings_markdown()}")
