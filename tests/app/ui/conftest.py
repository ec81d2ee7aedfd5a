"""UI test fixtures: the app's settings come from the environment, as when ``ragline ui`` starts it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.settings import get_settings

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "streamlit_app.py"
DOCUMENTS_PAGE = "pages/1_Documents.py"
EVALUATION_PAGE = "pages/2_Evaluation.py"

UseEnv = Callable[..., None]


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, models_env: Callable[..., dict[str, str]]) -> Iterator[UseEnv]:
    """Point the UI's settings (``get_settings``) at a data dir and extra ``RAGLINE_*`` values for one test."""

    def use(data_dir: Path, **extra: str) -> None:
        for key, value in models_env(data_dir, **extra).items():
            if key.startswith("RAGLINE_"):
                monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    """A three-document BEIR folder: enough for a real `ragline eval retrieval` run in seconds."""
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Refunds", "text": "EU customers may request a refund within 30 days."},
        {"_id": "d2", "title": "Uptime", "text": "The service level agreement promises 99.95 percent uptime."},
        {"_id": "d3", "title": "Tokens", "text": "Error ERR-4012 means the gateway token expired."},
    ]
    queries = [{"_id": "q1", "text": "refund window for EU customers"}, {"_id": "q2", "text": "what is ERR-4012"}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return folder
