"""The UI's tenancy without a browser: its helpers on real files, and its pages in Streamlit's AppTest over a real
index holding two tenants' collections (``acme``: ``docs`` and ``plans``; ``globex``: ``docs``).

The browser test (``test_ui_tenants.py``) drives the same pages through Chromium and vLLM; these cover what needs
no LLM: sign-in, sign-out, a start key, a broken keys file, the lists and deletions of each page, the Evaluation
page's folder checks, per-tenant reports, and a tenant's evaluation run (writes, report and output).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app.api.tenancy import Tenant
from app.chunking import make_chunker
from app.cli.root import app as cli_app
from app.ingestion import ingest_from_documents
from app.resources import Resources
from app.settings import get_settings
from app.ui.documents import delete_documents
from app.ui.redact import SERVICE, for_tenant, redact
from app.ui.reports import OutsideDataDirError, beir_folder_under
from app.ui.start_key import KEY_ENV, StartKeyError, read_start_key
from app.ui.tenancy import INVALID_KEY, INVALID_START_KEY, MISCONFIGURED
from ingest.document import Document
from tests.app.api.conftest import resources_like
from tests.app.ui.conftest import APP, DOCUMENTS_PAGE, EVALUATION_PAGE, UseEnv
from tests.app.ui.test_ui_app import button, texts

TIMEOUT = 300
ACME_KEY, GLOBEX_KEY = "sk-acme-apptest", "sk-globex-apptest"
DOCUMENTS = {
    "acme__docs": ("acme-plan.md", "# Acme plan\n\nAcme ships rocket skates in May."),
    "acme__plans": ("acme-roadmap.md", "# Acme roadmap\n\nAcme builds a giant magnet next year."),
    "globex__docs": ("globex-secret.md", "# Globex merger\n\nThe Globex merger is code-named Bluebird."),
}


# --- pure helpers ----------------------------------------------------------------------------------------------


def test_redact_hides_paths_and_service_addresses_but_keeps_what_a_tenant_needs() -> None:
    assert redact("report: /srv/ragline/data/reports/tenants/acme/run.json") == "report: …/run.json"
    assert redact("the LLM at http://10.0.0.5:18000/v1 answered 500") == f"the LLM at {SERVICE} answered 500"
    assert redact("No such file: '/srv/data/beir/x/corpus.jsonl'") == "No such file: '…/corpus.jsonl'"
    assert redact("model 'qwen' is missing in ~/.ragline/models/qwen") == "model 'qwen' is missing in …/qwen"
    assert redact("ratio 1/2, doc a/b.md, (/etc/passwd)") == "ratio 1/2, doc a/b.md, (…/passwd)"
    text = "failed: /srv/data/x.md"
    assert for_tenant(text, Tenant(None)) == text  # the local user is the operator
    assert for_tenant(text, Tenant("acme")) == "failed: …/x.md"


def _beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (folder / name).write_text("{}\n")
    return folder


def test_a_tenant_reads_only_beir_folders_under_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inside = _beir(data / "beir" / "tiny")
    outside = _beir(tmp_path / "elsewhere")
    (data / "uploads" / "globex__docs").mkdir(parents=True)
    (data / "beir" / "escape").symlink_to(outside)
    leaky = _beir(data / "beir" / "leaky")
    (leaky / "queries.jsonl").unlink()
    (leaky / "queries.jsonl").symlink_to(outside / "queries.jsonl")

    assert beir_folder_under(data, "beir/tiny") == inside.resolve()
    assert beir_folder_under(data, str(inside)) == inside.resolve()  # absolute, but inside
    refused = [
        "/etc", "../", "../../", "beir/../../elsewhere", str(outside), "beir/escape", "beir/leaky", "beir/missing",
        "uploads/globex__docs", "", "  ", "beir/\x00tiny",
    ]  # fmt: skip
    for given in refused:
        with pytest.raises(OutsideDataDirError) as error:
            beir_folder_under(data, given)
        # the same words whatever the reason, repeating only what was typed: nothing tells what exists
        assert str(error.value) == f"{given!r} is not a BEIR folder under the data directory"


def test_a_start_key_is_checked_against_the_api_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[keys]\n"{ACME_KEY}" = "acme"\n')
    (tmp_path / "good").write_text(f"{ACME_KEY}\n")
    (tmp_path / "wrong").write_text("sk-nobody")
    (tmp_path / "empty").write_text("\n")
    assert read_start_key(tmp_path / "good", keys) == (ACME_KEY, Tenant("acme"))
    for name, problem in (("wrong", "is not a key of"), ("empty", "is empty"), ("absent", "cannot be read")):
        with pytest.raises(StartKeyError, match=problem):
            read_start_key(tmp_path / name, keys)
    with pytest.raises(StartKeyError, match="no API keys are configured"):
        read_start_key(tmp_path / "good", None)

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["ui", "--api-key-file", str(tmp_path / "wrong")],
                                    env={"RAGLINE_API_KEYS_FILE": str(keys)})  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "--api-key-file: the key in" in result.output and "is not a key of" in result.output


# --- the pages, in AppTest ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant_data(sample_resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with two tenants' collections, reports of both and of the local user, and an API keys file."""
    root = tmp_path_factory.mktemp("ui-tenancy")
    data = root / "data"
    resources = resources_like(sample_resources, data)
    for stored, (doc_id, text) in DOCUMENTS.items():
        summary = ingest_from_documents(resources, make_chunker(resources, "fixed"), [Document(doc_id, text)], stored)
        assert summary.chunks_written >= 1
    for owner, folder in (("acme", "tenants/acme/acme-run"), ("globex", "tenants/globex/globex-run"),
                          ("local", "local-run")):  # fmt: skip
        (data / "reports" / folder).mkdir(parents=True)
        (data / "reports" / folder / "report.json").write_text(json.dumps({"results": {owner: {"ndcg@10": 0.5}}}))
    (root / "keys.toml").write_text(f'[keys]\n"{ACME_KEY}" = "acme"\n"{GLOBEX_KEY}" = "globex"\n')
    return data


Start = Callable[..., AppTest]


@pytest.fixture
def start(tenant_data: Path, app_env: UseEnv) -> Start:
    """The app over the tenants' data with API keys on (``keys``: another keys file), run once."""

    def run(keys: Path | None = None, **env: str) -> AppTest:
        app_env(tenant_data, RAGLINE_API_KEYS_FILE=str(keys or tenant_data.parent / "keys.toml"), **env)
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        assert not at.exception, at.exception
        return at

    return run


def signed_in(at: AppTest, key: str) -> AppTest:
    at.text_input(key="sign-in-key").set_value(key)
    return button(at, "Sign in").click().run()


def test_without_a_key_there_is_only_the_sign_in_form(start: Start) -> None:
    at = start()
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.sidebar.selectbox and not at.chat_input
    at = signed_in(at, "sk-nobody")
    assert [e.value for e in at.error] == [INVALID_KEY]
    assert not at.sidebar.selectbox and not at.chat_input
    page = texts(at)
    assert "acme" not in page and "globex" not in page and "docs" not in page


def test_a_tenant_sees_its_collections_by_its_names_and_signs_out(start: Start) -> None:
    at = signed_in(start(), ACME_KEY)
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="collection").options == ["docs", "plans"]
    assert "Signed in as tenant **acme**" in [c.value for c in at.sidebar.caption]
    generator = next(c.value for c in at.sidebar.caption if c.value.startswith("Generator:"))
    assert "http" not in generator  # a tenant learns no server address

    at.sidebar.button(key="sign-out").click().run()
    assert [t.value for t in at.title] == ["Sign in"]
    assert "tenant" not in at.session_state and not at.sidebar.selectbox

    at = signed_in(at, GLOBEX_KEY)
    assert at.sidebar.selectbox(key="collection").options == ["docs"]


def test_a_start_key_signs_every_session_in_and_a_wrong_one_shows_only_an_error(start: Start) -> None:
    at = start(**{KEY_ENV: GLOBEX_KEY})
    assert at.sidebar.selectbox(key="collection").options == ["docs"]
    assert not [b for b in at.sidebar.button if b.key == "sign-out"]  # nothing to sign out of
    at = start(**{KEY_ENV: "sk-nobody"})
    assert [e.value for e in at.error] == [INVALID_START_KEY]
    assert not at.sidebar.selectbox and not at.text_input


def test_a_broken_keys_file_tells_a_visitor_nothing_of_the_server(start: Start, tmp_path: Path) -> None:
    broken = tmp_path / "keys.toml"
    broken.write_text("[keys\n")
    at = start(keys=broken)
    assert [e.value for e in at.error] == [MISCONFIGURED]
    assert str(tmp_path) not in texts(at)


def test_documents_page_lists_and_deletes_only_the_tenants_documents(
    start: Start, tenant_data: Path, sample_resources: Resources
) -> None:
    at = signed_in(start(), ACME_KEY)
    at.switch_page(DOCUMENTS_PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox[0].options[:2] == ["docs", "plans"] and len(at.selectbox[0].options) == 3
    at.selectbox[0].set_value("plans").run()
    assert at.dataframe[0].value["doc_id"].tolist() == ["acme-roadmap.md"]
    assert "globex" not in texts(at) and "acme__" not in texts(at)

    resources = resources_like(sample_resources, tenant_data)
    with pytest.raises(LookupError, match=r"not in this collection: globex-secret\.md"):
        delete_documents(resources, Tenant("acme").collection("docs"), ["globex-secret.md"])
    at.multiselect(key="delete-plans").set_value(["acme-roadmap.md"]).run()
    button(at, "Delete selected").click().run()
    assert "deleted from plans: acme-roadmap.md" in texts(at)
    assert [d.doc_id for d in resources.index.manifest.documents("globex__docs")] == ["globex-secret.md"]
    assert resources.index.manifest.documents("acme__plans") == []


def test_evaluation_page_shows_the_tenants_reports_and_refuses_server_folders(start: Start, tmp_path: Path) -> None:
    at = signed_in(start(), ACME_KEY)
    at.switch_page(EVALUATION_PAGE).run()
    assert not at.exception, at.exception
    assert [o.split()[0] for o in at.selectbox(key="report-choice").options] == ["acme-run"]
    assert at.dataframe[0].value["variant"].tolist() == ["acme"]
    at.selectbox(key="eval-dataset").set_value("other folder…").run()
    for given in ("/etc", "../", "../../etc", "uploads"):
        at.text_input(key="eval-folder").set_value(given).run()
        assert [e.value for e in at.error] == [f"{given!r} is not a BEIR folder under the data directory"]
        assert not [b for b in at.button if b.label == "Start evaluation"]
        assert str(tmp_path.parent) not in texts(at)

    at = signed_in(start(), GLOBEX_KEY)
    at.switch_page(EVALUATION_PAGE).run()
    assert [o.split()[0] for o in at.selectbox(key="report-choice").options] == ["globex-run"]


def test_a_tenants_evaluation_writes_its_own_collection_and_report(
    start: Start, tenant_data: Path, tiny_beir: Path, sample_resources: Resources
) -> None:
    beir = tenant_data / "beir"
    beir.mkdir(exist_ok=True)
    os.replace(tiny_beir, beir / "tiny")
    at = signed_in(start(), ACME_KEY)
    at.switch_page(EVALUATION_PAGE).run()
    assert at.selectbox(key="eval-dataset").options == ["beir/tiny", "other folder…"]
    at.selectbox(key="eval-pipeline").set_value("bm25").run()
    at.text_input(key="eval-collection").set_value("tiny-eval").run()
    button(at, "Start evaluation").click().run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "report: retrieval-tiny-" in page, page[-2000:]
    assert str(tenant_data) not in page and "http://" not in page  # its output names no server path or address
    written = list((tenant_data / "reports" / "tenants" / "acme").glob("retrieval-tiny-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["queries"] == 2
    assert not list((tenant_data / "reports").glob("retrieval-*.json"))
    collections = resources_like(sample_resources, tenant_data).index.collections()
    assert "acme__tiny-eval" in collections and "tiny-eval" not in collections
