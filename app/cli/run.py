"""``ragline ingest | ask | chat``: put documents in, get cited answers out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.common import ProfileOption, check_collection_name, configure_logging, fail, use_profile
from app.settings import get_settings
from ingest.samples import SAMPLE_COLLECTION

if TYPE_CHECKING:
    from app.query.pipeline import Answer, Pipeline
    from memory.service import MemoryService

app = typer.Typer()

CHAT_HELP = "Commands: /summary (session summary), /export (session as JSON), /exit (or Ctrl-D)."


@app.command("ingest")
def ingest_command(
    path: Annotated[Path, typer.Argument(help="A file or folder to ingest.")],
    collection: Annotated[str, typer.Option(help="Collection to write into.")] = SAMPLE_COLLECTION,
    chunker: Annotated[
        str | None,
        typer.Option(
            help="fixed | semantic | semantic-cluster | raptor (needs vLLM) | sentence-window; "
            "default: the chunker setting."
        ),
    ] = None,
    prune: Annotated[bool, typer.Option(help="Delete documents whose files are gone.")] = False,
    meta: Annotated[list[str] | None, typer.Option(help="Extra metadata key=value for every document.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    profile: ProfileOption = None,
) -> None:
    """Ingest files incrementally: unchanged files are skipped, changed ones replaced."""
    from app.ingestion import parse_metadata, run_ingest
    from app.llm import LLMUnavailableError
    from app.resources import ModelMissingError

    configure_logging()
    use_profile(profile)
    if not path.exists():
        raise fail(f"{path} does not exist")
    check_collection_name(collection)
    try:
        extra = parse_metadata(meta or [])
        settings = get_settings()
        chosen = chunker or settings.chunker
        summary = run_ingest(settings, path, collection, prune=prune, meta=extra, chunker=chosen)
    except (ModelMissingError, ValueError, LLMUnavailableError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
        return
    typer.echo(
        f"{collection}: {len(summary.added)} added, {len(summary.updated)} updated, {len(summary.skipped)} "
        f"skipped, {len(summary.deleted)} deleted, {len(summary.failed)} failed; "
        f"{summary.chunks_written} chunks in {summary.seconds:.1f} s"
    )
    for doc_id, reason in summary.failed.items():
        typer.echo(f"  failed {doc_id}: {reason}")


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Annotated[str, typer.Option(help="Collection to search.")] = SAMPLE_COLLECTION,
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="Metadata filter key=value.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print answer, citations and trace as JSON.")] = False,
    stream: Annotated[bool, typer.Option(help="Print the answer as it is generated.")] = True,
    profile: ProfileOption = None,
) -> None:
    """Answer a question from a collection, with [n] citations and their sources."""
    from app.llm import LLMUnavailableError
    from app.query.pipeline import Pipeline
    from app.resources import ModelMissingError, Resources
    from retrieval.filters import parse_cli

    configure_logging()
    use_profile(profile)
    try:
        filters = parse_cli(filter_ or [])
        pipeline = Pipeline(Resources(get_settings()))
        if as_json:
            typer.echo(json.dumps(pipeline.run(question, collection, filters).as_dict(), indent=2, ensure_ascii=False))
            return
        answer = _print_answer(pipeline, question, collection, filters, stream)
    except (LLMUnavailableError, ModelMissingError, LookupError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo("\nSources:" if answer.citations else "\n(no sources cited)")
    _print_sources(answer.citations)
    _print_warning(answer)


def _print_warning(answer: Answer) -> None:
    """An ungrounded answer's warning, on stderr and in colour so it is not read as part of the answer."""
    if answer.warning:
        typer.secho(f"\nWarning: {answer.warning}", fg=typer.colors.YELLOW, err=True)


def _print_answer(
    pipeline: Pipeline, question: str, collection: str, filters: Mapping[str, Any] | None, stream: bool
) -> Answer:
    """Print the answer, token by token when streaming, and return it for its citations."""
    from app.query.grounding import withdrawn
    from app.query.pipeline import Answer

    if not stream:
        answer = pipeline.run(question, collection, filters)
        typer.echo(answer.text)
        return answer
    final: Answer | None = None
    for part in pipeline.stream(question, collection, filters):
        if isinstance(part, Answer):
            final = part
        else:
            typer.echo(part, nl=False)
    typer.echo()
    if final is None:
        raise ValueError("the pipeline's stream ended without an answer")
    if withdrawn(final.trace):
        typer.secho("(withdrawn: no sentence above is supported by a source)", fg=typer.colors.YELLOW, err=True)
        typer.echo(final.text)
    return final


def _print_sources(citations: list[dict[str, object]]) -> None:
    for citation in citations:
        typer.echo(f"  [{citation['id']}] {citation['source']} — {citation['title']}")


@app.command("chat")
def chat_command(
    session: Annotated[str, typer.Option(help="Session name: created on first use, resumed afterwards.")],
    user: Annotated[str, typer.Option(help="Whose persistent memory the session reads and writes.")] = "default",
    collection: Annotated[str, typer.Option(help="Collection a new session searches.")] = SAMPLE_COLLECTION,
    profile: ProfileOption = None,
) -> None:
    """Chat with your documents; follow-ups are understood from the conversation, which is remembered.

    The session is created on first use and resumed afterwards, from any process: its turns, summary and memory
    items live in the memory store and Chroma, so quitting and coming back loses nothing.
    """
    from app.memory_wiring import MemoryDisabledError, build_memory_service
    from app.resources import ModelMissingError, Resources

    configure_logging()
    use_profile(profile)
    try:
        service = build_memory_service(Resources(get_settings()))
        record = service.open_session(session, user=user, collection=collection)
    except (ModelMissingError, MemoryDisabledError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    state = "resumed" if record.turns else "new"
    typer.echo(f"session {record.id} ({state}, {record.turns} turns, collection {record.collection}). {CHAT_HELP}")
    while (question := _read_question()) is not None:
        if question == "/summary":
            typer.echo(service.session(record.id).summary or "(no summary yet)")
        elif question == "/export":
            typer.echo(json.dumps(service.export(record.id), indent=2, ensure_ascii=False))
        elif question:
            _chat_turn(service, record.id, question)


def _read_question() -> str | None:
    """The next line typed at the prompt; None on /exit, /quit, Ctrl-D or Ctrl-C."""
    try:
        question = input("\nyou> ").strip()
    except (EOFError, KeyboardInterrupt):
        typer.echo()
        return None
    return None if question in ("/exit", "/quit") else question


def _chat_turn(service: MemoryService, session_id: str, question: str) -> None:
    """Stream one answer; an error is printed and the conversation goes on."""
    from app.llm import LLMUnavailableError
    from memory.errors import SessionBusyError

    try:
        answer = None
        typer.echo("ragline> ", nl=False)
        for part in service.stream(session_id, question):
            if isinstance(part, str):
                typer.echo(part, nl=False)
            else:
                answer = part
        typer.echo()
    except (LLMUnavailableError, SessionBusyError, LookupError, ValueError) as exc:
        typer.secho(f"\nerror: {exc}", fg=typer.colors.RED, err=True)
        return
    if answer is not None:
        _print_sources(answer.citations)
        _print_warning(answer)
