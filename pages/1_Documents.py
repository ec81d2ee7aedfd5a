"""Documents page: upload files into a collection (with progress), list what a collection holds, delete documents.

Uploads go through the same incremental ingestion job as ``ragline ingest``; the list comes from the manifest,
the source of truth of the write path.
"""

from __future__ import annotations

import streamlit as st

from app.api.tenancy import Tenant, require_collection
from app.chunking import CHUNKERS
from app.llm import LLMUnavailableError
from app.resources import ModelMissingError
from app.ui.documents import (
    UPLOAD_TYPES,
    UploadError,
    check_collection_name,
    delete_documents,
    document_rows,
    ingest_files,
    store_uploads,
    upload_dir,
    upload_limit_mb,
)
from app.ui.redact import for_tenant
from app.ui.state import load_resources
from app.ui.tenancy import current_tenant

NEW_COLLECTION = "➕ new collection…"


def flash() -> None:
    """Show the outcome of the action that triggered the last rerun."""
    for kind, message in st.session_state.pop("documents-flash", []):
        getattr(st, kind)(message)


def upload_section(tenant: Tenant, collection: str) -> None:
    resources = load_resources()
    limit = upload_limit_mb(resources)
    st.subheader("Upload")
    files = st.file_uploader(
        f"Files ({', '.join(UPLOAD_TYPES)}; up to {limit:g} MB each)",
        type=list(UPLOAD_TYPES),
        accept_multiple_files=True,
        key="uploads",
    )
    chunker = st.selectbox(
        "Chunker",
        CHUNKERS,
        index=CHUNKERS.index(resources.settings.chunker),
        help="raptor needs the vLLM server running.",
    )
    if not st.button("Ingest", type="primary", disabled=not files):
        return
    progress = st.progress(0.0, text="storing the uploaded files…")
    try:
        stored = tenant.collection(check_collection_name(collection))
        folder = upload_dir(resources, stored)
        paths = store_uploads(folder, [(f.name, f.getvalue()) for f in files or []], limit)

        def report(done: int, total: int, doc_id: str) -> None:
            progress.progress(done / total, text=f"{done}/{total} loaded: {doc_id}")

        summary = ingest_files(resources, paths, folder, stored, chunker=chunker, progress=report)
    except (UploadError, ModelMissingError, LLMUnavailableError, ValueError) as exc:
        progress.empty()
        st.error(for_tenant(str(exc), tenant))
        return
    progress.progress(1.0, text="indexed")
    messages = [
        (
            "success",
            f"{collection}: {len(summary.added)} added, {len(summary.updated)} updated, {len(summary.skipped)} "
            f"unchanged, {len(summary.failed)} failed; {summary.chunks_written} chunks in {summary.seconds:.1f} s",
        )
    ]
    messages += [
        ("warning", f"{doc_id} failed: {for_tenant(reason, tenant)}") for doc_id, reason in summary.failed.items()
    ]
    st.session_state["documents-flash"] = messages
    st.session_state["collection-choice"] = collection
    st.cache_data.clear()  # filter facets of the chat page
    st.rerun()


def list_section(tenant: Tenant, collection: str) -> None:
    resources = load_resources()
    stored = require_collection(resources.index, tenant, collection)
    rows = document_rows(resources.index, stored)
    chunks = sum(row["chunks"] for row in rows)
    st.subheader("Documents")
    st.markdown(f"**{len(rows)} documents, {chunks} chunks** in `{collection}`")
    if not rows:
        return
    st.dataframe(rows, hide_index=True, width="stretch")
    doomed = st.multiselect("Delete documents", [row["doc_id"] for row in rows], key=f"delete-{collection}")
    if st.button("Delete selected", disabled=not doomed):
        try:
            deleted = delete_documents(resources, stored, doomed)
        except LookupError as exc:
            st.error(str(exc))
            return
        st.session_state["documents-flash"] = [("success", f"deleted from {collection}: {', '.join(deleted)}")]
        st.cache_data.clear()
        st.rerun()


def main() -> None:
    tenant = current_tenant()
    st.title("Documents")
    flash()
    try:
        collections = tenant.visible(load_resources().index.collections())
    except ModelMissingError as exc:
        st.error(for_tenant(str(exc), tenant))
        st.stop()
    choices = [*collections, NEW_COLLECTION]
    wanted = st.session_state.get("collection-choice", "sample")
    default = choices.index(wanted) if wanted in choices else 0
    choice = st.selectbox("Collection", choices, index=default)
    collection = st.text_input("New collection name", "") if choice == NEW_COLLECTION else choice
    if not collection:
        st.info("Name the new collection (letters, digits, '-' or '_'), then upload files into it.")
        return
    upload_section(tenant, collection)
    if collection in collections:
        list_section(tenant, collection)


main()
