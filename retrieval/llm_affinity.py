"""A routing hint that travels with a request to the generator: which conversation an LLM request belongs to.

It lives here, beside the generator protocol, so that ``memory`` (which knows the session) can set it and ``app``
(which owns the HTTP client and its replicas, ``app.llm_replicas``) can read it, without ``memory`` importing
``app`` or every ``TextGenerator`` method growing an argument only one implementation uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_affinity: ContextVar[str | None] = ContextVar("ragline_llm_affinity", default=None)


@contextlib.contextmanager
def llm_affinity(key: str) -> Iterator[None]:
    """Route the LLM requests made in this block (this thread or task) by ``key``, e.g. a session's key: they go
    to one replica, whose prefix cache then holds the conversation."""
    token = _affinity.set(key)
    try:
        yield
    finally:
        _affinity.reset(token)


def current_affinity() -> str | None:
    """The key set by the innermost ``llm_affinity`` block, or ``None`` outside any."""
    return _affinity.get()
