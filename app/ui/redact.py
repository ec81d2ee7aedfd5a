"""Server text shown to a tenant, without the server's file paths or service addresses.

In local mode the UI's user is the operator, and a path in an error or in a run's output is what helps them fix
it. A tenant of a shared server must not learn the server's layout (where data, models and reports live, which
folders exist, where the LLM or Chroma listen), so every text the server produced that a tenant sees (an error,
an ingestion failure, an evaluation's output) goes through ``for_tenant`` first: a URL becomes ``<service>``, an
absolute path keeps only its last component (``…/report.json``), which is what a tenant needs to recognise it.
"""

from __future__ import annotations

import re

from app.api.tenancy import Tenant

SERVICE = "<service>"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"`<>]+")
# An absolute (or home-relative) path: a '/' or '~/' not inside a word, a number (1/2) or a relative path (a/b).
_PATH = re.compile(r"(?<![\w.~/-])~?/(?:[^\s'\"`,;:()<>\[\]/]+/)*([^\s'\"`,;:()<>\[\]/]*)")


def redact(text: str) -> str:
    """``text`` with every URL replaced by ``<service>`` and every absolute path by ``…/<its last component>``."""
    text = _URL.sub(SERVICE, text)
    return _PATH.sub(lambda match: f"…/{match.group(1)}" if match.group(1) else "…/", text)


def for_tenant(text: str, tenant: Tenant) -> str:
    """What a caller sees of server text: all of it in local mode, ``redact``-ed for a signed-in tenant."""
    return text if tenant.name is None else redact(text)
