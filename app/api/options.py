"""Per-request pipeline options from API clients: query-time knobs only.

The pipeline validates options as settings fields; the API additionally refuses the fields that configure the
server itself (storage, models, services, limits), which a client must not be able to change for its request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SERVER_ONLY = frozenset(
    {
        "data_dir",
        "models_dir",
        "chroma_url",
        "embedder",
        "generator",
        "llm_base_url",
        "llm_api_key",
        "llm_timeout_s",
        "vllm_python",
        "vllm_kvcache_gib",
        "vllm_max_model_len",
        "vllm_start_timeout_s",
        "api_host",
        "api_port",
        "ui_port",
        "api_keys_file",
        "max_upload_mb",
        "max_request_kb",
        "chunk_size",
        "chunk_overlap",
        "ingest_batch_documents",
        "max_file_mb",
        "max_question_chars",
    }
)


def request_options(options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Options a client may set; ``ValueError`` naming the server-only ones it tried to set."""
    if not options:
        return None
    refused = sorted(set(options) & SERVER_ONLY)
    if refused:
        raise ValueError(f"option(s) {', '.join(refused)} configure the server and cannot be set per request")
    return dict(options)
