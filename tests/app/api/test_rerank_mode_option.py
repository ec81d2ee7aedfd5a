"""``rerank_mode`` and ``rerank_context_tokens`` as per-request API options: accepted in range, refused with the
allowed values otherwise (a 422 before any engine sees them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.api.errors import ApiError
from app.api.options import request_options
from app.settings import Settings


def test_rerank_mode_and_context_are_request_options_checked_as_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path)
    chosen = {"rerank_mode": "long-context", "rerank_context_tokens": 384}
    assert request_options(chosen, settings) == chosen
    with pytest.raises(ApiError) as mode:
        request_options({"rerank_mode": "listwise"}, settings)
    assert mode.value.status == 422 and "'isolated' or 'long-context'" in mode.value.message
    with pytest.raises(ApiError) as context:
        request_options({"rerank_context_tokens": 1024}, settings)
    assert context.value.status == 422 and "512" in context.value.message
