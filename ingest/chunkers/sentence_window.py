"""Sentence-window chunking: each sentence is indexed on its own, and carries the window the model will read.

A short unit matches a question sharply (BM25 and the embedder see one claim, not a 256-token mixture), but one
sentence is too little for the model to answer from. So every chunk is one unit of
:func:`ingest.chunkers.sentences.split_units` (a sentence, or a whole code fence, table or JSON block), and its
metadata ``window`` holds the document's text from ``window`` units before it to ``window`` units after it,
verbatim; the query path's ``window`` stage (``app/query/stages/window.py``) hands the model that window instead
of the sentence.

Why not LlamaIndex's ``SentenceWindowNodeParser``, which does the same: its sentence splitter cuts "Mr. Smith" and
"Jan. 5." into separate sentences and splits code fences and tables sentence by sentence, where ``split_units``
keeps abbreviations and whole blocks (tests/ingest/test_sentence_window.py shows both on one text).

- A heading is never a chunk of its own: it is context, and it appears in the windows of the sentences after it.
- A unit shorter than ``min_chars`` (a list bullet, "Done.") is merged into the next unit of the same block kind.
- A unit longer than ``max_tokens`` is cut into pieces (:func:`ingest.chunkers.sentences.split_long`).
- A window is capped at ``window_tokens``: neighbours are dropped from the far side first, so that the window is
  never much longer than the fixed chunker's chunks and the evidence budget still holds several.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.chunkers.fixed import chunk_id
from ingest.chunkers.sentences import Unit, make_unit, split_long, split_units
from ingest.document import Document
from retrieval.types import Chunk

WINDOW_FIELD = "window"
"""Chunk metadata key of the text the model reads in place of the chunk's own."""
WINDOW_START, WINDOW_END = "window_start", "window_end"
"""Character offsets of the window in the document's text: two windows of one document that overlap are merged
exactly, without the document, by the query stage."""


class SentenceWindowChunker:
    """One chunk per sentence or block, each carrying its surrounding window in ``metadata["window"]``."""

    name = "sentence-window"
    parallel_documents = 1

    def __init__(
        self,
        tokenize: Callable[[str], list[int]],
        *,
        window: int = 2,
        max_tokens: int = 256,
        window_tokens: int = 384,
        min_chars: int = 24,
        tokenizer_name: str = "custom",
    ) -> None:
        if window < 0:
            raise ValueError(f"window must be 0 or more sentences, got {window}")
        if max_tokens < 8:
            raise ValueError(f"max_tokens must be at least 8, got {max_tokens}")
        if window_tokens < max_tokens:
            raise ValueError(f"window_tokens ({window_tokens}) must be at least max_tokens ({max_tokens})")
        self._tokenize = tokenize
        self.window, self.max_tokens, self.window_tokens, self.min_chars = window, max_tokens, window_tokens, min_chars
        self.signature = f"sentence-window:{window}:{max_tokens}:{window_tokens}:{min_chars}:{tokenizer_name}"

    def chunk(self, document: Document) -> list[Chunk]:
        text = document.text
        units = self._units(text)
        chunks: list[Chunk] = []
        for position, unit in enumerate(units):
            if unit.kind == "heading":
                continue
            first, last = self._window_span(text, units, position)
            index = len(chunks)
            chunks.append(
                Chunk(
                    id=chunk_id(document.doc_id, index, unit.text),
                    doc_id=document.doc_id,
                    text=unit.text,
                    metadata={
                        **document.metadata,
                        "chunk_index": index,
                        WINDOW_FIELD: text[units[first].start : units[last].end],
                        WINDOW_START: units[first].start,
                        WINDOW_END: units[last].end,
                    },
                )
            )
        return chunks

    def _units(self, text: str) -> list[Unit]:
        """Units of at most ``max_tokens``; a short one joins the next unit of its kind, or else the previous."""
        cut = [split_long(text, unit, self._tokenize, self.max_tokens) for unit in split_units(text)]
        pieces = [piece for pieces_of_unit in cut for piece in pieces_of_unit]
        forward: list[Unit] = []
        for unit in pieces:
            if forward and self._joins(forward[-1], unit):
                forward[-1] = make_unit(text, forward[-1].start, unit.end, unit.kind)
            else:
                forward.append(unit)
        units: list[Unit] = []
        for unit in forward:  # a short unit at the end of its run joins the one before it
            if units and self._short(unit) and unit.kind == units[-1].kind and unit.kind != "heading":
                units[-1] = make_unit(text, units[-1].start, unit.end, unit.kind)
            else:
                units.append(unit)
        return units

    def _short(self, unit: Unit) -> bool:
        return len(unit.text) < self.min_chars

    def _joins(self, previous: Unit, unit: Unit) -> bool:
        return self._short(previous) and previous.kind == unit.kind and unit.kind != "heading"

    def _window_span(self, text: str, units: list[Unit], center: int) -> tuple[int, int]:
        """The first and last unit of ``center``'s window: ``window`` units each side, shrunk from the side
        farther from the centre until the window fits ``window_tokens``."""
        first, last = max(0, center - self.window), min(len(units) - 1, center + self.window)
        while (first < center or last > center) and self._tokens(text, units, first, last) > self.window_tokens:
            if center - first >= last - center:
                first += 1
            else:
                last -= 1
        return first, last

    def _tokens(self, text: str, units: list[Unit], first: int, last: int) -> int:
        return len(self._tokenize(text[units[first].start : units[last].end]))
