"""Counting memory tokens with the generator's own tokenizer, chat-template markers included."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memory.protocols import Message

_PER_MESSAGE = 5
"""Tokens the chat template adds around each message (ChatML: <|im_start|>role\\n … <|im_end|>\\n)."""


class ChatTokenCounter:
    """Counts with ``transformers.AutoTokenizer`` from the generator's folder; only local files are read."""

    def __init__(self, generator_dir: Path) -> None:
        from transformers import AutoTokenizer

        if not (generator_dir / "tokenizer_config.json").is_file():
            raise FileNotFoundError(
                f"no tokenizer in {generator_dir}: provision the generator with `ragline models install`"
            )
        self._tokenizer = AutoTokenizer.from_pretrained(str(generator_dir), local_files_only=True)

    def count_text(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def count_messages(self, messages: Sequence[Message]) -> int:
        return sum(self.count_text(m["content"]) + _PER_MESSAGE for m in messages)
