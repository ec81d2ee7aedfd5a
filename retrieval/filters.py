"""Metadata filters, applied inside both searches (Chroma ``where``; a row mask for BM25), never after top-k.

The language is the Mongo/Chroma dict shape, so one value serves the API, the CLI and both searches:

- field conditions: ``{"region": "EU"}`` (shorthand for ``$eq``), ``{"version": {"$gte": 2, "$lt": 5}}``
  (several operators on one field mean AND), with ``$eq $ne $in $nin $gt $gte $lt $lte``;
- logical: ``{"$and": [...]}``, ``{"$or": [...]}``; a dict with several keys means AND.

Comparison rules (``matches`` is the reference semantics; ``to_chroma`` must never lose a row it accepts):

- a range operand that is an ISO date or datetime string (``2024-01-01``, ``2024-01-01T10:00:00``) compares as a
  date, because metadata stores dates as ISO strings and ``"2024-10-01" > "2024-9-30"`` is false as text.
  A date means midnight at its start; a naive datetime is taken as UTC. A metadata value that is not a date
  does not match a date comparison. Equality (``$eq``/``$in``) stays plain string equality.
- numbers compare with numbers only, strings with strings only; a bool is neither (``True`` is not ``1``),
  which is also how Chroma compares.
- a missing (or ``None``) metadata key matches ``$ne`` and ``$nin`` and nothing else, as in Chroma.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

Filter = Mapping[str, Any]

_LOGICAL = ("$and", "$or")
_EQUALITY = ("$eq", "$ne")
_MEMBERSHIP = ("$in", "$nin")
_RANGE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
SUPPORTED = (
    "supported: {key: value}, {key: {op: value}} with op in $eq, $ne, $gt, $gte, $lt, $lte (scalar value), "
    "$in, $nin (non-empty list of one type); {$and: [...]}, {$or: [...]} (non-empty lists of filters)"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def _fail(where: str, problem: str) -> ValueError:
    return ValueError(f"filter {where}: {problem}; {SUPPORTED}")


def _kind(value: Any) -> str | None:
    """Type class for comparisons: bool before number, since ``bool`` subclasses ``int``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "str" if isinstance(value, str) else None


def _fractional(value: Any) -> bool:
    """Chroma truncates a float operand like 2.5 to 2 when comparing with int metadata, so these need care."""
    return isinstance(value, float) and not value.is_integer()


@lru_cache(maxsize=4096)
def _parse_date(text: str) -> datetime | None:
    if not _DATE_RE.fullmatch(text):
        return None
    try:
        return _as_naive_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _as_naive_utc(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _as_datetime(value: Any) -> datetime | None:
    """An ISO date/datetime string (or a date object) as a comparable naive-UTC datetime; otherwise None."""
    if isinstance(value, datetime):
        return _as_naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return _parse_date(value) if isinstance(value, str) else None


# ---- validation / normal form ---------------------------------------------------------------------------
def validate(where: Filter | None) -> dict[str, Any] | None:
    """Check ``where`` and return its normal form, or None for an empty filter.

    The normal form is what Chroma's validator accepts: every field condition is ``{key: {op: value}}`` with one
    operator, several conditions become ``$and``, a one-element ``$and``/``$or`` is unwrapped, and ``$in`` lists
    are lists. Errors name the offending key or operator and list what is supported. Idempotent.
    """
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise _fail(repr(where), "must be a dict")
    return _node(where, "") if where else None


def fields(where: Filter | None) -> set[str]:
    """Metadata keys a filter reads, so callers can reject a misspelt field instead of matching nothing."""
    found: set[str] = set()

    def visit(node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if key in _LOGICAL:
                for child in value:
                    visit(child)
            else:
                found.add(key)

    normal = validate(where)
    if normal:
        visit(normal)
    return found


def _join(op: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else {op: parts}


def _node(where: Mapping[str, Any], path: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for key, value in where.items():
        at = f"{path}{key}"
        if not isinstance(key, str) or not key:
            raise _fail(repr(key), "keys must be non-empty strings")
        if key in _LOGICAL:
            if not isinstance(value, list | tuple) or not value:
                raise _fail(at, f"{key} needs a non-empty list of filters, got {value!r}")
            children = []
            for i, child in enumerate(value):
                if not isinstance(child, Mapping) or not child:
                    raise _fail(f"{at}[{i}]", f"each {key} item must be a non-empty dict, got {child!r}")
                children.append(_node(child, f"{at}[{i}]."))
            parts.append(_join(key, children))
        elif key.startswith("$"):
            raise _fail(at, f"unknown logical operator {key!r}")
        elif isinstance(value, Mapping):
            if not value:
                raise _fail(at, "empty operator dict")
            parts.extend({key: {op: _operand(f"{at}.{op}", op, operand)}} for op, operand in value.items())
        else:
            parts.append({key: {"$eq": _operand(at, "$eq", value)}})
    return _join("$and", parts)


def _operand(at: str, op: Any, value: Any) -> Any:
    if op in _MEMBERSHIP:
        if not isinstance(value, list | tuple) or not value:
            raise _fail(at, f"{op} needs a non-empty list, got {value!r}")
        items = [_scalar(f"{at}[{i}]", item) for i, item in enumerate(value)]
        if len({_kind(item) for item in items}) > 1:
            raise _fail(at, f"{op} values must all be strings, all numbers or all bools, got {value!r}")
        return items
    if op in _EQUALITY:
        return _scalar(at, value)
    if op in _RANGE:
        if _kind(value) not in ("number", "str"):
            raise _fail(at, f"{op} needs a number or a string (an ISO date compares as a date), got {value!r}")
        if isinstance(value, str) and _DATE_RE.fullmatch(value) and _parse_date(value) is None:
            raise _fail(at, f"{value!r} looks like an ISO date but is not a valid one")
        return _scalar(at, value)
    raise _fail(at, f"unknown operator {op!r}")


def _scalar(at: str, value: Any) -> Any:
    if _kind(value) is None:
        raise _fail(at, f"value must be a string, number or bool, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(at, f"value must be a finite number, got {value!r}")
    return value


# ---- Python evaluation (BM25 row mask; the reference semantics) -----------------------------------------
def matches(metadata: Mapping[str, Any], where: Filter | None) -> bool:
    """True when ``metadata`` satisfies ``where`` (an empty filter matches everything)."""
    clean = validate(where)
    return clean is None or _eval(metadata, clean)


def _eval(metadata: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    ((key, body),) = node.items()
    if key == "$and":
        return all(_eval(metadata, child) for child in body)
    if key == "$or":
        return any(_eval(metadata, child) for child in body)
    ((op, operand),) = body.items()
    value = metadata.get(key)
    if value is None:
        return op in ("$ne", "$nin")
    if op in _EQUALITY:
        return _same(value, operand) == (op == "$eq")
    if op in _MEMBERSHIP:
        return any(_same(value, item) for item in operand) == (op == "$in")
    compare = _RANGE[op]
    if _kind(operand) == "number":
        return _kind(value) == "number" and compare(value, operand)
    when = _parse_date(operand)
    if when is not None:
        other = _as_datetime(value)
        return other is not None and compare(other, when)
    return isinstance(value, str) and compare(value, operand)


def _same(value: Any, operand: Any) -> bool:
    return _kind(value) == _kind(operand) and value == operand


# ---- Chroma push-down ------------------------------------------------------------------------------------
def needs_python_check(where: Filter | None) -> bool:
    """True when ``to_chroma(where)`` is only a superset, so Chroma's rows must also pass ``matches``.

    That is the case for a range comparison on a string or date (Chroma compares only numbers) and for any
    non-integer float operand (Chroma truncates 2.5 to 2 against int metadata).
    """
    clean = validate(where)
    return clean is not None and _needs_check(clean)


def _needs_check(node: Mapping[str, Any]) -> bool:
    ((key, body),) = node.items()
    if key in _LOGICAL:
        return any(_needs_check(child) for child in body)
    ((op, operand),) = body.items()
    operands = operand if op in _MEMBERSHIP else [operand]
    return (op in _RANGE and isinstance(operand, str)) or any(_fractional(item) for item in operands)


def to_chroma(where: Filter | None) -> dict[str, Any] | None:
    """Translate ``where`` to a Chroma ``where`` dict, or None when nothing can be pushed down.

    Contract: Chroma's result for the returned dict is always a superset of the rows ``matches`` accepts, and is
    exact unless ``needs_python_check(where)``; then the caller keeps only Chroma rows that pass ``matches``.
    Parts Chroma cannot evaluate are relaxed to "true": a date/string range is dropped (an ``$and`` keeps its
    other conjuncts; an ``$or`` with such a branch is dropped whole, since dropping a branch would narrow it),
    ``$ne``/``$nin`` with a non-integer float are dropped, and a non-integer float range becomes
    ``{$or: [as given, the equivalent integer bound]}`` so int metadata is not lost to Chroma's truncation.
    """
    clean = validate(where)
    return None if clean is None else _push(clean)


def _push(node: Mapping[str, Any]) -> dict[str, Any] | None:
    ((key, body),) = node.items()
    if key in _LOGICAL:
        pushed = [_push(child) for child in body]
        kept = [part for part in pushed if part is not None]
        if not kept or (key == "$or" and len(kept) < len(pushed)):
            return None
        return _join(key, kept)
    ((op, operand),) = body.items()
    if op in _MEMBERSHIP:
        if op == "$nin" and any(_fractional(item) for item in operand):
            return None
        if {type(item) for item in operand} == {int, float}:  # Chroma wants one Python type per list
            operand = [float(item) for item in operand]
        return {key: {op: operand}}
    if op in _RANGE:
        if isinstance(operand, str):
            return None
        if _fractional(operand):
            bound = {"$gt": ("$gte", math.ceil), "$gte": ("$gte", math.ceil)}.get(op, ("$lte", math.floor))
            return {"$or": [{key: {op: operand}}, {key: {bound[0]: bound[1](operand)}}]}
    if op == "$ne" and _fractional(operand):
        return None
    return {key: {op: operand}}


# ---- CLI --------------------------------------------------------------------------------------------------
_CLI_RE = re.compile(r"\s*([^\s=!<>~]+)\s*(>=|<=|!=|=|>|<|~)\s*(\S(?:.*\S)?)\s*")
_CLI_FORMS = "KEY=VALUE, KEY!=VALUE, KEY>VALUE, KEY>=VALUE, KEY<VALUE, KEY<=VALUE, KEY~V1,V2 (any of)"
_CLI_OPS = {"=": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte", "~": "$in"}
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def parse_cli(pairs: Sequence[str]) -> dict[str, Any] | None:
    """CLI pairs → one AND-ed filter; None when there are none.

    ``region=EU`` → ``{"region": "EU"}`` (plain equalities stay in shorthand, because ``ingest --meta`` reuses
    this for metadata); ``region!=US`` → ``$ne``; ``version<3``, ``effective_date>=2024-01-01`` → range;
    ``region~EU,UK`` → ``$in`` of strings. Values stay strings, except that ``true``/``false`` become bools
    for ``=``/``!=`` and numeric-looking values become int/float for ``< <= > >=``. A key given twice is
    AND-ed through ``$and``. A malformed pair raises ``ValueError`` naming it and listing the accepted forms.
    """
    conditions: list[tuple[str, Any]] = []
    for pair in pairs:
        found = _CLI_RE.fullmatch(pair)
        if not found:
            raise ValueError(f"filter {pair!r} is malformed; use {_CLI_FORMS}")
        key, sign, text = found.groups()
        op = _CLI_OPS[sign]
        value: Any = text
        if op == "$in":
            value = [item.strip() for item in text.split(",") if item.strip()]
            if not value:
                raise ValueError(f"filter {pair!r} lists no values; use {_CLI_FORMS}")
        elif op in _EQUALITY and text in ("true", "false"):
            value = text == "true"
        elif op in _RANGE and _FLOAT_RE.fullmatch(text):
            value = int(text) if _INT_RE.fullmatch(text) else float(text)
        conditions.append((key, value if op == "$eq" else {op: value}))
    if not conditions:
        return None
    keys = [key for key, _ in conditions]
    if len(set(keys)) < len(keys):
        parsed: dict[str, Any] = {"$and": [{key: condition} for key, condition in conditions]}
    else:
        parsed = dict(conditions)
    validate(parsed)
    return parsed
