"""HyDE (Gao et al. 2022): search with a short hypothetical answer written by the generator, not the bare question.

A question and its answer passage are phrased differently; a generated answer, right or wrong, is phrased like the
passage and lands nearer to it in embedding space. It costs one generation before retrieval, so it is off by
default (``hyde``). The hypothetical text joins the question in ``search_query``: the question's own terms keep
BM25 anchored while the answer-like text steers the dense search.
"""

from __future__ import annotations

from retrieval.protocols import ChatModel
from retrieval.types import QueryState

HYDE_PROMPT = (
    "Write one short factual passage, of two or three sentences, that answers the question below, as an "
    "encyclopedia would. Do not say that you are unsure.\n\nQuestion: {question}"
)
HYDE_TOKENS = 96


class HypotheticalDocument:
    """Writes ``state.search_query`` as the question (or its rewrite) followed by a generated passage."""

    name = "hyde"
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ("search_query",)

    def __init__(self, generator: ChatModel, max_tokens: int = HYDE_TOKENS) -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.generator, self.max_tokens = generator, max_tokens

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=1) as entry:
            prompt = HYDE_PROMPT.format(question=state.query)
            completion = self.generator.chat([{"role": "user", "content": prompt}], max_tokens=self.max_tokens)
            passage = completion.text.strip()
            if passage:
                state.search_query = f"{state.query}\n{passage}"
            entry.items_out = int(bool(passage))
            entry.details.update(hypothetical=passage, model=self.generator.model)
        return state
