"""Evidence compression with LLMLingua (``llmlingua==0.2.2``) and a local causal LM.

``llmlingua`` drops the tokens a small LM finds predictable; ``longllmlingua`` conditions that on the question, so
tokens that matter for the question survive. ``llmlingua2`` needs a token-classification model that no offline
package ships, so it works only with such a folder configured. Structured text and sentences holding identifiers
are never compressed: they pass through verbatim, and only the prose between them is handed to the compressor.

Two offline fixes are applied once, at load time: tiktoken (which llmlingua calls at start-up) reads the encoding
that llama-index-core ships instead of downloading it, and the model is wrapped so that llmlingua's tuple KV caches
and transformers 5.x ``DynamicCache`` objects are converted in both directions around each call.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.context.structured import has_identifier, structured_kind

METHODS = ("llmlingua", "longllmlingua", "llmlingua2")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MIN_COMPRESSIBLE_WORDS = 8
_compressors: dict[tuple[str, bool], Any] = {}
_lock = threading.Lock()


class CompressionUnavailableError(RuntimeError):
    """The compressor cannot run with what is installed; the message says what to install or configure."""


@dataclass(frozen=True)
class Compressed:
    text: str
    tokens_before: int
    tokens_after: int
    verbatim: str | None
    """Why the text passed through untouched (``json``, ``code``, ``sql``, ``table``), or ``None``."""


def _point_tiktoken_at_local_cache() -> None:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    import llama_index.core

    cache = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    if not cache.is_dir():
        raise CompressionUnavailableError(
            f"llmlingua needs tiktoken's cl100k_base offline; expected it in {cache} (llama-index-core). "
            "Set TIKTOKEN_CACHE_DIR to a folder that holds it."
        )
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


class _LegacyCacheModel:
    """Presents a transformers 5.x causal LM with the tuple KV cache interface llmlingua 0.2.2 was written for."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(self, *args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
        from transformers import DynamicCache

        if past_key_values is not None and not isinstance(past_key_values, DynamicCache):
            past_key_values = DynamicCache(ddp_cache_data=[(k, v) for k, v in past_key_values])
        output = self._model(*args, past_key_values=past_key_values, **kwargs)
        cache = output.past_key_values
        if cache is not None and not isinstance(cache, tuple):
            output.past_key_values = tuple((layer.keys, layer.values) for layer in cache.layers)
        return output


def load_compressor(model_dir: Path, *, llmlingua2: bool = False) -> Any:
    """A ``PromptCompressor`` for ``model_dir``, loaded once per process and folder."""
    key = (str(model_dir), llmlingua2)
    with _lock:
        if key in _compressors:
            return _compressors[key]
        if not (Path(model_dir) / "config.json").is_file():
            raise CompressionUnavailableError(f"no model folder at {model_dir} (config.json missing)")
        _point_tiktoken_at_local_cache()
        from llmlingua import PromptCompressor

        compressor = PromptCompressor(model_name=str(model_dir), device_map="cpu", use_llmlingua2=llmlingua2)
        if not llmlingua2:
            compressor.model = _LegacyCacheModel(compressor.model)
        _compressors[key] = compressor
        return compressor


def _segments(text: str) -> list[tuple[str, bool]]:
    """Consecutive sentences grouped as (text, compressible); sentences with identifiers are not compressible."""
    groups: list[tuple[str, bool]] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        compressible = not has_identifier(sentence)
        if groups and groups[-1][1] == compressible:
            groups[-1] = (f"{groups[-1][0]} {sentence}", compressible)
        else:
            groups.append((sentence, compressible))
    return [(t, c and len(t.split()) >= _MIN_COMPRESSIBLE_WORDS) for t, c in groups]


class EvidenceCompressor:
    """Compresses one evidence text at a time, leaving structure and identifiers verbatim."""

    def __init__(self, method: str, model_dir: Path, rate: float) -> None:
        if method not in METHODS:
            raise ValueError(f"compression method must be one of {', '.join(METHODS)}, got {method!r}")
        if not 0 < rate <= 1:
            raise ValueError(f"rate must be in (0, 1], got {rate}")
        self.method, self.model_dir, self.rate = method, model_dir, rate
        self.compressor = load_compressor(model_dir, llmlingua2=method == "llmlingua2")

    def _compress_prose(self, text: str, question: str) -> str:
        if self.method == "llmlingua2":
            return self.compressor.compress_prompt_llmlingua2(
                [text], rate=self.rate, use_context_level_filter=False, force_reserve_digit=True
            )["compressed_prompt"]
        # llmlingua drops tokens window by window; a window as long as the text drops nothing, so a short text
        # gets windows of half its length.
        window = max(32, min(200, self.compressor.get_token_length(text) // 2))
        kwargs: dict[str, Any] = {"rate": self.rate, "use_context_level_filter": False, "iterative_size": window}
        if self.method == "longllmlingua":
            kwargs.update(
                question=question,
                rank_method="longllmlingua",
                condition_in_question="after_condition",
                condition_compare=True,
                concate_question=False,
            )
        return self.compressor.compress_prompt([text], **kwargs)["compressed_prompt"].strip()

    def compress(self, text: str, question: str) -> Compressed:
        count = self.compressor.get_token_length
        before = count(text)
        kind = structured_kind(text)
        if kind is not None:
            return Compressed(text, before, before, kind)
        import torch

        # One model, many request threads: llmlingua keeps state on the compressor, so calls are serialised. One
        # torch thread: llmlingua makes many small forward passes, and on a busy 2-core host a 40-token text took
        # 36 s on two threads (spinning OpenMP workers) against 1.7 s on one.
        with _lock:
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                parts = [self._compress_prose(t, question) if c else t for t, c in _segments(text)]
            finally:
                torch.set_num_threads(previous)
        out = " ".join(p for p in parts if p)
        return Compressed(out, before, count(out), None)


def timed_compress(compressor: EvidenceCompressor, text: str, question: str) -> tuple[Compressed, float]:
    started = time.perf_counter()
    result = compressor.compress(text, question)
    return result, (time.perf_counter() - started) * 1000
