"""One JSON error shape for every failure, so a client (or a person with curl) always learns what to fix.

Body: ``{"error": {"type": ..., "message": ..., "details": ...}}`` — the shape OpenAI clients already parse, so
the OpenAI-compatible routes and the REST routes fail the same way. An unexpected exception becomes a 500 with a
generic message; the traceback goes to the server log, never to the client. Messages name the server's data and
models folders as ``<data_dir>`` and ``<models_dir>``: a client learns what to do, not where the server keeps things.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from app.llm import LLMTimeoutError, LLMUnavailableError
from app.resources import ModelMissingError
from app.settings import Settings
from retrieval.index import UnknownCollectionError
from retrieval.store import StoreUnavailableError

log = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """An error the client can act on: an HTTP status and a message that says what to change."""

    def __init__(self, status: int, message: str, *, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.details, self.headers = status, message, details, headers


def error_body(status: int, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": ERROR_TYPES.get(status, "error"), "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def stream_error_event(status: int, message: str) -> str:
    """The ``data:`` line of a failure in the middle of a stream, whose status line (200) has already gone out: the
    body of an error response, with the status it would have had as ``error.status``."""
    body = error_body(status, message)
    body["error"]["status"] = status
    return f"data: {json.dumps(body)}\n\n"


def _without_server_paths(message: str, settings: Settings) -> str:
    """``message`` with the absolute paths of the data and models folders replaced by their setting names."""
    folders = {"<models_dir>": settings.resolved_models_dir, "<data_dir>": settings.data_dir}
    forms = [(str(form), name) for name, folder in folders.items() for form in {folder, folder.resolve()}]
    for form, name in sorted(forms, key=lambda pair: len(pair[0]), reverse=True):
        if form.startswith("/") and form != "/":
            message = message.replace(form, name)
    return message


def error_response(status: int, message: str, details: Any = None, headers: dict[str, str] | None = None):
    return JSONResponse(error_body(status, message, details), status_code=status, headers=headers)


# Documented on every route that can fail with a client error, so the OpenAPI contract names the shape.
ERROR_SCHEMA: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["type", "message"],
                        "properties": {"type": {"type": "string"}, "message": {"type": "string"}, "details": {}},
                    }
                },
            }
        }
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": ERROR_TYPES.get(status, "error"), **ERROR_SCHEMA} for status in statuses}


@contextmanager
def pipeline_errors() -> Iterator[None]:
    """Map the pipeline's typed errors to client errors: unknown collection 404, bad input 422, LLM down 503."""
    try:
        yield
    except UnknownCollectionError:
        # the index's own message lists every stored collection, i.e. every tenant's: never pass it on
        raise ApiError(404, "the collection does not exist (any more); GET /v1/collections lists yours") from None
    except LookupError as exc:
        raise ApiError(404, str(exc).strip("'\"")) from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    except LLMUnavailableError as exc:
        raise llm_error(exc) from None
    except ModelMissingError as exc:
        raise ApiError(503, str(exc)) from None


def llm_error(exc: LLMUnavailableError) -> ApiError:
    """504 when the generation ran past ``llm_timeout_s``, 503 when the LLM could not be reached or failed. The
    client gets what to do; the LLM's address and the upstream's words go to the server log only."""
    log.warning("LLM request failed: %s", exc)
    return ApiError(504 if isinstance(exc, LLMTimeoutError) else 503, exc.public)


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            where = error.get("loc", ("body", "?"))[-1]
            return f"the request body is not valid JSON (error near character {where}); send a JSON object"
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves on this path: Starlette's own 405 names only the first route's."""
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, Route | APIRoute) and route.methods and route.path_regex.match(request.url.path):
            methods.update(route.methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    def public(message: str) -> str:
        return _without_server_paths(message, app.state.ragline.settings)

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, public(exc.message), exc.details, exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
            return error_response(405, f"{request.method} is not allowed here; use {headers['Allow']}", None, headers)
        return error_response(exc.status_code, str(exc.detail), headers=headers or None)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {k: v for k, v in error.items() if k in ("type", "loc", "msg")} for error in exc.errors()
        ]  # the raw input is left out: it can be large, and it is the client's own
        return error_response(422, _validation_message(errors), errors)

    async def dependency_down(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, LLMUnavailableError):
            failure = llm_error(exc)
            return error_response(failure.status, failure.message)
        return error_response(503, public(str(exc)))

    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        # the message names the database server and its user: for the operator's log, not for clients
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(503, "the database is unavailable; try again shortly (the server log says what is wrong)")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server log has the details")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(LLMUnavailableError, dependency_down)
    app.add_exception_handler(ModelMissingError, dependency_down)
    app.add_exception_handler(StoreUnavailableError, store_down)
    app.add_exception_handler(Exception, unexpected)


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub_dependant in dependant.dependencies:
        names |= _query_names(sub_dependant)
    return names


def reject_unknown_query_parameters(request: Request) -> None:
    """A misspelt query parameter (``?colection=docs``) must be an error, not a silent default collection."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise ApiError(422, f"unknown query parameter(s) {', '.join(unknown)}; this route takes: {takes}")
