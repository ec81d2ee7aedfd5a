"""Sidebar metadata filters: facets offered from the collection's metadata, turned into the filter language.

The result is the same dict the API and ``ragline ask --filter`` take (see ``retrieval.filters``), validated by
the pipeline, so the UI cannot build a filter the service would read differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

HIDDEN_FIELDS = frozenset(
    {
        "doc_id", "level", "source", "title", "modified_at", "parent_id", "chunk_index", "pages",
        "window", "window_start", "window_end",
    }
)  # fmt: skip
"""Per-document or internal fields: filtering on them is rarely what a user wants from a facet."""
MAX_FACET_VALUES = 30


def facets(metadata: Iterable[Mapping[str, Any]], max_values: int = MAX_FACET_VALUES) -> dict[str, list[Any]]:
    """Fields with few distinct scalar values (region, status, doc_type…) and those values, sorted."""
    values: dict[str, set[Any]] = {}
    for record in metadata:
        for key, value in record.items():
            if key in HIDDEN_FIELDS or value is None or not isinstance(value, str | int | float | bool):
                continue
            values.setdefault(key, set()).add(value)
    return {
        key: sorted(found, key=lambda v: (type(v).__name__, v))
        for key, found in sorted(values.items())
        if len(found) <= max_values
    }


def build_filter(selected: Mapping[str, list[Any]], raw: str = "") -> dict[str, Any] | None:
    """``{field: value}`` for one chosen value, ``{field: {"$in": [...]}}`` for several; fields AND together.

    ``raw`` is an optional filter in the JSON filter language, ANDed with the facets. Bad JSON raises
    ``ValueError``; the pipeline validates operators and fields.
    """
    conditions: list[dict[str, Any]] = []
    for key, values in selected.items():
        if len(values) == 1:
            conditions.append({key: values[0]})
        elif values:
            conditions.append({key: {"$in": list(values)}})
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ValueError(f"the filter is not valid JSON: {exc.msg} ({where})") from None
        if not isinstance(parsed, dict):
            raise ValueError('the filter must be a JSON object, like {"region": "EU"}')
        if parsed:
            conditions.append(parsed)
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}
