"""UI test fixtures: the app's settings come from the environment, as when ``ragline ui`` starts it."""

from __future__ import annotations

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
