"""The UI against a real vLLM server: AppTest for the chat logic, and a real headless Chromium for the page.

The browser test starts the UI exactly as ``ragline ui`` does (``streamlit run streamlit_app.py``) on a free
127.0.0.1 port, drives the system Chromium with Playwright, and waits for the expected text, never a fixed time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.cli.services import ui_command_line as _ui_command
from app.resources import Resources
from app.ui.state import memory_available
from app.ui.views import QUESTION_PLACEHOLDER
from app.vllm_server import VLLMServer, free_port
from tests.app.ui.conftest import APP, REPO, UseEnv

pytestmark = pytest.mark.vllm

QUESTION = "How long do EU customers have to request a refund?"
EU_POLICY = "policies/refund-policy-eu-2024.md"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
UI_START_TIMEOUT_S = 180
ANSWER_TIMEOUT_MS = 420_000
SCREENSHOT_COPY = REPO / ".ragline" / "reports" / "ui-screenshot.png"


def last_answer(at: AppTest) -> Any:
    return at.session_state["messages"][-1]["answer"]


def test_chat_streams_a_cited_answer_and_passes_the_switches(live_resources: Resources, app_env: UseEnv) -> None:
    settings = live_resources.settings
    app_env(settings.data_dir, RAGLINE_LLM_BASE_URL=settings.llm_base_url)
    at = AppTest.from_file(str(APP), default_timeout=600).run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    answer = last_answer(at)
    assert "30" in answer.text
    assert EU_POLICY in [c["doc_id"] for c in answer.citations]
    labels = [e.label for e in at.expander]
    assert any(EU_POLICY in label and label.startswith("[") for label in labels), labels
    assert "Context inspector" in labels
    assert next(m.value for m in at.chat_message[1].markdown) == answer.text

    at.sidebar.selectbox(key="switch-fusion").set_value("rrf").run()
    at.chat_input[0].set_value("And within how many days is an approved refund paid back?").run()
    assert not at.exception, at.exception
    stages = {s["stage"]: s for s in last_answer(at).trace["stages"]}
    assert stages["fusion"]["method"] == "rrf"
    if memory_available() and settings.model_dump().get("memory"):
        assert any(name.startswith("memory") for name in stages), list(stages)  # the follow-up went through memory
    assert len(at.session_state["messages"]) == 4


@pytest.fixture(scope="module")
def ui_url(live_resources: Resources, vllm_server: VLLMServer, models_env, tmp_path_factory) -> Iterator[str]:
    """``streamlit run streamlit_app.py`` (the ``ragline ui`` command) on a free port, over the sample index."""
    port = free_port()
    env = models_env(live_resources.settings.data_dir, RAGLINE_LLM_BASE_URL=vllm_server.base_url)
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _ui_command(port), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + UI_START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not answer within {UI_START_TIMEOUT_S} s:\n{log_path.read_text()}")
                time.sleep(0.5)  # poll interval while the server starts
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; ./run test does)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def explained(page: Any, tmp_path: Path) -> Iterator[None]:
    """On a failure, keep a screenshot and say what the page showed: a timeout alone does not tell why."""
    try:
        yield
    except Exception as exc:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise AssertionError(f"{exc}\n--- the page showed:\n{page.inner_text('body')[-3000:]}") from exc


def test_browser_asks_and_shows_the_answer_its_citation_and_the_inspector(
    ui_url: str, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2600})  # tall: the app scrolls inside its own pane
    page.set_default_timeout(ANSWER_TIMEOUT_MS)
    page.goto(ui_url)
    with explained(page, tmp_path):
        ask_and_check(page, tmp_path)
    page.close()


def ask_and_check(page: Any, tmp_path: Path) -> None:
    box = page.get_by_placeholder(QUESTION_PLACEHOLDER)
    box.fill(QUESTION)
    box.press("Enter")
    citation = page.locator('[data-testid="stExpander"] summary', has_text=EU_POLICY).first
    citation.wait_for(state="visible")
    page.get_by_text("Sources", exact=True).first.wait_for(state="visible")
    assistant = page.locator('[data-testid="stChatMessage"]').nth(1)
    assert "30" in assistant.inner_text()
    citation.click()
    passage = page.get_by_text("EU customers have 30 days", exact=False).first
    passage.wait_for(state="visible")
    page.locator('[data-testid="stExpander"] summary', has_text="Context inspector").first.click()
    page.get_by_text("Latency waterfall", exact=True).first.wait_for(state="visible")
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")  # the script run has finished
    page.get_by_text("Candidates and scores", exact=True).first.scroll_into_view_if_needed()
    shot = tmp_path / "ui-chat.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT_COPY)


def test_browser_documents_page_lists_the_collection(
    ui_url: str, browser: Any, live_resources: Resources, tmp_path: Path
) -> None:
    documents = live_resources.index.manifest.documents("sample")
    chunks = sum(d.chunk_count for d in documents)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{ui_url}/documents")
    with explained(page, tmp_path):
        page.get_by_text(f"{len(documents)} documents, {chunks} chunks", exact=False).first.wait_for(state="visible")
        page.get_by_role("heading", name="Upload").wait_for(state="visible")
    page.screenshot(path=str(tmp_path / "ui-documents.png"), full_page=True)
    page.close()
