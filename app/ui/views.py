"""Streamlit views of an answer: its citations (passage and source) and the context inspector.

The data comes from the pure functions of ``app.ui.inspector``; this module only lays it out. Every part the
trace lacks is shown as "not recorded", so an older trace or a configuration without a stage still renders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import streamlit as st

from app.query.pipeline import Answer
from app.ui import inspector
from retrieval.index import Index

NOT_RECORDED = inspector.NOT_RECORDED
QUESTION_PLACEHOLDER = "Ask a question about your documents"


def _not_recorded(what: str) -> None:
    st.caption(f"{what}: {NOT_RECORDED}")


def source_text(index: Index, collection: str, doc_id: str) -> str | None:
    """A document's text as indexed (its chunks in order), or None when it is no longer in the collection."""
    chunks = index.manifest.chunks(collection, doc_id)
    return "\n\n".join(chunk.text for chunk in chunks) if chunks else None


def render_citations(answer: Answer, index: Index | None, key: str) -> None:
    """One expander per citation: the cited passage, and its source document with where it came from."""
    if not answer.citations:
        st.caption("No sources cited.")
        return
    st.markdown("**Sources**")
    collection = answer.trace.get("collection")
    for citation in answer.citations:
        title = citation.get("title") or citation.get("doc_id")
        with st.expander(f"[{citation['id']}] {title} — {citation.get('source')}"):
            origin = "cited by the model" if citation.get("origin") == "model" else "attributed by the checker"
            st.caption(f"doc `{citation.get('doc_id')}` · chunk `{citation.get('chunk_id')}` · {origin}")
            passage, source = st.tabs(["Cited passage", "Source document"])
            with passage:
                st.text(citation.get("text", ""))
            with source:
                text = source_text(index, collection, citation["doc_id"]) if index is not None and collection else None
                if text is None:
                    st.caption("The source document is no longer in the collection.")
                else:
                    st.text(text)


def _render_budget(trace: Mapping[str, Any]) -> None:
    st.markdown("**Token budget**")
    value = inspector.budget(trace)
    if value is None:
        _not_recorded("Token budget")
        return
    st.altair_chart(inspector.budget_chart(value), width="stretch")
    used = value.used if value.used is not None else sum(tokens for _, _, tokens in value.parts)
    total = f"{value.total:,}" if value.total is not None else NOT_RECORDED
    reserve = f"{value.reserve:,}" if value.reserve is not None else NOT_RECORDED
    parts = " · ".join(f"{key}={tokens:,}" for key, _, tokens in value.parts) or NOT_RECORDED
    st.caption(f"B={total} prompt tokens, used {used:,}: {parts}; answer reserve {reserve}")


def _render_candidates(trace: Mapping[str, Any], key: str) -> None:
    st.markdown("**Candidates and scores**")
    rows = inspector.candidate_rows(trace)
    if not rows:
        _not_recorded("Candidates")
        return
    st.dataframe(rows, hide_index=True, width="stretch", key=f"{key}-candidates")
    scored = inspector.scored_stages(trace)
    tabs = st.tabs([f"{inspector.score_label(s['stage'])} ({s['stage']})" for s in scored])
    for tab, entry in zip(tabs, scored, strict=True):
        with tab:
            st.dataframe(inspector.stage_hits(entry), hide_index=True, width="stretch", key=f"{key}-{entry['stage']}")
    if inspector.find_stage(trace, "rerank", "reranker") is None:
        _not_recorded("Reranked scores")


def _render_order(trace: Mapping[str, Any]) -> None:
    st.markdown("**Final evidence order**")
    order = inspector.final_order(trace)
    if order is None:
        _not_recorded("Evidence order")
        return
    strategy = f" ({order.strategy})" if order.strategy else ""
    lines = "\n".join(f"{n}. `{chunk_id}`" for n, chunk_id in enumerate(order.chunk_ids, start=1))
    st.markdown(f"From stage `{order.source}`{strategy}:\n\n{lines}" if lines else f"Stage `{order.source}`: empty")
    if order.note:
        st.caption(order.note)


def _render_compression(trace: Mapping[str, Any], key: str) -> None:
    st.markdown("**Compression**")
    value = inspector.compression(trace)
    if value is None:
        _not_recorded("Compression")
        return
    if value.applied is False:
        evidence, allowance = value.details.get("evidence_tokens"), value.details.get("allowance")
        st.markdown(
            f"{value.method or 'auto'}: not needed, the evidence ({evidence} tokens) fits its allowance ({allowance})"
        )
        return
    before = f"{value.before:,}" if value.before is not None else NOT_RECORDED
    after = f"{value.after:,}" if value.after is not None else NOT_RECORDED
    if value.kept is not None:
        ratio = f"kept {value.kept:.0%} ({1 / value.kept:.1f}× smaller)" if value.kept else "kept 0%"
    elif value.recorded_ratio is not None:
        ratio = f"ratio {value.recorded_ratio:g} (as recorded)"
    else:
        ratio = f"ratio {NOT_RECORDED}"
    method = f"{value.method}: " if value.method else ""
    st.markdown(f"{method}{before} → {after} tokens, {ratio}")
    if value.sources:
        st.dataframe(value.sources, hide_index=True, width="stretch", key=f"{key}-compression")
    st.json(value.details, expanded=False)


def _render_latency(trace: Mapping[str, Any]) -> None:
    st.markdown("**Latency waterfall**")
    rows = inspector.waterfall(trace)
    if not rows:
        _not_recorded("Stage timings")
        return
    st.altair_chart(inspector.waterfall_chart(rows), width="stretch")
    total = rows[-1]["end_ms"]
    slowest = max(rows, key=lambda r: r["ms"])
    st.caption(f"total {total:,.0f} ms; slowest stage {slowest['stage']} ({slowest['ms']:,.0f} ms)")


def render_inspector(trace: Mapping[str, Any], key: str) -> None:
    """The context inspector of one answer: budget, candidates, order, compression, latency, raw trace."""
    with st.expander("Context inspector"):
        _render_budget(trace)
        _render_candidates(trace, key)
        _render_order(trace)
        _render_compression(trace, key)
        _render_latency(trace)
        st.markdown("**Stages**")
        st.dataframe(inspector.stage_summary(trace), hide_index=True, width="stretch", key=f"{key}-stages")
        st.download_button(
            "Download trace (JSON)",
            json.dumps(dict(trace), indent=2, ensure_ascii=False, default=str),
            file_name="trace.json",
            mime="application/json",
            key=f"{key}-download",
        )


def render_answer_text(answer: Answer) -> None:
    """The answer's text, under the grounding warning when no cited source supports it: the reader meets the
    warning before the claims, as the CLI and API put it next to theirs."""
    if answer.warning:
        st.warning(answer.warning, icon=":material/warning:")
    st.markdown(answer.text)


def render_answer(answer: Answer, index: Index | None, key: str) -> None:
    """The citations, then the inspector (below ``render_answer_text``)."""
    render_citations(answer, index, key)
    render_inspector(answer.trace, key)
