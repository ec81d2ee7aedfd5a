"""``ragline chat --session NAME``: an interactive, streamed conversation with tiered memory.

The session is created on first use and resumed afterwards, from any process: its turns, summary and memory
items live in ``<data_dir>/memory.sqlite3`` and Chroma, so quitting and coming back loses nothing.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.settings import get_settings

HELP = "Commands: /summary (session summary), /export (session as JSON), /exit (or Ctrl-D)."


def chat_command(
    session: Annotated[str, typer.Option(help="Session name: created on first use, resumed afterwards.")],
    user: Annotated[str, typer.Option(help="Whose persistent memory the session reads and writes.")] = "default",
    collection: Annotated[str, typer.Option(help="Collection a new session searches.")] = "sample",
) -> None:
    """Chat with your documents; follow-ups are understood from the conversation, which is remembered."""
    from app.cli import _configure_logging, _fail
    from app.llm import LLMUnavailableError
    from app.memory_wiring import MemoryDisabledError, build_memory_service
    from app.resources import ModelMissingError, Resources
    from memory.errors import SessionBusyError

    _configure_logging()
    try:
        service = build_memory_service(Resources(get_settings()))
        record = service.open_session(session, user=user, collection=collection)
    except (ModelMissingError, MemoryDisabledError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    state = "resumed" if record.turns else "new"
    typer.echo(f"session {record.id} ({state}, {record.turns} turns, collection {record.collection}). {HELP}")
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not question:
            continue
        if question in ("/exit", "/quit"):
            return
        if question == "/summary":
            typer.echo(service.session(record.id).summary or "(no summary yet)")
            continue
        if question == "/export":
            typer.echo(json.dumps(service.export(record.id), indent=2, ensure_ascii=False))
            continue
        try:
            answer = None
            typer.echo("ragline> ", nl=False)
            for part in service.stream(record.id, question):
                if isinstance(part, str):
                    typer.echo(part, nl=False)
                else:
                    answer = part
            typer.echo()
        except (LLMUnavailableError, SessionBusyError, LookupError, ValueError) as exc:
            typer.secho(f"\nerror: {exc}", fg=typer.colors.RED, err=True)
            continue
        if answer is not None:
            for citation in answer.citations:
                typer.echo(f"  [{citation['id']}] {citation['source']} — {citation['title']}")
