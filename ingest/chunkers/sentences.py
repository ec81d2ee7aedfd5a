"""Offline sentence splitting for the semantic chunkers: Markdown blocks first, then Punkt inside prose.

The text is first cut into blocks line by line, and only prose is split into sentences:

* a fenced code block (```` ``` ```` or ``~~~``, up to its closing fence, or to the end of the text when it is
  never closed) is one unit: no unit ever ends inside a fence;
* a Markdown heading (``#`` to ``######``) is a unit of its own;
* a table (consecutive lines starting with ``|``, or a header line followed by a ``---|---`` delimiter row) is one
  unit;
* a JSON block is one unit: a single line that parses as a JSON object or array, or lines from one that opens
  with ``{``, ``[``, ``{"``, ``[{``, ``["`` or ``[[`` to the line where its brackets balance (string-aware);
* blank lines end a paragraph; a list item (``-``, ``*``, ``+``, ``1.``, ``1)``) or block quote starts a new one;
* each paragraph is split with Punkt (Kiss & Strube 2006) using the trained English parameters that
  llama-index-core ships in ``llama_index/core/_static/nltk_cache`` -- read from those files directly, so nothing is
  downloaded and NLTK's global data path is not touched -- plus a few abbreviations common in technical text
  ("e.g.", "i.e.", "etc.", "vs.", ...). Punkt only considers a period followed by whitespace, so decimals (3.5),
  versions (v2.6.0), file names and URLs are never cut.

Why not llama-index's own ``split_by_sentence_tokenizer``: it does work offline (the Punkt tables are bundled), but
it builds an *untrained* ``PunktSentenceTokenizer()``, which splits after every abbreviation ("Dr. | Smith",
"e.g. | the"), and it knows nothing of code fences or tables. When the bundled tables cannot be found (a
llama-index release that moves them), a small regex splitter with an abbreviation list takes over, with a warning.

Units are returned as character spans into the original text, so a chunk can be cut from the document verbatim.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

UnitKind = Literal["sentence", "heading", "code", "table", "json"]

# Abbreviations Punkt's English tables miss (lower case, without the final period), plus what the regex fallback
# needs. Units of measure such as "min." are left out: they end sentences too often.
EXTRA_ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "etc", "vs", "cf", "approx", "fig", "figs", "eq", "eqs", "ref", "refs", "sec", "no", "nos",
        "vol", "ch", "pp", "al", "incl", "resp", "esp", "dept", "est", "ca", "viz", "mr", "mrs", "ms", "dr",
        "prof", "sr", "jr", "st", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
        "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m",
    }
)  # fmt: skip

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?\s*$")
_BLOCK_START = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+|^\s*>")


@dataclass(frozen=True)
class Unit:
    """One splitting unit: ``text`` is ``source[start:end]``, without surrounding whitespace."""

    start: int
    end: int
    kind: UnitKind
    text: str


def split_units(text: str) -> list[Unit]:
    """Sentences and whole blocks (headings, code fences, tables, JSON), in order, as spans into ``text``."""
    units: list[Unit] = []
    for start, end, kind in _blocks(text):
        if kind == "prose":
            for s, e in _sentence_spans(text[start:end]):
                units.append(make_unit(text, start + s, start + e, "sentence"))
        else:
            units.append(make_unit(text, start, end, kind))
    return [u for u in units if u.text]


def split_sentences(text: str) -> list[str]:
    """The texts of :func:`split_units`."""
    return [u.text for u in split_units(text)]


def make_unit(text: str, start: int, end: int, kind: UnitKind) -> Unit:
    """The unit for ``text[start:end]`` with its surrounding whitespace trimmed off the span."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Unit(start, end, kind, text[start:end])


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, ``end`` excluding the line break."""
    spans = []
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        spans.append((pos, pos + len(stripped)))
        pos += len(line)
    return spans


def _blocks(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield (start, end, kind) with kind "prose" for a paragraph or a block kind of :data:`UnitKind`."""
    lines = _lines(text)
    paragraph: tuple[int, int] | None = None
    i = 0
    while i < len(lines):
        start, end = lines[i]
        line = text[start:end]
        block = _block_at(text, lines, i)
        ends_paragraph = block is not None or not line.strip() or _BLOCK_START.match(line)
        if ends_paragraph and paragraph is not None:
            yield paragraph[0], paragraph[1], "prose"
            paragraph = None
        if block is not None:
            last, kind = block
            yield start, lines[last][1], kind
            i = last + 1
            continue
        if line.strip():
            paragraph = (paragraph[0] if paragraph else start, end)
        i += 1
    if paragraph is not None:
        yield paragraph[0], paragraph[1], "prose"


def _block_at(text: str, lines: list[tuple[int, int]], i: int) -> tuple[int, str] | None:
    """(index of the block's last line, kind) when a non-prose block starts at line ``i``."""
    line = text[lines[i][0] : lines[i][1]]
    fence = _FENCE_OPEN.match(line)
    if fence:
        marker = fence.group(1)
        closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
        for j in range(i + 1, len(lines)):
            if closing.match(text[lines[j][0] : lines[j][1]]):
                return j, "code"
        return len(lines) - 1, "code"
    if _HEADING.match(line):
        return i, "heading"
    if line.lstrip().startswith("|") or (
        "|" in line and i + 1 < len(lines) and _TABLE_DELIMITER.match(text[lines[i + 1][0] : lines[i + 1][1]])
    ):
        j = i + 1
        while j < len(lines) and "|" in text[lines[j][0] : lines[j][1]]:
            j += 1
        return j - 1, "table"
    if line.lstrip()[:1] in ("{", "["):
        last = _balanced_until(text, lines, i)
        opening = line.strip()
        multiline_ok = opening in ("{", "[") or opening.startswith(('{"', "[{", '["', "[["))
        if last is not None and ((last > i and multiline_ok) or (last == i and _is_json(line))):
            return last, "json"
    return None


def _balanced_until(text: str, lines: list[tuple[int, int]], i: int) -> int | None:
    """Index of the line where the brackets opened on line ``i`` close (string-aware), or None."""
    depth = 0
    in_string = escaped = False
    for j in range(i, len(lines)):
        for char in text[lines[j][0] : lines[j][1]]:
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth < 0:
                    return None
        if depth == 0:
            return j
    return None


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _sentence_spans(paragraph: str) -> list[tuple[int, int]]:
    tokenizer = _punkt_tokenizer()
    if tokenizer is not None:
        return list(tokenizer(paragraph))
    return _regex_sentence_spans(paragraph)


@functools.cache
def _punkt_tokenizer() -> Callable[[str], Iterator[tuple[int, int]]] | None:
    """Punkt with the English tables bundled in llama-index-core, or None when they are not there."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    spec = importlib.util.find_spec("llama_index.core")
    roots = list(spec.submodule_search_locations or []) if spec else []
    folder = next(
        (
            Path(root) / "_static" / "nltk_cache" / "tokenizers" / "punkt_tab" / "english"
            for root in roots
            if (Path(root) / "_static" / "nltk_cache" / "tokenizers" / "punkt_tab" / "english").is_dir()
        ),
        None,
    )
    if folder is None:
        log.warning("llama-index's bundled Punkt tables were not found: splitting sentences with a regex instead")
        return None

    def rows(name: str) -> list[list[str]]:
        with (folder / name).open(encoding="utf-8") as handle:
            return [line.rstrip("\n").split("\t") for line in handle if line.strip()]

    params = PunktParameters()
    params.collocations = {(row[0], row[1]) for row in rows("collocations.tab")}
    params.sent_starters = {row[0] for row in rows("sent_starters.txt")}
    params.abbrev_types = {row[0] for row in rows("abbrev_types.txt")} | EXTRA_ABBREVIATIONS
    params.ortho_context = defaultdict(int, {row[0]: int(row[1]) for row in rows("ortho_context.tab")})
    return PunktSentenceTokenizer(params).span_tokenize


# A candidate end: ., ! or ? (plus closing quotes/brackets), then whitespace, then something that can start a
# sentence. The word before the period decides whether it is an abbreviation.
_REGEX_END = re.compile(r"[.!?]+[\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9`*_#])")
_WORD_BEFORE = re.compile(r"(\S+)$")


def _regex_sentence_spans(paragraph: str) -> list[tuple[int, int]]:
    """Fallback splitter: a break after ., ! or ? followed by an upper-case start, unless the word is a known
    abbreviation or a single letter (an initial)."""
    spans = []
    start = 0
    for match in _REGEX_END.finditer(paragraph):
        if paragraph[match.start()] == ".":
            word = _WORD_BEFORE.search(paragraph[start : match.start()])
            token = word.group(1).lstrip("\"'([").lower() if word else ""
            if token in EXTRA_ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                continue
        spans.append((start, match.end()))
        start = match.end()
    if paragraph[start:].strip():
        spans.append((start, len(paragraph)))
    return spans


# Upper bound on the characters one token covers, so that cutting a huge unit only ever tokenizes a window.
MAX_CHARS_PER_TOKEN = 32


def split_long(text: str, unit: Unit, tokenize: Callable[[str], list[int]], max_tokens: int) -> list[Unit]:
    """The unit itself, or pieces of at most ``max_tokens`` tokens, cut at a line break or space if possible."""
    count = lambda start, end: len(tokenize(text[start:end]))  # noqa: E731
    if count(unit.start, unit.end) <= max_tokens:
        return [unit]
    pieces: list[Unit] = []
    start = unit.start
    while start < unit.end:
        hi = min(unit.end, start + max_tokens * MAX_CHARS_PER_TOKEN)
        if count(start, hi) <= max_tokens:
            cut = hi
        else:  # the longest prefix that fits: hi does not fit, lo always "fits" (at least one character)
            lo = start + 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if count(start, mid) <= max_tokens:
                    lo = mid
                else:
                    hi = mid
            cut = lo
        if cut < unit.end:
            half = start + (cut - start) // 2
            newline = text.rfind("\n", half, cut)
            space = max(text.rfind(" ", half, cut), text.rfind("\t", half, cut))
            cut = newline if newline > start else space if space > start else cut
        piece = make_unit(text, start, cut, unit.kind)
        if piece.text:
            pieces.append(piece)
        start = cut
        while start < unit.end and text[start].isspace():
            start += 1
    return pieces
