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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from app.llm import Completion, OpenAICompatibleGenerator
from retrieval.protocols import Message


class AnswerCache:
    """Answers appended to a JSONL file as they arrive. Keyed by model, a tag (the answer length, say) and the
    exact prompt, so a different model or a different setting never reads another's answers. Every
    ``progress_every`` new answers it prints ``progress`` with the count and the time: a long run shows it moves."""

    def __init__(
        self, path: Path, model: str, tag: str, progress: str = "answers stored", progress_every: int = 10
    ) -> None:
        self.path, self.model, self.tag, self.lock = path, model, tag, threading.Lock()
        self.progress, self.progress_every = progress, progress_every
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
                typer.echo(f"  {self.added} {self.progress} ({time.strftime('%H:%M:%S')})")
            return self.added


class CachedGenerator:
    """A generator whose ``chat`` completions are read from an ``AnswerCache`` when the same messages, answer
    length and temperature were asked before, and stored when not. Everything else (``stream``, ``model``,
    ``next_token_logprobs``) goes to the wrapped generator unchanged.

    Only for experiments: answers are deterministic at temperature 0 on one server build, which is what makes a
    stored answer a valid stand-in; a chat service must never answer from it.
    """

    def __init__(self, generator: OpenAICompatibleGenerator, cache: AnswerCache) -> None:
        self.generator, self.cache, self.lock = generator, cache, threading.Lock()
        self.reused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.generator, name)

    def chat(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0) -> Completion:
        key = json.dumps({"messages": messages, "max_tokens": max_tokens, "temperature": temperature})
        stored = self.cache.get(key)
        if stored is not None:
            with self.lock:
                self.reused += 1
            return Completion(**json.loads(stored))
        completion = self.generator.chat(messages, max_tokens=max_tokens, temperature=temperature)
        self.cache.put(key, json.dumps(asdict(completion)))
        return completion
