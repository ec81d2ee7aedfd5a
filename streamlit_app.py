"""ragline UI: chat with streamed, cited answers and a context inspector; Documents and Evaluation pages.

A client of the same ``Pipeline`` the CLI and the API use, so what the UI shows is what the service does. The
sidebar's pipeline switches become per-request ``options`` of ``Pipeline.stream``; they appear only for settings
this build has (see ``app.ui.switches``). Run it with ``ragline ui``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import streamlit as st

from app.api.errors import ApiError
from app.api.options import request_options
from app.api.tenancy import Tenant, require_collection
from app.llm import LLMUnavailableError
from app.profiles import PROFILE_NAMES, PROFILES
from app.query.pipeline import Answer, Pipeline
from app.resources import ModelMissingError
from app.settings import Settings
from app.ui import filters as ui_filters
from app.ui import views
from app.ui.redact import for_tenant
from app.ui.state import load_memory, load_pipeline, memory_available, memory_session
from app.ui.switches import Switch, available_switches, options_from
from app.ui.tenancy import current_tenant


@st.cache_data(ttl=60, show_spinner=False)
def collection_facets(data_dir: str, collection: str) -> dict[str, list[Any]]:
    """Filter facets of a collection; cached for a minute, since scanning chunk metadata grows with the corpus."""
    index = load_pipeline().resources.index
    return ui_filters.facets(chunk.metadata for chunk in index.manifest.chunks(collection))


def switch_widget(switch: Switch, current: dict[str, Any], profile: str = "") -> Any:
    """One switch; its key carries the profile so that choosing another profile resets it to that profile's value."""
    key = f"switch-{profile}-{switch.name}" if profile else f"switch-{switch.name}"
    if switch.kind == "choice":
        return st.selectbox(switch.label, switch.choices, index=switch.choices.index(switch.default), key=key,
                            help=switch.help)  # fmt: skip
    if switch.kind == "slider":
        disabled = current.get("fusion") == "rrf"
        return st.slider(switch.label, 0.0, 1.0, switch.default, 0.05, key=key, help=switch.help, disabled=disabled)
    return st.toggle(switch.label, value=bool(switch.default), key=key, help=switch.help)


def profile_switch(settings: Settings) -> tuple[str, Settings | None]:
    """The profile selector: the chosen profile and the settings it gives this request (``None``, with the error
    shown, when it cannot run here, such as a profile that reranks on a server without a reranker)."""
    profile = st.selectbox(
        "Profile", PROFILE_NAMES, index=PROFILE_NAMES.index(settings.profile), key="switch-profile",
        help="; ".join(f"{p.name}: {p.purpose}" for p in PROFILES.values()),
    )  # fmt: skip
    if profile == settings.profile:
        return profile, settings
    try:
        return profile, settings.with_options({"profile": profile})
    except ValueError as exc:
        st.error(f"profile {profile}: {exc}")
        return profile, None


def sidebar(
    pipeline: Pipeline, tenant: Tenant, collections: list[str]
) -> tuple[str, dict[str, Any] | None, dict[str, Any]] | None:
    """Collection (the tenant's own, by its names), filter and pipeline switches; returns the stored collection
    name, the filter and the checked options, or ``None`` when the filter or an option is invalid."""
    settings = pipeline.resources.settings
    with st.sidebar:
        default = collections.index("sample") if "sample" in collections else 0
        logical = st.selectbox("Collection", collections, index=default, key="collection")
        collection = require_collection(pipeline.resources.index, tenant, logical)
        chosen: dict[str, list[Any]] = {}
        facets = collection_facets(str(settings.data_dir), collection)
        with st.expander("Filters", expanded=False):
            for field, values in facets.items():
                picked = st.multiselect(field, values, key=f"facet-{collection}-{field}")
                if picked:
                    chosen[field] = picked
            example = '{"effective_date": {"$gte": "2024-01-01"}}'
            raw = st.text_input("Filter (JSON)", "", key="filter-json", placeholder=example)
        try:
            where = ui_filters.build_filter(chosen, raw)
        except ValueError as exc:
            st.error(str(exc))
            where = None
            invalid = True
        else:
            invalid = False
        st.subheader("Pipeline")
        profile, effective = profile_switch(settings)
        if effective is None:
            invalid, effective = True, settings
        values: dict[str, Any] = {}
        for switch in available_switches(effective):
            values[switch.name] = switch_widget(switch, values, "" if profile == settings.profile else profile)
        options = options_from(values, effective)
        if profile != settings.profile:
            options = {"profile": profile, **options}
        try:  # the API's own check: the UI can pass nothing a request to the API could not
            options = request_options(options, settings) or {}
        except ApiError as exc:
            st.error(exc.message)
            invalid = True
        if options:
            st.caption("This request: " + ", ".join(f"{k}={v}" for k, v in options.items()))
        where_served = "" if tenant.name else f" at {settings.llm_base_url}"  # a tenant learns no server address
        st.caption(f"Generator: {pipeline.resources.generator.model}{where_served}")
    return None if invalid else (collection, where, options)


def answer_stream(
    pipeline: Pipeline,
    tenant: Tenant,
    question: str,
    collection: str,
    where: dict[str, Any] | None,
    options: dict[str, Any],
) -> Iterator[str | Answer]:
    """Through the conversation-memory service when memory is on for this request, else the pipeline directly."""
    settings = pipeline.resources.settings
    if memory_available() and options.get("memory", getattr(settings, "memory", False)):
        service = load_memory()
        session_id = memory_session(service, collection, tenant.name)
        return service.stream(session_id, question, tenant=tenant.name, filters=where, options=options or None)
    return pipeline.stream(question, collection, where, options=options or None)


def ask(
    pipeline: Pipeline,
    tenant: Tenant,
    question: str,
    collection: str,
    where: dict[str, Any] | None,
    options: dict[str, Any],
) -> Answer | None:
    """Stream the answer into the chat; errors the user can act on are shown, not raised."""
    placeholder = st.empty()
    text = ""
    answer: Answer | None = None
    try:
        with st.spinner("Retrieving evidence…"):
            parts = answer_stream(pipeline, tenant, question, collection, where, options)
            first = next(parts)  # retrieval runs here; the spinner covers it
        for part in itertools.chain([first], parts):
            if isinstance(part, Answer):
                answer = part
            else:
                text += part
                placeholder.markdown(text + "▌")
    except LLMUnavailableError as exc:  # a tenant learns what failed, not where the server's LLM is
        placeholder.error(exc.public if tenant.name else str(exc))
        return None
    except (ModelMissingError, RuntimeError, LookupError, ValueError) as exc:
        # The typed errors of the services: LLM unreachable, summaries not generated and session busy are
        # RuntimeErrors; unknown collection or session LookupErrors; bad question, filter or option ValueErrors.
        placeholder.error(for_tenant(str(exc), tenant))
        return None
    if answer is None:
        placeholder.error("the pipeline ended without an answer")
        return None
    with placeholder.container():  # the streamed text, now under the grounding warning when there is one
        views.render_answer_text(answer)
    return answer


def chat_page() -> None:
    tenant = current_tenant()
    st.title("ragline")
    try:
        pipeline = load_pipeline()
        collections = tenant.visible(pipeline.resources.index.collections())
    except (ModelMissingError, ValueError) as exc:  # a model not provisioned, a reranker folder that is not one
        st.error(for_tenant(str(exc), tenant))
        st.stop()
    if not collections:
        st.warning("No collection yet: upload documents on the Documents page or run `ragline ingest PATH`.")
        st.stop()
    chosen = sidebar(pipeline, tenant, collections)
    messages: list[dict[str, Any]] = st.session_state.setdefault("messages", [])
    index = pipeline.resources.index
    for number, message in enumerate(messages):
        with st.chat_message(message["role"]):
            if message.get("answer") is None:
                st.markdown(message["content"])
            else:
                views.render_answer_text(message["answer"])
                views.render_answer(message["answer"], index, key=f"answer-{number}")
    question = st.chat_input(views.QUESTION_PLACEHOLDER)
    if not question or chosen is None:
        return
    collection, where, options = chosen
    messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        answer = ask(pipeline, tenant, question, collection, where, options)
        if answer is None:
            messages.pop()
            return
        views.render_answer(answer, index, key=f"answer-{len(messages)}")
    messages.append({"role": "assistant", "content": answer.text, "answer": answer})


def main() -> None:
    st.set_page_config(page_title="ragline", page_icon="📚", layout="wide")
    navigation = st.navigation(
        [
            st.Page(chat_page, title="Chat", icon=":material/chat:", default=True),
            st.Page("pages/1_Documents.py", title="Documents", icon=":material/description:", url_path="documents"),
            st.Page("pages/2_Evaluation.py", title="Evaluation", icon=":material/analytics:", url_path="evaluation"),
        ]
    )
    navigation.run()


main()
