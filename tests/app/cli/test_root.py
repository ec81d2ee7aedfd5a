"""The root app: every group is reachable, and docs/cli.md names every command (a new command without a line in
the CLI reference fails here, so the reference cannot drift from the code)."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.main import get_command

from app.cli.root import app

CLI_DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def _command_paths(group: typer.Typer) -> set[str]:
    root = get_command(group)
    paths: set[str] = set()

    def walk(command: object, prefix: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if getattr(sub, "commands", None):
                walk(sub, f"{prefix}{name} ")
            else:
                paths.add(f"{prefix}{name}")

    walk(root, "")
    return paths


def test_every_group_and_top_level_command_is_reachable() -> None:
    paths = _command_paths(app)
    for expected in (
        "ingest",
        "ask",
        "chat",
        "serve",
        "ui",
        "demo",
        "llm serve",
        "models install",
        "config show",
        "eval retrieval",
        "eval qa",
        "eval position",
        "eval hyde",
        "bench retrieval",
        "reranker train",
    ):
        assert expected in paths, expected


def test_docs_cli_names_every_command() -> None:
    documented = set(re.findall(r"^#+ `ragline ([a-z0-9-]+(?: [a-z0-9-]+)?)", CLI_DOC.read_text(), flags=re.M))
    missing = _command_paths(app) - documented
    assert not missing, f"docs/cli.md has no section for: {', '.join(sorted(missing))}"
