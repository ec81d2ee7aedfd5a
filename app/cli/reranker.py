"""``ragline reranker ...``: train and evaluate the cross-encoder reranker offline."""

from __future__ import annotations

from app.reranker.commands import reranker_app as app

__all__ = ["app"]
