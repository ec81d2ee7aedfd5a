"""Token counts with the generator's own tokenizer and chat template: the budget must count what vLLM will count.

``ChatTemplateTokenCounter`` is the one implementation of ``retrieval.protocols.TokenCounter``: the prompt budget
uses it, and ``app.memory_wiring`` hands the same kind of counter to conversation memory, so history is counted
one way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from retrieval.protocols import Message

_SYSTEM_ANCHOR: Message = {"role": "system", "content": ""}
"""Stands in for the prompt's system message when history is counted on its own (see ``count_history``)."""


@lru_cache(maxsize=4)
def _load_tokenizer(folder: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


class ChatTemplateTokenCounter:
    """Counts tokens of plain text and of chat messages laid out by the model's chat template.

    The tokenizer is loaded once per folder (process-wide cache): a counter is cheap to build per request.
    """

    def __init__(self, tokenizer_dir: Path) -> None:
        if not (Path(tokenizer_dir) / "tokenizer_config.json").is_file():
            raise FileNotFoundError(
                f"no tokenizer in {tokenizer_dir}: the generator folder must hold its tokenizer "
                "(run `ragline models install`)"
            )
        self.tokenizer = _load_tokenizer(str(tokenizer_dir))

    def count(self, text: str) -> int:
        """Tokens of plain ``text``, without special tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def count_messages(self, messages: Sequence[Message], *, generation_prompt: bool = False) -> int:
        """Tokens of ``messages`` exactly as the chat template renders them (role markers included); with
        ``generation_prompt`` also the assistant header that opens the answer, as the prompt sent to vLLM has it."""
        if not messages:
            return 0
        ids = self.tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=generation_prompt)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return len(ids)

    def count_history(self, messages: Sequence[Message]) -> int:
        """Tokens ``messages`` add to a prompt that already opens with a system message: the budget's H term.

        Counted after a system message because the prompt always has one: a template that inserts a default system
        message into a conversation without one (Qwen's does) would otherwise charge that message to the history.
        """
        if not messages:
            return 0
        return self.count_messages([_SYSTEM_ANCHOR, *messages]) - self.count_messages([_SYSTEM_ANCHOR])

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` within ``max_tokens`` tokens, cut back to a word boundary."""
        if max_tokens <= 0:
            return ""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) <= max_tokens:
            return text
        prefix = self.tokenizer.decode(ids[: max(max_tokens - 2, 1)])  # room for the ellipsis
        cut = prefix.rfind(" ")
        return (prefix[:cut] if cut > len(prefix) // 2 else prefix).rstrip() + " …"
