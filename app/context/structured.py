"""Detects text that compression must leave verbatim: JSON, code, SQL, tables and identifiers.

A compressor that drops "unsurprising" tokens turns ``{"a": 1}`` into invalid JSON, ``ERR-4012`` into ``ERR``, and a
table into a bag of cells. The rules are deliberately eager: passing prose through uncompressed costs tokens, while
mangling structure costs correctness.
"""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
_SQL = re.compile(
    r"\b(SELECT\s[\s\S]+?\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|VIEW)|"
    r"ALTER\s+TABLE|DROP\s+TABLE)\b",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import|return\b|if .*:$|for .*:$|#include|function\b|const |let |var |"
    r"public |private |fn |package |\}|\{$|.*;\s*$|.*\)\s*\{\s*$|.*=>)"
)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", re.MULTILINE)
_RECORD = re.compile(r"^\s*[\w .-]{1,40}: [^;]*(; [\w .-]{1,40}: [^;]*)+$")
"""A row as the CSV loader writes it: ``plan: Pro; seats: 5``."""
IDENTIFIER = re.compile(
    r"\b[A-Za-z]+[-_][A-Za-z0-9]*\d[A-Za-z0-9_-]*\b"  # ERR-4012, SKU_12, v2-beta3
    r"|\b[a-z]+_[a-z0-9_]+\b"  # snake_case
    r"|\b[a-z]+[A-Z][A-Za-z0-9]*\b"  # camelCase
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"  # UUID
    r"|\b[0-9a-f]{10,}\b"  # hashes
    r"|\b\d+\.\d+\.\d+\b"  # versions
    r"|(?:[\w.-]+/)+[\w.-]+\.\w+"  # paths
    r"|\bhttps?://\S+"  # URLs
    r"|\b[\w.+-]+@[\w-]+\.[\w.]+\b"  # e-mail addresses
)


def _is_json(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def _is_table(text: str) -> bool:
    if _TABLE_RULE.search(text):
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) >= 2 and all(_RECORD.match(line) for line in lines):
        return True
    if len(lines) < 3:
        return False
    for delimiter in ("\t", "|", ",", ";"):
        counts = [line.count(delimiter) for line in lines]
        if min(counts) >= 2 and len(set(counts)) == 1:
            return True
    return False


def _is_code(text: str) -> bool:
    if _FENCE.search(text):
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    return sum(bool(_CODE_LINE.match(line)) for line in lines) / len(lines) >= 0.4


def structured_kind(text: str) -> str | None:
    """``json``, ``code``, ``sql`` or ``table`` when the whole text must stay verbatim; ``None`` for prose."""
    if _is_json(text):
        return "json"
    if _is_code(text):
        return "code"
    if _SQL.search(text):
        return "sql"
    if _is_table(text):
        return "table"
    return None


def has_identifier(text: str) -> bool:
    """Whether ``text`` holds a token whose exact spelling matters (code, id, path, version, URL, e-mail)."""
    return IDENTIFIER.search(text) is not None
