"""Typed errors of the memory API; the REST layer maps them to 404, 409 and 422."""

from __future__ import annotations


class SessionNotFoundError(LookupError):
    """No session with this id (for this tenant)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}: create it first (`POST /v1/sessions` or `ragline chat`)")
        self.session_id = session_id


class SessionBusyError(RuntimeError):
    """Another request holds the session; turns of one session never interleave."""

    def __init__(self, session_id: str, waited_s: float) -> None:
        super().__init__(
            f"session {session_id!r} is answering another request (waited {waited_s:.1f} s); retry when it is done"
        )
        self.session_id = session_id


class InvalidNameError(ValueError):
    """A session id or user name that cannot be stored safely."""
