"""ragline chat UI: streamed answers, their cited sources, and the stage-by-stage trace behind each answer.

A client of the same ``Pipeline`` the CLI and the API use, so what the UI shows is what the service does.
"""

from __future__ import annotations

import os

import streamlit as st

from app.llm import LLMUnavailableError
from app.pipeline import Answer, Pipeline
from app.resources import ModelMissingError, Resources
from app.settings import get_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

st.set_page_config(page_title="ragline", page_icon="📚", layout="wide")


@st.cache_resource
def load_pipeline() -> Pipeline:
    return Pipeline(Resources(get_settings()))


def render_sources(answer: Answer) -> None:
    if not answer.citations:
        st.caption("No sources cited.")
    for citation in answer.citations:
        with st.expander(f"[{citation['id']}] {citation['title'] or citation['doc_id']} — {citation['source']}"):
            st.text(citation["text"])
    with st.expander("Context inspector (trace)"):
        for stage in answer.trace["stages"]:
            st.markdown(f"**{stage['stage']}** — {stage['items_in']} in → {stage['items_out']} out, {stage['ms']} ms")
            hits = stage.get("hits")
            if hits:
                st.dataframe(hits, hide_index=True, width="stretch")


def main() -> None:
    st.title("ragline")
    try:
        pipeline = load_pipeline()
        collections = pipeline.resources.index.collections()
    except ModelMissingError as exc:
        st.error(str(exc))
        st.stop()
    with st.sidebar:
        st.header("Settings")
        if not collections:
            st.warning("No collection yet: run `ragline ingest PATH --collection NAME`.")
            st.stop()
        collection = st.selectbox(
            "Collection", collections, index=collections.index("sample") if "sample" in collections else 0
        )
        region = st.text_input("Filter: region (optional)", "")
        st.caption(f"Generator: {pipeline.resources.generator.model} at {pipeline.resources.settings.llm_base_url}")
    filters = {"region": region.strip()} if region.strip() else None

    history = st.session_state.setdefault("history", [])
    for turn in history:
        with st.chat_message(turn["role"]):
            st.markdown(turn["content"])
            if turn.get("answer"):
                render_sources(turn["answer"])

    question = st.chat_input("Ask a question about your documents")
    if not question:
        return
    history.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        placeholder = st.empty()
        text = ""
        answer: Answer | None = None
        try:
            for part in pipeline.stream(question, collection, filters):
                if isinstance(part, Answer):
                    answer = part
                else:
                    text += part
                    placeholder.markdown(text + "▌")
        except (LLMUnavailableError, LookupError, ValueError) as exc:
            placeholder.error(str(exc))
            return
        assert answer is not None
        placeholder.markdown(answer.text)
        render_sources(answer)
    history.append({"role": "assistant", "content": answer.text, "answer": answer})


main()
