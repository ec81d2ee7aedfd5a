"""Builds the ``MemoryService`` from process resources: the one place ``app`` hands memory its parts.

Memory gets the same chat-template token counter as the prompt budget (``ChatTemplateTokenCounter`` over the
generator's tokenizer), so the history it keeps under ``memory_budget_tokens`` is counted as the prompt counts it.
"""

from __future__ import annotations

from app.query.pipeline import Pipeline
from app.resources import Resources
from app.settings import Settings
from app.text_generator import VLLMTextGenerator
from app.token_counter import ChatTemplateTokenCounter
from memory.persistent import PersistentMemory
from memory.service import MemoryConfig, MemoryService
from memory.store import MemoryStore

MEMORY_DB = "memory.sqlite3"


class MemoryDisabledError(ValueError):
    """Sessions were asked for while ``memory`` is off in the settings."""


def memory_config(settings: Settings) -> MemoryConfig:
    return MemoryConfig(
        active_turns=settings.memory_active_turns,
        summary_tokens=settings.memory_summary_tokens,
        budget_tokens=settings.memory_budget_tokens,
        pressure=settings.memory_pressure,
        max_question_chars=settings.max_question_chars,
    )


def build_memory_service(resources: Resources, pipeline: Pipeline | None = None) -> MemoryService:
    settings = resources.settings
    if not settings.memory:
        raise MemoryDisabledError("conversation memory is off: set RAGLINE_MEMORY=true to use sessions")
    return MemoryService(
        MemoryStore(settings.data_dir / MEMORY_DB, database_url=settings.database_url),
        PersistentMemory(resources.index.vectors, resources.embedder),
        pipeline or Pipeline(resources),
        VLLMTextGenerator(resources.generator),
        ChatTemplateTokenCounter(resources.generator_dir),
        memory_config(settings),
        lock_wait_s=settings.llm_timeout_s,
    )
