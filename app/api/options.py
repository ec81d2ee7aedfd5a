"""Per-request pipeline options from API clients: query-time knobs only, checked before any engine sees them.

Options are settings fields applied to one request, so they are validated as settings, with the settings' bounds;
a value out of range is a 422 that names the option and its allowed range, never an overflow deep in a search
engine or a 400 from vLLM. Beyond that the API refuses two kinds of field a client must not choose freely:

- the fields that configure the server itself (storage, models, services, limits): ``SERVER_ONLY``;
- the fields that name a model, which the engines would open as a folder if it is not a known name: a request may
  only name a model this server offers (``offered_models``). A refusal lists what is offered and never says
  whether some other path exists, so options cannot probe the server's files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import annotated_types
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from app.api.errors import ApiError
from app.model_registry import MODELS, ModelRole
from app.provisioning import is_installed
from app.reranker.sample import TRAINED_RECORD
from app.settings import Settings

SERVER_ONLY = frozenset(
    {
        "data_dir",
        "models_dir",
        "chroma_url",
        "database_url",
        "embedder",
        "generator",
        "llm_base_url",
        "llm_replicas",
        "llm_api_key",
        "llm_timeout_s",
        "vllm_python",
        "vllm_kvcache_gib",
        "vllm_dtype",
        "vllm_max_model_len",
        "vllm_start_timeout_s",
        "api_host",
        "api_port",
        "ui_port",
        "api_keys_file",
        "max_upload_mb",
        "max_request_kb",
        "chunk_size",
        "chunk_overlap",
        "ingest_batch_documents",
        "max_file_mb",
        "max_question_chars",
    }
)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_BOUNDS: tuple[tuple[type[Any], str, str], ...] = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


def request_options(options: Mapping[str, Any] | None, settings: Settings) -> dict[str, Any] | None:
    """Options a client may set, checked against ``settings`` (the server's own).

    Raises ``ApiError`` 422 naming every server-only, unknown, unoffered or out-of-range option, with the allowed
    values or range in ``details``.
    """
    if not options:
        return None
    refused = sorted(set(options) & SERVER_ONLY)
    if refused:
        raise ApiError(422, f"option(s) {', '.join(refused)} configure the server and cannot be set per request")
    fields = type(settings).model_fields
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ApiError(422, f"unknown option(s): {', '.join(unknown)}")
    problems = [
        problem
        for name in ("compression_model", "reranker")
        if name in options and (problem := _unoffered_model(name, options[name], settings)) is not None
    ]
    unoffered = {problem["option"] for problem in problems}
    checked = {name: value for name, value in options.items() if name not in unoffered}
    try:
        settings.with_options(checked)
    except ValidationError as error:
        problems += [_problem(error_item, fields) for error_item in error.errors(include_input=False)]
    if problems:
        message = "; ".join(f"{problem['option']}: {problem['message']}" for problem in problems)
        raise ApiError(422, f"invalid option(s): {message}", details=problems)
    return dict(options)


def offered_models(option: str, settings: Settings) -> list[str]:
    """The model names a request may give for ``option`` (``compression_model`` or ``reranker``).

    A compression model is an installed registry generator. A reranker is the server's own, when it is configured
    by name rather than by folder, or one trained by `ragline reranker train` into the models dir.
    """
    models_dir = settings.resolved_models_dir
    if option == "compression_model":
        return sorted(
            name for name, spec in MODELS.items() if spec.role is ModelRole.GENERATOR and is_installed(spec, models_dir)
        )
    trained = models_dir.glob(f"*/{TRAINED_RECORD}") if models_dir.is_dir() else ()
    names = {record.parent.name for record in trained}
    if settings.reranker is not None and _PLAIN_NAME.fullmatch(settings.reranker):
        names.add(settings.reranker)
    return sorted(name for name in names if _PLAIN_NAME.fullmatch(name))


def _unoffered_model(option: str, value: Any, settings: Settings) -> dict[str, Any] | None:
    """The problem with a model-valued option, or ``None`` when it is unset, the server's value, or offered.

    Only exact names from ``offered_models`` pass: a path, even one that exists, is refused with the same message
    as any other unknown name."""
    if value is None and option == "reranker":
        return None
    if value == getattr(settings, option):
        return None
    offered = offered_models(option, settings)
    if value in offered:
        return None
    message = f"not a model this server offers (offered: {', '.join(offered) or 'none'})"
    if option == "reranker":
        message += "; null turns reranking off"
    return {"option": option, "message": message, "allowed": offered}


def _problem(error: Mapping[str, Any], fields: Mapping[str, FieldInfo]) -> dict[str, Any]:
    """One validation error as the client sees it: the option, what is wrong, and the allowed range."""
    option = str(error["loc"][0]) if error.get("loc") else "options"
    message = str(error["msg"]).removeprefix("Value error, ")
    problem: dict[str, Any] = {"option": option, "message": message}
    allowed = _allowed_range(fields[option]) if option in fields else None
    if allowed:
        problem["message"] = f"{message} (allowed: {allowed})"
        problem["allowed"] = allowed
    return problem


def _allowed_range(field: FieldInfo) -> str | None:
    """``≥ 1, ≤ 1000`` from a field's bounds, or ``None`` for a field without any."""
    bounds = [
        f"{symbol} {getattr(constraint, attribute)}"
        for constraint in field.metadata
        for kind, attribute, symbol in _BOUNDS
        if isinstance(constraint, kind)
    ]
    return ", ".join(bounds) or None
