"""Answers of long experiment runs kept on disk, so a run cut short (a timeout on a busy shared server, a session
that ends) resumes by asking only what is missing.

``AnswerCache`` is the store; ``CachedGenerator`` puts it in front of a generator's ``chat``, which is how whole
pipeline runs (retrieval, positioning, prompt, answer) become resumable without the pipeline knowing about it:
retrieval is re-run (seconds), the generation it leads to (minutes on a CPU server) is read back.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Generic, TypeVar

from eval.experiments.common import Progress, no_progress
from retrieval.protocols import ChatCompletion, ChatModel

C = TypeVar("C", bound=ChatCompletion)


class AnswerCache:
    """Answers appended to a JSONL file as they arrive. Keyed by model, a tag (the answer length, say) and the
    exact prompt, so a different model or a different setting never reads another's answers. Every
    ``progress_every`` new answers it reports ``progress`` with the count and the time to ``on_progress``: a long
    run shows it moves."""

    def __init__(
        self,
        path: Path,
        model: str,
        tag: str,
        progress: str = "answers stored",
        progress_every: int = 10,
        on_progress: Progress = no_progress,
    ) -> None:
        self.path, self.model, self.tag, self.lock = path, model, tag, threading.Lock()
        self.progress, self.progress_every, self.on_progress = progress, progress_every, on_progress
        self.answers: dict[str, str] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.answers[row["key"]] = row["answer"]
        self.added = 0

    def _key(self, prompt_key: str) -> str:
        return hashlib.sha256(f"{self.model}|{self.tag}|{prompt_key}".encode()).hexdigest()

    def get(self, prompt_key: str) -> str | None:
        return self.answers.get(self._key(prompt_key))

    def put(self, prompt_key: str, answer: str) -> int:
        """Stores one answer; returns how many this run has stored."""
        key = self._key(prompt_key)
        with self.lock:
            self.answers[key] = answer
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps({"key": key, "answer": answer}, ensure_ascii=False) + "\n")
            self.added += 1
            if self.added % self.progress_every == 0:
                self.on_progress(f"  {self.added} {self.progress} ({time.strftime('%H:%M:%S')})")
            return self.added


class CachedGenerator(Generic[C]):
    """A generator whose ``chat`` completions are read from an ``AnswerCache`` when the same messages, answer
    length and temperature were asked before, and stored when not. Everything else (``stream``, ``model``,
    ``next_token_logprobs``) goes to the wrapped generator unchanged. The wrapped generator's completions are
    dataclasses; ``completion`` (their class) rebuilds one from its stored fields, so callers cannot tell a stored
    answer from a new one.

    Only for experiments: answers are deterministic at temperature 0 on one server build, which is what makes a
    stored answer a valid stand-in; a chat service must never answer from it.
    """

    def __init__(self, generator: ChatModel, cache: AnswerCache, completion: Callable[..., C]) -> None:
        self.generator, self.cache, self.completion, self.lock = generator, cache, completion, threading.Lock()
        self.reused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.generator, name)

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0) -> C:
        key = json.dumps({"messages": messages, "max_tokens": max_tokens, "temperature": temperature})
        stored = self.cache.get(key)
        if stored is not None:
            with self.lock:
                self.reused += 1
            return self.completion(**json.loads(stored))
        fields = asdict(self.generator.chat(messages, max_tokens=max_tokens, temperature=temperature))
        self.cache.put(key, json.dumps(fields))
        return self.completion(**fields)
