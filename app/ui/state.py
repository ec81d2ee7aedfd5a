"""Process-wide UI resources: the models and the index load once per settings, shared by every page and session.

``st.cache_resource`` is keyed by the settings' JSON, so a changed configuration (another data dir, another LLM
URL) gets its own resources, and an unchanged one never reloads a model on a rerun or a page switch.
"""

from __future__ import annotations

import os

import streamlit as st

from app.pipeline import Pipeline
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
