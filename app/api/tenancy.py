"""Tenants and their collections: one index, collections namespaced by a tenant prefix.

A tenant's collection ``docs`` is stored as ``<tenant>__docs``. Tenant names cannot contain ``_`` and collection
names cannot start with one, so the prefix splits unambiguously. In open (single-tenant, local) mode there is no
prefix: the API sees exactly the collections the CLI ingested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
SEPARATOR = "__"


@dataclass(frozen=True)
class Tenant:
    """Who is calling; ``name`` is None in open mode (no API keys configured)."""

    name: str | None

    def collection(self, logical: str) -> str:
        """The stored collection name for a collection this tenant names."""
        return logical if self.name is None else f"{self.name}{SEPARATOR}{logical}"

    def visible(self, stored: list[str]) -> list[str]:
        """The tenant's own collections among all stored ones, by the names the tenant uses."""
        if self.name is None:
            return list(stored)
        prefix = f"{self.name}{SEPARATOR}"
        return [name[len(prefix) :] for name in stored if name.startswith(prefix)]

    def logical(self, stored: str) -> str:
        """The name the tenant uses for one of its stored collections."""
        visible = self.visible([stored])
        if not visible:
            raise ValueError(f"collection {stored!r} does not belong to tenant {self.label!r}")
        return visible[0]

    @property
    def label(self) -> str:
        return self.name or "local"


def check_tenant_name(name: str) -> str:
    if not TENANT_PATTERN.fullmatch(name):
        raise ValueError(f"tenant name {name!r} must be 1-32 letters, digits or '-' (no '_')")
    return name


class CollectionLister(Protocol):
    def collections(self) -> list[str]: ...


def require_collection(index: CollectionLister, tenant: Tenant, logical: str) -> str:
    """The stored name of a collection the tenant owns; ``LookupError`` naming only the tenant's own collections."""
    stored = tenant.collection(logical)
    all_stored = index.collections()
    if stored not in all_stored:
        known = ", ".join(tenant.visible(all_stored)) or "none yet"
        raise LookupError(
            f"collection {logical!r} does not exist (yours: {known}); create it by uploading documents to it "
            "(POST /v1/documents)"
        )
    return stored
