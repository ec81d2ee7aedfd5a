"""The UI as a tenant-safe client, in a real Chromium: with API keys configured it asks for a key, then shows and
touches only that tenant's collections and documents, and its Evaluation page reads nothing outside the data dir.

Two tenants, ``acme`` and ``globex``, each own a collection ``docs`` with a document of their own; the UI runs as
``ragline ui`` does (``streamlit run``) against the real vLLM.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.chunking import make_chunker
from app.cli.services import ui_command_line
from app.ingestion import ingest_from_documents
from app.resources import Resources
from app.ui.views import QUESTION_PLACEHOLDER
from app.vllm_server import VLLMServer, free_port
from ingest.document import Document
from tests.app.api.conftest import resources_like
from tests.app.ui.conftest import REPO
from tests.app.ui.test_ui_live import UI_START_TIMEOUT_S, browser, explained  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.vllm

ACME_KEY, GLOBEX_KEY = "sk-acme-ui-key", "sk-globex-ui-key"
ACME_DOC = (
    "acme-plan.md",
    "# Acme launch plan\n\nAcme ships the rocket skates to retailers in May. The launch event is held in Denver, "
    "and the skates cost 149 dollars a pair.\n",
)
GLOBEX_DOC = ("globex-secret.md", "# Globex merger\n\nThe Globex merger is code-named Bluebird.\n")


@pytest.fixture(scope="module")
def tenants_ui(
    live_resources: Resources, vllm_server: VLLMServer, models_env: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ui-tenants")
    keys = folder / "api_keys.toml"
    keys.write_text(
        f'[keys]\n"{ACME_KEY}" = "acme"\n"sha256:{hashlib.sha256(GLOBEX_KEY.encode()).hexdigest()}" = "globex"\n'
    )
    resources = resources_like(live_resources, folder / "data")
    for tenant, (name, text) in (("acme", ACME_DOC), ("globex", GLOBEX_DOC)):
        documents = [Document(name, text, {"title": name})]
        summary = ingest_from_documents(resources, make_chunker(resources, "fixed"), documents, f"{tenant}__docs")
        assert summary.chunks_written >= 1
    # A short answer is all the test reads (its citations): it keeps one question within the LLM timeout on a
    # CPU generator shared with other work.
    env = models_env(folder / "data", RAGLINE_LLM_BASE_URL=vllm_server.base_url, RAGLINE_API_KEYS_FILE=str(keys),
                     RAGLINE_MAX_ANSWER_TOKENS="96")  # fmt: skip
    port = free_port()
    log_path = folder / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ui_command_line(port), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + UI_START_TIMEOUT_S
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)  # poll interval while the server starts
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Sign in").wait_for(state="visible")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def open_page(page: Any, title: str) -> None:
    """Through the app's own navigation: a URL load would start a new session, signed out."""
    page.get_by_role("link", name=title).first.click()


def settled(page: Any) -> str:
    """The page's text once the script run has finished."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")
    return str(page.inner_text("body"))


def test_a_wrong_key_gets_nothing(tenants_ui: str, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    page = browser.new_page()
    page.set_default_timeout(120_000)
    with explained(page, tmp_path):
        sign_in(page, tenants_ui, "sk-nobody")
        page.get_by_text("invalid API key").wait_for(state="visible")
        text = settled(page)
        assert "docs" not in text and "acme" not in text and "globex" not in text
    page.close()


def table_text(page: Any) -> str:
    """The text of the page's data tables: Streamlit draws their cells on a canvas and keeps them in the DOM hidden,
    so ``inner_text`` (visible text only) misses them."""
    return " ".join(table.text_content() or "" for table in page.locator('[data-testid="stDataFrame"]').all())


def test_a_tenant_sees_asks_and_lists_only_its_own(tenants_ui: str, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 2000})
    page = context.new_page()
    page.set_default_timeout(420_000)
    with explained(page, tmp_path):
        sign_in(page, tenants_ui, ACME_KEY)
        page.get_by_text("Signed in as tenant").wait_for(state="visible")
        box = page.get_by_placeholder(QUESTION_PLACEHOLDER)
        box.fill("What do the Acme rocket skates cost?")
        box.press("Enter")
        page.locator('[data-testid="stExpander"] summary', has_text="acme-plan.md").first.wait_for(state="visible")
        text = settled(page)
        assert "globex" not in text.lower() and "Bluebird" not in text

        open_page(page, "Documents")
        # The listing's caption, not the file name: the chat's citation still names acme-plan.md while the page
        # switches, so waiting for the name can read the page before the listing is drawn.
        page.get_by_text("documents,").first.wait_for(state="visible")
        text = settled(page) + table_text(page)
        assert "1 documents" in text and "globex-secret.md" not in text and "acme__" not in text

        open_page(page, "Evaluation")
        page.get_by_role("tab", name="New run").click()
        for attempt in ("/etc", "../../"):
            field = page.get_by_label("BEIR folder")
            field.fill(attempt)
            field.press("Enter")
            page.get_by_text(f"{attempt!r} is not a BEIR folder under the data directory").wait_for(state="visible")
        assert "/tmp/" not in settled(page)
    context.close()

    other = browser.new_context()
    page = other.new_page()
    page.set_default_timeout(120_000)
    with explained(page, tmp_path):
        sign_in(page, tenants_ui, GLOBEX_KEY)
        page.get_by_text("Signed in as tenant").wait_for(state="visible")
        open_page(page, "Documents")
        page.get_by_text("documents,").first.wait_for(state="visible")
        page.get_by_text("globex-secret.md").first.wait_for(state="attached")
        assert "acme-plan.md" not in settled(page) + table_text(page)
    other.close()
