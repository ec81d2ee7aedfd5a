"""Process-wide UI resources: the models and the index load once per settings, shared by every page and session.

``st.cache_resource`` is keyed by the settings' JSON, so a changed configuration (another data dir, another LLM
URL) gets its own resources, and an unchanged one never reloads a model on a rerun or a page switch.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from typing import Any

import streamlit as st

from app.query.pipeline import Pipeline
from app.resources import Resources
from app.settings import Settings, get_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@st.cache_resource(show_spinner="Loading the models and the index…")
def _pipeline_for(settings_json: str) -> Pipeline:
    resources = Resources(Settings.model_validate_json(settings_json))
    resources.index  # noqa: B018 - load the embedder and open the index now, once, not on the first question
    return Pipeline(resources)


def load_pipeline() -> Pipeline:
    """The shared pipeline (and its ``resources``) for the current settings."""
    return _pipeline_for(get_settings().model_dump_json())


def load_resources() -> Resources:
    return load_pipeline().resources


@st.cache_resource(show_spinner=False)
def _memory_for(settings_json: str) -> Any:
    from app.memory_wiring import build_memory_service

    return build_memory_service(_pipeline_for(settings_json).resources, _pipeline_for(settings_json))


def memory_available() -> bool:
    """Whether this build has conversation memory (the setting and the service that implements it)."""
    return "memory" in Settings.model_fields and importlib.util.find_spec("app.memory_wiring") is not None


def load_memory() -> Any:
    """The shared conversation-memory service (sessions, summaries, recall) for the current settings."""
    return _memory_for(get_settings().model_dump_json())


def memory_session(service: Any, collection: str, tenant: str | None = None) -> str:
    """This browser session's memory session for ``collection`` (a stored name), owned by ``tenant``: one per
    collection, created on first use."""
    sessions: dict[str, str] = st.session_state.setdefault("memory-sessions", {})
    if collection not in sessions:
        session_id = f"ui-{uuid.uuid4().hex[:16]}"
        sessions[collection] = service.create_session(session_id, collection=collection, tenant=tenant).id
    return sessions[collection]
