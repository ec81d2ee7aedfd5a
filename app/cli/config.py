"""``ragline config show``: every effective setting and where its value came from."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.cli.common import fail
from app.settings import Settings

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
    if as_json:
        typer.echo(json.dumps({k: {"value": values[k], "from": origins[k]} for k in values}, indent=2))
        return
    for key, value in values.items():
        typer.echo(f"{key:22} = {json.dumps(value):40} # {origins[key]}")
