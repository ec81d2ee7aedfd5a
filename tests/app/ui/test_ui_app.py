"""The UI's pages run by Streamlit's AppTest over real data: the sample index, uploads, reports, an eval run."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from app.profiles import profile_reranker_or_none
from app.resources import Resources
from app.settings import Settings
from app.ui.switches import available_switches
from app.vllm_server import free_port
from tests.app.ui.conftest import APP, DOCUMENTS_PAGE, EVALUATION_PAGE, UseEnv

TIMEOUT = 300
NARNIA = b"# Refunds in Narnia\n\nRefunds in Narnia take 14 days to reach the lamppost."


def app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def texts(at: AppTest) -> str:
    """Every markdown, caption, alert and code text on the page, joined: what a reader of the page sees."""
    parts = [
        e.value for kind in ("markdown", "caption", "success", "warning", "error", "info", "code") for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_chat_page_offers_the_collections_filters_and_switches_of_this_build(
    sample_resources: Resources, app_env: UseEnv
) -> None:
    app_env(sample_resources.settings.data_dir)
    at = app().run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="collection").value == "sample"
    facets = {m.label for m in at.sidebar.multiselect}
    assert {"region", "status"} <= facets
    regions = {c.metadata["region"] for c in sample_resources.index.manifest.chunks("sample") if "region" in c.metadata}
    assert at.sidebar.multiselect(key="facet-sample-region").options == sorted(regions)
    labels = {w.label for kind in ("selectbox", "toggle", "slider") for w in at.sidebar.get(kind)}
    expected = {s.label for s in available_switches(Settings(data_dir=sample_resources.settings.data_dir))}
    assert expected <= labels
    at.sidebar.selectbox(key="switch-fusion").set_value("rrf").run()
    assert "This request: fusion=rrf" in texts(at)
    assert at.sidebar.slider(key="switch-fusion_alpha").disabled  # α means nothing to RRF


def test_bad_filter_and_unreachable_llm_are_shown_as_errors(sample_resources: Resources, app_env: UseEnv) -> None:
    # A real fault: the LLM URL points at a port where nothing listens.
    app_env(sample_resources.settings.data_dir, RAGLINE_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
            RAGLINE_LLM_TIMEOUT_S="5", RAGLINE_MEMORY="false")  # fmt: skip
    at = app().run()
    at.sidebar.text_input(key="filter-json").set_value("{region: EU}").run()
    assert "the filter is not valid JSON" in at.sidebar.error[0].value
    at.chat_input[0].set_value("How long do EU customers have to request a refund?").run()
    assert not at.chat_message  # an invalid filter asks nothing
    at.sidebar.text_input(key="filter-json").set_value('{"region": "EU"}').run()
    at.chat_input[0].set_value("How long do EU customers have to request a refund?").run()
    assert not at.exception, at.exception
    assert any("127.0.0.1" in e.value for e in at.error), [e.value for e in at.error]
    assert "messages" in at.session_state and at.session_state["messages"] == []  # the failed turn is not kept


def test_documents_page_uploads_lists_and_deletes(tmp_path: Path, app_env: UseEnv, embedder_dir: Path) -> None:
    app_env(tmp_path / "data")
    at = app().run()
    assert "No collection yet" in at.warning[0].value
    at.switch_page(DOCUMENTS_PAGE).run()
    at.text_input[0].set_value("uploads").run()
    at.file_uploader[0].set_value(
        [
            ("narnia-refunds.md", NARNIA, "text/markdown"),
            ("uptime.txt", b"The monthly uptime target is 99.95 percent.", "text/plain"),
        ]
    ).run()  # fmt: skip
    button(at, "Ingest").click().run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "uploads: 2 added, 0 updated, 0 unchanged, 0 failed" in page
    assert "**2 documents, 2 chunks** in `uploads`" in page
    at.multiselect(key="delete-uploads").set_value(["uptime.txt"]).run()
    button(at, "Delete selected").click().run()
    assert "deleted from uploads: uptime.txt" in texts(at)
    assert "**1 documents, 1 chunks** in `uploads`" in texts(at)

    resources = Resources(Settings(data_dir=tmp_path / "data", models_dir=embedder_dir.parent))
    assert [d.doc_id for d in resources.index.manifest.documents("uploads")] == ["narnia-refunds.md"]
    assert not (tmp_path / "data" / "uploads" / "uploads" / "uptime.txt").exists()
    hits = resources.index.search_bm25("uploads", "lamppost refunds", 3)
    assert [h.chunk.doc_id for h in hits] == ["narnia-refunds.md"]
    assert resources.index.search_bm25("uploads", "uptime target", 3) == []


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_evaluation_page_shows_reports_and_runs_an_evaluation(
    tmp_path: Path, app_env: UseEnv, tiny_beir: Path, embedder_dir: Path, generator_dir: Path
) -> None:
    data = tmp_path / "data"
    run = data / "reports" / "20260101-000000-eval"
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"results": {"bm25": {"ndcg@10": 0.61}}, "best": {"alpha": 0.4}}))
    (run / "ndcg.png").write_bytes(_png())
    (run / "report.html").write_text("<html><body><h1>Evaluation</h1></body></html>")
    app_env(data)
    at = app()
    at.run()
    at.switch_page(EVALUATION_PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="report-choice").value.startswith("20260101-000000-eval")
    assert at.dataframe[0].value.to_dict("records") == [{"variant": "bm25", "ndcg@10": 0.61}]
    assert [caption for image in at.image for caption in image.captions] == ["ndcg.png"]
    assert '**best**: `{"alpha": 0.4}`' in texts(at)

    at.selectbox(key="eval-dataset").set_value("other folder…").run()
    at.text_input(key="eval-folder").set_value(str(tiny_beir)).run()
    at.selectbox(key="eval-pipeline").set_value("bm25").run()
    at.text_input(key="eval-collection").set_value("tiny-eval").run()
    button(at, "Start evaluation").click().run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "report: " in page, page[-2000:]
    written = sorted((data / "reports").glob("retrieval-tiny-*.json"))
    assert len(written) == 1
    report = json.loads(written[0].read_text())
    assert report["queries"] == 2 and report["results"]["bm25"]["recall@10"] == 1.0


def test_the_profile_selector_sets_the_switches_and_the_request(sample_resources: Resources, app_env: UseEnv) -> None:
    app_env(sample_resources.settings.data_dir)
    at = app().run()
    assert at.sidebar.selectbox(key="switch-profile").value == "default"
    at.sidebar.selectbox(key="switch-profile").set_value("code").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="switch-code-positioning").value == "document"  # the profile's value shown
    assert "This request: profile=code" in texts(at)
    at.sidebar.selectbox(key="switch-code-positioning").set_value("edge").run()
    assert "This request: profile=code, positioning=edge" in texts(at)
    at.sidebar.selectbox(key="switch-profile").set_value("enterprise").run()  # a profile that reranks
    if profile_reranker_or_none(sample_resources.settings.resolved_models_dir) is None:
        assert "profile enterprise" in texts(at) and "ragline models install --reranker" in texts(at)
    else:  # the sample reranker was trained into this models dir: the profile turns it on
        assert at.sidebar.toggle(key="switch-enterprise-reranker").value
