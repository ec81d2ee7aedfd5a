"""Memory fixtures: a memory service over ``memory_resources`` (the root conftest) with its own SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.memory_wiring import build_memory_service
from app.resources import Resources
from memory.service import MemoryService
from memory.store import MemoryStore


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
