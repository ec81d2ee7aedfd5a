"""``ragline eval position | abstention | compression | hyde | prefix-cache``: the context experiments."""

from __future__ import annotations

import typer

from app.context_commands import register

app = typer.Typer()
register(app)
