"""The sentence-window chunker with the generator's real tokenizer, and the query stage that hands the model the
window: one sentence indexed, its neighbours read, overlapping windows merged exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.query.stages.window import ExpandWindows
from app.resources import Resources
from ingest.chunkers.fixed import load_token_counter
from ingest.chunkers.sentence_window import WINDOW_END, WINDOW_FIELD, WINDOW_START, SentenceWindowChunker
from ingest.document import Document
from retrieval.types import Chunk, Hit, QueryState

CODE = (
    "```python\ndef refund_days(region: str) -> int:\n"
    '    """Days to ask for a refund. EU law sets 30, the UK 14."""\n'
    '    return 30 if region == "EU" else 14\n```'
)
TEXT = (
    "# Refunds\n\n"
    "Refunds take 5 days. EU customers have 30 days to ask. The UK has 14 days! Contact support. "
    f"Mr. Smith signed the policy on Jan. 5. Done.\n\n{CODE}\n"
)


@pytest.fixture(scope="module")
def tokenize(generator_dir: Path) -> Callable[[str], list[int]]:
    return load_token_counter(generator_dir)


def test_each_sentence_is_a_chunk_with_its_verbatim_window(tokenize: Callable[[str], list[int]]) -> None:
    chunks = SentenceWindowChunker(tokenize, window=1).chunk(Document("policy", TEXT, {"region": "EU"}))
    texts = [chunk.text for chunk in chunks]
    assert texts == [
        "Refunds take 5 days. EU customers have 30 days to ask.",  # a short sentence joins the next
        "The UK has 14 days! Contact support.",
        "Mr. Smith signed the policy on Jan. 5. Done.",  # abbreviations kept; a short last one joins the previous
        CODE,  # a code block stays whole
    ]
    first = chunks[0].metadata
    assert first[WINDOW_FIELD] == (  # the heading is context in the window, never a chunk of its own
        "# Refunds\n\nRefunds take 5 days. EU customers have 30 days to ask. The UK has 14 days! Contact support."
    )
    assert TEXT[first[WINDOW_START] : first[WINDOW_END]] == first[WINDOW_FIELD]  # offsets into the document
    assert first["region"] == "EU" and [c.metadata["chunk_index"] for c in chunks] == [0, 1, 2, 3]
    assert all(TEXT[c.metadata[WINDOW_START] : c.metadata[WINDOW_END]] == c.metadata[WINDOW_FIELD] for c in chunks)
    again = SentenceWindowChunker(tokenize, window=1).chunk(Document("policy", TEXT, {"region": "EU"}))
    assert [c.id for c in again] == [c.id for c in chunks]  # deterministic ids: re-ingestion is idempotent


def test_llama_index_sentence_windows_split_abbreviations_and_code(tokenize: Callable[[str], list[int]]) -> None:
    """The reason for our own chunker, on the same text (the library's default sentence splitter)."""
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.node_parser import SentenceWindowNodeParser

    theirs = [n.text.strip() for n in SentenceWindowNodeParser.from_defaults().get_nodes_from_documents(
        [LlamaDocument(text=TEXT)])]  # fmt: skip
    ours = [c.text for c in SentenceWindowChunker(tokenize).chunk(Document("policy", TEXT, {}))]
    assert "Mr." in theirs and "5." in theirs  # "Mr. Smith" and "Jan. 5." cut into sentences of their own
    assert CODE not in theirs and not any(text.startswith("```") and text.endswith("```") for text in theirs)
    assert CODE in ours


def test_windows_are_capped_and_arguments_checked(tokenize: Callable[[str], list[int]]) -> None:
    long_text = " ".join(f"Sentence number {i} says that the refund window is {i} days long." for i in range(40))
    chunker = SentenceWindowChunker(tokenize, window=10, max_tokens=32, window_tokens=64)
    for chunk in chunker.chunk(Document("long", long_text, {})):
        assert len(tokenize(chunk.metadata[WINDOW_FIELD])) <= 64 and chunk.text in chunk.metadata[WINDOW_FIELD]
    with pytest.raises(ValueError, match="window must be 0 or more"):
        SentenceWindowChunker(tokenize, window=-1)
    with pytest.raises(ValueError, match="window_tokens"):
        SentenceWindowChunker(tokenize, max_tokens=256, window_tokens=128)


def _hit(chunk: Chunk, score: float) -> Hit:
    return Hit(chunk, score, "fused")


def test_the_stage_gives_windows_and_merges_overlapping_ones(tokenize: Callable[[str], list[int]]) -> None:
    chunks = SentenceWindowChunker(tokenize, window=1).chunk(Document("policy", TEXT, {}))
    plain = Chunk("other#0", "other", "A fixed-size chunk without a window.")
    state = QueryState("How long do EU customers have?", "c")
    far = SentenceWindowChunker(tokenize, window=0).chunk(Document("policy", TEXT, {}))[3]  # the code, alone
    state.candidates["ranked"] = [_hit(chunks[0], 0.9), _hit(plain, 0.8), _hit(chunks[1], 0.7), _hit(far, 0.6)]
    state = ExpandWindows("ranked")(state)
    out = state.candidates["windowed"]
    assert [h.chunk.id for h in out] == [chunks[0].id, "other#0", far.id]  # chunk 1's window joined chunk 0's
    start, end = chunks[0].metadata[WINDOW_START], chunks[1].metadata[WINDOW_END]
    assert out[0].chunk.text == TEXT[start:end] and out[0].score == 0.9  # the exact union, at the better place
    assert out[1].chunk.text == plain.text  # other chunkers' hits pass unchanged
    entry = state.trace[-1].as_dict()
    assert entry["stage"] == "window" and entry["expanded"] == 3 and entry["merged"] == {chunks[0].id: [chunks[1].id]}


def test_the_sample_corpus_chunked_by_sentence_gives_the_model_windows(
    sample_resources: Resources, tmp_path: Path
) -> None:
    """Real ingestion (real embedder, Chroma, BM25) and the real retrieval stages: the EU refund question finds
    the sentence and the evidence is its window, which holds the sentence and its neighbours."""
    from app.chunking import make_chunker
    from app.ingestion import run_ingest
    from app.query.pipeline import Pipeline
    from ingest.samples import sample_corpus_dir
    from tests.app.api.conftest import resources_like

    resources = resources_like(sample_resources, tmp_path / "data")
    assert make_chunker(resources, "sentence-window").name == "sentence-window"
    summary = run_ingest(resources.settings, sample_corpus_dir(), "sentences", prune=False, meta={},
                         chunker="sentence-window")  # fmt: skip
    assert not summary.failed and summary.chunks_written > 200
    state = QueryState("How long do EU customers have to request a refund?", "sentences")
    for stage in Pipeline(resources).retrieval:
        state = stage(state)
    window = next(entry.as_dict() for entry in state.trace if entry.stage == "window")
    assert window["expanded"] >= 1
    best = state.candidates["windowed"][0]
    assert best.chunk.doc_id == "policies/refund-policy-eu-2024.md" and "30 days" in best.chunk.text
    sentence = next(h for h in state.candidates["deduplicated"] if h.chunk.id == best.chunk.id).chunk.text
    assert sentence in best.chunk.text and len(best.chunk.text) > len(sentence)
    assert all(hit.chunk.text == hit.chunk.metadata[WINDOW_FIELD] or hit.chunk.id in window["merged"]
               for hit in state.context)  # fmt: skip
    answer = Pipeline._answer(state)  # what CLI, API and `ragline eval qa` receive: the windows, not the sentences
    assert [c.text for c in answer.evidence] == [h.chunk.text for h in state.context]
    assert best.chunk.text in [c.text for c in answer.evidence] and sentence not in [c.text for c in answer.evidence]
