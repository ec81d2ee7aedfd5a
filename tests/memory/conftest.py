"""Memory fixtures: the live sample resources, or the same over an already running vLLM.

``RAGLINE_TEST_LLM_BASE_URL`` points these tests at a running vLLM (for example the one a benchmark is using)
instead of starting a second server on a machine that has room for one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.memory_wiring import build_memory_service
from app.resources import Resources
from memory.service import MemoryService
from memory.store import MemoryStore


@pytest.fixture(scope="session")
def memory_resources(request: pytest.FixtureRequest, sample_resources: Resources) -> Resources:
    url = os.environ.get("RAGLINE_TEST_LLM_BASE_URL")
    if not url:
        return request.getfixturevalue("live_resources")
    resources = Resources(sample_resources.settings.model_copy(update={"llm_base_url": url}))
    resources.__dict__["index"] = sample_resources.index
    resources.__dict__["embedder"] = sample_resources.embedder
    return resources


@pytest.fixture
def memory_service(memory_resources: Resources, tmp_path: Path) -> Iterator[MemoryService]:
    """A service over the live resources with its own SQLite file, so each test starts with no sessions."""
    service = build_memory_service(memory_resources)
    service.store.close()
    service.store = MemoryStore(tmp_path / "memory.sqlite3")
    yield service
    for session in service.list_sessions():
        service.delete_session(session.id)
    service.store.close()
