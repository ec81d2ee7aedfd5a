"""Metadata filters, applied inside both searches (Chroma ``where``; a row mask for BM25), never after top-k.

The skeleton accepts equality on metadata keys, ``{"region": "EU", "doc_type": "policy"}``; the same shape is
what Chroma takes, so one filter value serves both searches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Filter = Mapping[str, Any]


def validate(where: Filter | None) -> dict[str, Any] | None:
    if not where:
        return None
    clean: dict[str, Any] = {}
    for key, value in where.items():
        if key.startswith("$") or not isinstance(value, str | int | float | bool):
            raise ValueError(f"unsupported filter {key!r}: {value!r}; use key=value equality on metadata")
        clean[key] = value
    return clean


def to_chroma(where: Filter | None) -> dict[str, Any] | None:
    clean = validate(where)
    if not clean:
        return None
    if len(clean) == 1:
        return clean
    return {"$and": [{key: value} for key, value in clean.items()]}


def matches(metadata: Mapping[str, Any], where: Filter | None) -> bool:
    clean = validate(where)
    return all(metadata.get(key) == value for key, value in (clean or {}).items())


def parse_cli(pairs: Sequence[str]) -> dict[str, Any] | None:
    """``["region=EU"]`` → ``{"region": "EU"}``; a malformed pair names itself."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"filter {pair!r} is not key=value")
        parsed[key.strip()] = value.strip()
    return parsed or None
