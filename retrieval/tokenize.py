"""Lexical tokenization for BM25 that keeps identifiers findable.

A plain word tokenizer turns ``ERR-4012`` into ``err`` and ``4012`` and loses the identifier as a unit, so a query
for ``ERR-4012`` scores every document that mentions "error" and any 4012. Here a token that joins word pieces
with ``-``, ``_``, ``.`` or ``/`` is kept whole *and* split into its pieces: the whole form matches exactly and
rarely (high IDF), the pieces still match partial mentions. Stopwords and an optional Snowball stemmer (PyStemmer)
apply to ordinary words, never to identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property

_TOKEN = re.compile(r"\w+(?:[-_./]\w+)*", re.UNICODE)
_SPLIT = re.compile(r"[-_./]")


@dataclass(frozen=True)
class TokenizerConfig:
    lowercase: bool = True
    stopwords: str | None = "en"
    stemmer: str | None = None
    """Snowball language for PyStemmer (``"english"``), or None for no stemming."""
    keep_identifiers: bool = True
    min_length: int = 1

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _is_identifier(token: str) -> bool:
    """Joined pieces, or letters mixed with digits (``v2``, ``sha256``): exact forms users search for."""
    return bool(_SPLIT.search(token)) or (any(c.isdigit() for c in token) and any(c.isalpha() for c in token))


class Tokenizer:
    """Turns text into BM25 terms; the same config must index and query (it is saved with the index)."""

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config or TokenizerConfig()
        if self.config.min_length < 1:
            raise ValueError(f"min_length must be >= 1, got {self.config.min_length}")

    @cached_property
    def _stopwords(self) -> frozenset[str]:
        if not self.config.stopwords:
            return frozenset()
        from bm25s.stopwords import STOPWORDS_EN

        if self.config.stopwords not in {"en", "english"}:
            raise ValueError(f"stopwords {self.config.stopwords!r} not supported; use 'en' or None")
        return frozenset(STOPWORDS_EN)

    @cached_property
    def _stem(self) -> Callable[[str], str]:
        if not self.config.stemmer:
            return lambda word: word
        try:
            import Stemmer
        except ImportError:
            raise ImportError("stemming needs PyStemmer: pip install PyStemmer") from None
        return Stemmer.Stemmer(self.config.stemmer).stemWord

    def __call__(self, text: str) -> list[str]:
        if self.config.lowercase:
            text = text.lower()
        terms: list[str] = []
        for token in _TOKEN.findall(text):
            if self.config.keep_identifiers and _is_identifier(token):
                terms.append(token)
                pieces = [p for p in _SPLIT.split(token) if p]
                if len(pieces) > 1:
                    terms.extend(self._word(p) for p in pieces if self._keep(p))
            elif self._keep(token):
                terms.append(self._word(token))
        return terms

    def _keep(self, word: str) -> bool:
        return len(word) >= self.config.min_length and word not in self._stopwords

    def _word(self, word: str) -> str:
        return word if any(c.isdigit() for c in word) else self._stem(word)
