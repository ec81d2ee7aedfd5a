"""Evaluation page: browse past evaluation and benchmark reports, or start a ``ragline eval retrieval`` run.

A run is the real CLI command in a subprocess (its output streams into the page), so the UI reports exactly what
``ragline eval retrieval`` reports; the page then lists the report it wrote.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import streamlit as st

from app.api.tenancy import Tenant
from app.settings import get_settings
from app.ui.documents import COLLECTION_NAME
from app.ui.redact import for_tenant
from app.ui.reports import (
    EVAL_PIPELINES,
    REPO_ROOT,
    OutsideDataDirError,
    Report,
    beir_folder_under,
    beir_folders,
    eval_retrieval_command,
    list_reports,
    read_json,
    results_table,
)
from app.ui.tenancy import current_tenant

OUTPUT_LINES = 40


def reports_dir(tenant: Tenant) -> Path:
    """Each tenant's reports in a folder of its own; the local user's at the top."""
    root = get_settings().reports_dir
    return root if tenant.name is None else root / "tenants" / tenant.name


def _inside(data_dir: Path, folder: Path) -> bool:
    try:
        beir_folder_under(data_dir, str(folder))
    except OutsideDataDirError:
        return False
    return True


def show_report(report: Report, tenant: Tenant) -> None:
    st.caption(f"{report.path if tenant.name is None else report.path.name} · {report.when}")
    if report.json_path is not None:
        try:
            data = read_json(report.json_path)
        except ValueError as exc:
            st.error(str(exc))
            data = None
        rows = results_table(data)
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch")
        for key in ("best", "latency_ms"):
            if isinstance(data, dict) and key in data:
                st.markdown(f"**{key}**: `{json.dumps(data[key])}`")
        with st.expander(f"{report.json_path.name} (all fields)"):
            st.json(data, expanded=1)
    for image in report.images:
        st.image(str(image), caption=image.name)
    if report.html_path is not None:
        html = report.html_path.read_bytes()
        st.download_button(f"Download {report.html_path.name}", html, file_name=report.html_path.name,
                           mime="text/html")  # fmt: skip
        if st.toggle(f"Show {report.html_path.name} here", key=f"html-{report.run_id}"):
            st.iframe(report.html_path, height=700)
    for other in report.other:
        st.download_button(f"Download {other.name}", other.read_bytes(), file_name=other.name, key=f"f-{other}")
    if report.json_path is None and report.html_path is None and not report.images:
        st.caption("This run wrote no report file yet.")


def past_reports(tenant: Tenant) -> None:
    folder = reports_dir(tenant)
    reports = list_reports(folder) if folder.is_dir() else []
    if tenant.name is None:  # the tenants' folders are theirs, not runs of the local user
        reports = [r for r in reports if r.path.name != "tenants"]
    if not reports:
        where = f" in {folder}" if tenant.name is None else ""
        st.info(f"No reports yet{where}: start a run in the other tab.")
        return
    labels = {f"{r.run_id}  ({r.when})": r for r in reports}
    choice = st.selectbox("Report", list(labels), key="report-choice")
    show_report(labels[choice], tenant)


def new_run(tenant: Tenant) -> None:
    settings = get_settings()
    if tenant.name is None:
        known = beir_folders(REPO_ROOT.parent / "shared" / "data", settings.data_dir / "beir")
        st.caption("A BEIR-format folder: corpus.jsonl[.gz], queries.jsonl and qrels/<split>.tsv.")
    else:  # a tenant reads only datasets under the server's data directory, none a symlink leads out of
        known = [path for path in beir_folders(settings.data_dir / "beir") if _inside(settings.data_dir, path)]
        st.caption("A BEIR-format folder under the server's data directory (e.g. beir/scifact).")
    labels = {
        str(path) if tenant.name is None else path.relative_to(settings.data_dir).as_posix(): path for path in known
    }
    picked = st.selectbox("Dataset", [*labels, "other folder…"], key="eval-dataset")
    typed = st.text_input("BEIR folder", "", key="eval-folder") if picked == "other folder…" else None
    if typed is not None and not typed.strip():
        st.info("Type the folder of a BEIR dataset.")
        return
    try:
        if typed is None:
            folder = labels[picked]
        elif tenant.name is None:
            folder = Path(typed)
        else:
            folder = beir_folder_under(settings.data_dir, typed)
    except OutsideDataDirError as exc:
        st.error(str(exc))
        return
    splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else ["test"]
    split = st.selectbox("Split", splits, key="eval-split")
    pipeline = st.selectbox("Pipelines", EVAL_PIPELINES, key="eval-pipeline",
                            help="all: BM25, dense, RRF and a convex-fusion α sweep")  # fmt: skip
    collection = st.text_input("Collection (empty: beir-<folder>)", "", key="eval-collection")
    limit = st.number_input("Judged queries (0 = all)", min_value=0, value=50, step=10, key="eval-limit")
    if not st.button("Start evaluation", type="primary", key="eval-start"):
        return
    if not folder.is_dir():
        st.error(f"{folder if tenant.name is None else typed!r} is not a folder")
        return
    if collection and not COLLECTION_NAME.fullmatch(collection):
        st.error(f"collection name {collection!r} must be 1-63 letters, digits, '-' or '_'")
        return
    stored = tenant.collection(collection or f"beir-{folder.name}")
    out = reports_dir(tenant) / f"retrieval-{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = eval_retrieval_command(folder, collection=stored, split=split, pipeline=pipeline,
                                     limit=int(limit) or None, json_out=out)  # fmt: skip
    if tenant.name is None:
        st.code(" ".join(command[2:]).replace("app.cli", "ragline", 1), language="bash")
    run_command(command, out, tenant)


def run_command(command: list[str], out: Path, tenant: Tenant) -> None:
    """Run the evaluation, streaming its output; the report it wrote is shown when it succeeds."""
    lines: list[str] = []
    box = st.empty()
    with st.status("Evaluating…", expanded=True) as status:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)  # fmt: skip
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(for_tenant(line.rstrip("\n").split("\r")[-1], tenant))
            box.code("\n".join(lines[-OUTPUT_LINES:]))
        code = process.wait()
        if code != 0 or not out.is_file():
            status.update(label=f"evaluation failed (exit code {code})", state="error")
            st.error("\n".join(lines[-5:]) or "no output")
            return
        status.update(label="evaluation finished", state="complete")
    st.success(f"report: {out if tenant.name is None else out.name}")
    show_report(Report(out.stem, out, out.stat().st_mtime, json_path=out), tenant)


def main() -> None:
    tenant = current_tenant()
    st.title("Evaluation")
    reports, run = st.tabs(["Reports", "New run"])
    with reports:
        past_reports(tenant)
    with run:
        new_run(tenant)


main()
