"""The unit a loader produces: one source file's text and metadata, identified by its path in the corpus."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Metadata that changes without the content changing (a touch, a copy) must not trigger re-indexing.
VOLATILE_METADATA = frozenset({"modified_at"})


@dataclass(frozen=True)
class Document:
    """``doc_id`` is the path relative to the ingestion root, so re-ingesting a folder finds the same ids."""

    doc_id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Hash of text and metadata: a metadata-only edit (a new region tag) must re-index too."""
        digest = hashlib.sha256(self.text.encode())
        for key in sorted(set(self.metadata) - VOLATILE_METADATA):
            digest.update(f"\0{key}={self.metadata[key]}".encode())
        return digest.hexdigest()
