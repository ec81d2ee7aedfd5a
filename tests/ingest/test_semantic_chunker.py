"""Semantic chunkers (Max–Min and the DP cluster variant) with the real MiniLM embedder and the generator's tokenizer.

Topic boundaries are scored with a boundary F1 (a predicted boundary matches a true one at most one sentence away)
on three synthetic multi-topic documents, for both chunkers and for llama-index's ``SemanticSplitterNodeParser``
(default settings, the same MiniLM folder) as the baseline; ``pytest -s`` prints the scores.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ingest.chunkers import sentences
from ingest.chunkers.fixed import chunk_id, load_token_counter
from ingest.chunkers.semantic import ClusterSemanticChunker, MaxMinSemanticChunker
from ingest.chunkers.sentences import split_sentences, split_units
from ingest.document import Document
from retrieval.embedder import SentenceTransformerEmbedder

REFUNDS = [
    "Customers can request a refund within 30 days of purchase.",
    "Refunds are issued to the original payment method, never as store credit.",
    "A refund for an annual plan is prorated by the number of unused months.",
    "Refund requests for orders over 500 EUR need approval from the finance team.",
]
SSO = [
    "To enable single sign-on, an administrator registers ragline as a SAML application in the identity provider.",
    "The identity provider's metadata URL goes into the SSO settings page.",
    "Users are matched to their accounts by the email claim in the SAML assertion.",
    "Once SSO is enforced, password logins are disabled for everyone except the break-glass admin.",
]
FAILOVER = [
    "The primary PostgreSQL database streams its write-ahead log to a hot standby replica.",
    "If the primary stops answering health checks for 30 seconds, Patroni promotes the replica.",
    "After a failover, the old primary is rebuilt from the new one with pg_rewind.",
    "Connection strings point at the HAProxy endpoint, so applications reconnect to the new primary automatically.",
]
VACATION = [
    "Employees accrue 25 vacation days per calendar year.",
    "Unused vacation days can be carried over until the end of March of the following year.",
    "Vacation requests must be approved by the team lead at least two weeks in advance.",
]
GPU = [
    "Each inference node has one GPU with 80 GB of memory.",
    "The vLLM server reserves 90 percent of the GPU memory for its KV cache at startup.",
    "A CUDA out-of-memory error means the model's context length must be lowered.",
    "GPU driver updates are rolled out one node at a time to keep serving capacity.",
]
INVOICES = [
    "Invoices are generated on the first business day of every month.",
    "Each invoice lists the seats used, the plan price and the VAT rate of the customer's country.",
    "Unpaid invoices trigger a reminder email after 14 days.",
]
BACKUPS = [
    "Nightly backups of the object store are copied to a second region.",
    "Backups are kept for 35 days and encrypted with a customer-managed key.",
    "A restore drill is run every quarter to verify that backups can actually be restored.",
    "The restore procedure is documented in the disaster recovery runbook.",
]
PASSWORDS = [
    "Passwords must be at least 14 characters long.",
    "The password of a service account is rotated automatically every 90 days.",
    "After five failed login attempts, the account is locked for 15 minutes.",
]
# Topical blocks run together with no blank lines: only the meaning tells where a topic ends.
TOPIC_DOCUMENTS = [[REFUNDS, SSO, FAILOVER], [VACATION, GPU, INVOICES], [BACKUPS, PASSWORDS, REFUNDS, GPU]]

CHUNKERS = [MaxMinSemanticChunker, ClusterSemanticChunker]


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)


@pytest.fixture(scope="module")
def tokenize(generator_dir: Path) -> Callable[[str], list[int]]:
    return load_token_counter(generator_dir)


def _topic_document(blocks: list[list[str]]) -> tuple[str, list[int], list[int]]:
    """The text, each sentence's start offset, and the true boundaries (index of each topic's first sentence)."""
    sents = [s for block in blocks for s in block]
    text = " ".join(sents)
    starts = list(itertools.accumulate([0] + [len(s) + 1 for s in sents[:-1]]))
    true = list(itertools.accumulate(len(block) for block in blocks[:-1]))
    return text, starts, true


def _boundaries(text: str, chunk_texts: list[str], starts: list[int]) -> list[int]:
    """Predicted boundaries: the sentence nearest to where each chunk after the first begins."""
    boundaries = []
    position = 0
    for chunk_text in chunk_texts[1:]:
        position = text.index(chunk_text.strip()[:60], position)
        boundaries.append(min(range(len(starts)), key=lambda k: abs(starts[k] - position)))
    return boundaries


def boundary_f1(predicted_boundaries: list[int], true_boundaries: list[int], tolerance: int = 1) -> float:
    """F1 of boundaries matched one-to-one, a predicted one counting for a true one at most ``tolerance`` away."""
    if not predicted_boundaries and not true_boundaries:
        return 1.0
    unused = sorted(set(predicted_boundaries))
    matched = 0
    for true in true_boundaries:
        near = [p for p in unused if abs(p - true) <= tolerance]
        if near:
            unused.remove(min(near, key=lambda p: abs(p - true)))
            matched += 1
    if matched == 0:
        return 0.0
    precision = matched / len(set(predicted_boundaries))
    recall = matched / len(true_boundaries)
    return 2 * precision * recall / (precision + recall)


def test_boundary_f1_helper() -> None:
    assert boundary_f1([4, 8], [4, 8]) == 1.0
    assert boundary_f1([5, 7], [4, 8]) == 1.0
    assert boundary_f1([6], [4, 8]) == 0.0
    assert boundary_f1([4, 6, 8], [4, 8]) == pytest.approx(0.8)
    assert boundary_f1([], []) == 1.0
    assert boundary_f1([], [4]) == 0.0


def _assert_covers(text: str, chunk_texts: list[str]) -> None:
    """Chunks are verbatim, in order, and together hold every non-space character of the document."""
    position = 0
    for chunk_text in chunk_texts:
        found = text.find(chunk_text, position)
        assert found >= 0, chunk_text
        position = found + len(chunk_text)
    assert re.sub(r"\s", "", "".join(chunk_texts)) == re.sub(r"\s", "", text)


# -- sentence splitting --------------------------------------------------------------------------------------------


def test_sentences_keep_abbreviations_decimals_and_versions() -> None:
    text = (
        "Dr. Smith runs ragline v2.6.0 on 3.5 GB of RAM, e.g. on a laptop. "
        "Use a small model, i.e. one under 1B parameters. See Fig. 2 for the numbers! Is it fast? Yes."
    )
    assert split_sentences(text) == [
        "Dr. Smith runs ragline v2.6.0 on 3.5 GB of RAM, e.g. on a laptop.",
        "Use a small model, i.e. one under 1B parameters.",
        "See Fig. 2 for the numbers!",
        "Is it fast?",
        "Yes.",
    ]


def test_blocks_are_single_units() -> None:
    text = (
        "# Setup\n"
        "Install it. Then run it:\n"
        "```bash\npip install ragline. Then run.\necho done.\n```\n"
        "| key | value |\n|---|---|\n| a. b | c. d |\n"
        '{"name": "x. y",\n "tags": ["a. b"]}\n'
        "- First item. Second sentence.\n"
        "- Second item\n"
        "## Next\n"
        "[docs](http://example.com/a.html) explain it. Done."
    )
    units = [(u.kind, u.text) for u in split_units(text)]
    assert units == [
        ("heading", "# Setup"),
        ("sentence", "Install it."),
        ("sentence", "Then run it:"),
        ("code", "```bash\npip install ragline. Then run.\necho done.\n```"),
        ("table", "| key | value |\n|---|---|\n| a. b | c. d |"),
        ("json", '{"name": "x. y",\n "tags": ["a. b"]}'),
        ("sentence", "- First item."),
        ("sentence", "Second sentence."),
        ("sentence", "- Second item"),
        ("heading", "## Next"),
        ("sentence", "[docs](http://example.com/a.html) explain it."),
        ("sentence", "Done."),
    ]
    for unit in split_units(text):
        assert text[unit.start : unit.end] == unit.text


def test_unclosed_fence_runs_to_the_end() -> None:
    units = split_units("Intro.\n~~~\ncode. More code.\n\nStill code.")
    assert [u.kind for u in units] == ["sentence", "code"]
    assert units[1].text == "~~~\ncode. More code.\n\nStill code."


def test_regex_fallback_handles_abbreviations() -> None:
    text = "Dr. Smith uses ragline v2.6.0, e.g. The CLI. J. Bach wrote 3.5 songs. Done! Next."
    spans = sentences._regex_sentence_spans(text)
    assert [text[s:e].strip() for s, e in spans] == [
        "Dr. Smith uses ragline v2.6.0, e.g. The CLI.",
        "J. Bach wrote 3.5 songs.",
        "Done!",
        "Next.",
    ]


# -- chunking ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_splits_at_topic_boundaries(chunker_cls, embedder, tokenize) -> None:
    text, starts, true = _topic_document([REFUNDS, SSO, FAILOVER])
    chunker = chunker_cls(embedder.embed, tokenize)
    chunks = chunker.chunk(Document("kb/topics.md", text, {"region": "eu"}))
    predicted = _boundaries(text, [c.text for c in chunks], starts)
    assert len(predicted) == len(true)
    assert all(abs(p - t) <= 1 for p, t in zip(predicted, true, strict=True)), (predicted, true)
    _assert_covers(text, [c.text for c in chunks])
    assert all(len(tokenize(c.text)) <= 256 for c in chunks)
    for index, chunk in enumerate(chunks):
        assert chunk.doc_id == "kb/topics.md"
        assert chunk.id == chunk_id("kb/topics.md", index, chunk.text)
        assert chunk.metadata == {"region": "eu", "chunk_index": index, "chunker": chunker.name}


def test_boundary_f1_against_llama_index_baseline(embedder, tokenize, embedder_dir) -> None:
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.node_parser import SemanticSplitterNodeParser
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    baseline = SemanticSplitterNodeParser(embed_model=HuggingFaceEmbedding(model_name=str(embedder_dir), device="cpu"))
    splitters: dict[str, Callable[[str], list[str]]] = {
        chunker.name: (lambda text, chunker=chunker: [c.text for c in chunker.chunk(Document("d", text))])
        for chunker in (cls(embedder.embed, tokenize) for cls in CHUNKERS)
    }
    splitters["llama-index SemanticSplitter"] = lambda text: [
        node.get_content() for node in baseline.get_nodes_from_documents([LlamaDocument(text=text)])
    ]
    scores = {}
    for name, split in splitters.items():
        per_document = []
        for blocks in TOPIC_DOCUMENTS:
            text, starts, true = _topic_document(blocks)
            per_document.append(boundary_f1(_boundaries(text, split(text), starts), true))
        scores[name] = per_document
        print(f"boundary F1 (±1 sentence) {name:30s} {np.round(per_document, 2)} mean {np.mean(per_document):.2f}")
    baseline_mean = np.mean(scores.pop("llama-index SemanticSplitter"))
    for name, per_document in scores.items():
        assert min(per_document) >= 0.8, (name, per_document)
        assert np.mean(per_document) >= baseline_mean, (name, per_document, baseline_mean)


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_token_cap_holds_and_long_units_are_cut(chunker_cls, embedder, tokenize) -> None:
    run_on = " ".join(["the replica streams the log and the standby replays it"] * 12)  # one sentence, ~130 tokens
    fence = "```python\n" + "\n".join(f"value_{i} = compute({i}, retries=3)" for i in range(12)) + "\n```"
    text = " ".join(REFUNDS) + "\n" + run_on + ".\n" + fence + "\n" + " ".join(SSO)
    chunks = chunker_cls(embedder.embed, tokenize, max_tokens=48, min_tokens=8).chunk(Document("cap.md", text))
    sizes = [len(tokenize(c.text)) for c in chunks]
    assert max(sizes) <= 48, sizes
    assert len(chunks) >= 6
    _assert_covers(text, [c.text for c in chunks])


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_code_fences_stay_intact(chunker_cls, embedder, tokenize) -> None:
    fence = "```yaml\n# Failover settings. Do not edit.\nttl: 30\nloop_wait: 10\nretry_timeout: 10\n```"
    text = " ".join(FAILOVER[:2]) + "\nThe Patroni configuration:\n" + fence + "\n" + " ".join(REFUNDS)
    chunks = chunker_cls(embedder.embed, tokenize, max_tokens=96).chunk(Document("fence.md", text))
    assert sum(fence in c.text for c in chunks) == 1
    assert all(c.text.count("```") % 2 == 0 for c in chunks)
    _assert_covers(text, [c.text for c in chunks])


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_headings_lead_their_chunk(chunker_cls, embedder, tokenize) -> None:
    text = "## Refunds\n" + " ".join(REFUNDS) + "\n## Single sign-on\n" + " ".join(SSO)
    chunks = chunker_cls(embedder.embed, tokenize).chunk(Document("h.md", text))
    assert [c.text.splitlines()[0] for c in chunks] == ["## Refunds", "## Single sign-on"]


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_ids_are_deterministic_and_one_embed_call(chunker_cls, embedder, tokenize) -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return embedder.embed(texts)

    text = _topic_document([VACATION, GPU, INVOICES])[0]
    chunker = chunker_cls(embed, tokenize)
    first = chunker.chunk(Document("hr/topics.txt", text))
    second = chunker.chunk(Document("hr/topics.txt", text))
    assert [(c.id, c.text) for c in first] == [(c.id, c.text) for c in second]
    assert len({c.id for c in first}) == len(first)
    assert calls == [split_sentences(text)] * 2


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_empty_and_one_sentence_documents(chunker_cls, embedder, tokenize) -> None:
    chunker = chunker_cls(embedder.embed, tokenize)
    assert chunker.chunk(Document("empty.md", "")) == []
    assert chunker.chunk(Document("blank.md", "  \n\n ")) == []
    [chunk] = chunker.chunk(Document("one.md", "  Refunds take five days.\n", {"lang": "en"}))
    assert chunk.text == "Refunds take five days."
    assert chunk.id == chunk_id("one.md", 0, chunk.text)
    assert chunk.metadata == {"lang": "en", "chunk_index": 0, "chunker": chunker.name}


def _dummy_embed(texts: list[str]) -> np.ndarray:
    return np.ones((len(texts), 4), dtype=np.float32) / 2


def _dummy_tokenize(text: str) -> list[int]:
    return list(range(len(text.split())))


@pytest.mark.parametrize(
    ("chunker_cls", "kwargs", "argument"),
    [
        (MaxMinSemanticChunker, {"max_tokens": 0}, "max_tokens"),
        (ClusterSemanticChunker, {"max_tokens": -5}, "max_tokens"),
        (MaxMinSemanticChunker, {"max_tokens": 64.0}, "max_tokens"),
        (ClusterSemanticChunker, {"max_tokens": True}, "max_tokens"),
        (MaxMinSemanticChunker, {"max_tokens": 64, "min_tokens": 64}, "min_tokens"),
        (ClusterSemanticChunker, {"min_tokens": -1}, "min_tokens"),
        (MaxMinSemanticChunker, {"initial_threshold": 1.5}, "initial_threshold"),
        (MaxMinSemanticChunker, {"hard_threshold": float("nan")}, "hard_threshold"),
        (MaxMinSemanticChunker, {"c_scale": 0}, "c_scale"),
        (ClusterSemanticChunker, {"pair_penalty": -2.0}, "pair_penalty"),
        (ClusterSemanticChunker, {"pair_penalty": "0.1"}, "pair_penalty"),
    ],
)
def test_bad_arguments_raise(chunker_cls, kwargs, argument) -> None:
    with pytest.raises(ValueError, match=argument):
        chunker_cls(_dummy_embed, _dummy_tokenize, **kwargs)


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_bad_callables_raise(chunker_cls) -> None:
    with pytest.raises(ValueError, match="embed"):
        chunker_cls(None, _dummy_tokenize)
    with pytest.raises(ValueError, match="tokenize"):
        chunker_cls(_dummy_embed, "tokenizer.json")


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_embed_returning_the_wrong_shape_raises(chunker_cls) -> None:
    chunker = chunker_cls(lambda texts: np.ones((1, 4)), _dummy_tokenize)
    with pytest.raises(ValueError, match="embed returned"):
        chunker.chunk(Document("d", "One sentence here. Another sentence there."))


# -- the rules, with controlled vectors ------------------------------------------------------------------------------


def _fixed_embed(vectors: dict[str, list[float]]) -> Callable[[list[str]], np.ndarray]:
    return lambda texts: np.array([vectors[t] for t in texts], dtype=np.float64)


def _unit_vector(similarity_to_x: float, y_sign: float = 1.0) -> list[float]:
    return [similarity_to_x, y_sign * float(np.sqrt(1 - similarity_to_x**2)), 0.0]


def test_max_min_rule() -> None:
    # A and B: cos 0.5 >= initial 0.25, so B joins. C: max cos to {A, B} is 0.6, but the chunk is cohesive
    # (min 0.5): threshold max(0.7 * 0.5 * sigmoid(2), 0.3) = 0.308, so C joins. D is orthogonal to all: new chunk.
    vectors = {
        "Alpha one.": [1.0, 0.0, 0.0],
        "Beta two.": _unit_vector(0.5),
        "Gamma three.": _unit_vector(0.6, -1.0),
        "Delta four.": [0.0, 0.0, 1.0],
    }
    chunker = MaxMinSemanticChunker(_fixed_embed(vectors), _dummy_tokenize, min_tokens=0)
    chunks = chunker.chunk(Document("d", " ".join(vectors)))
    assert [c.text for c in chunks] == ["Alpha one. Beta two. Gamma three.", "Delta four."]
    floored = MaxMinSemanticChunker(_fixed_embed(vectors), _dummy_tokenize, min_tokens=3)
    [merged] = floored.chunk(Document("d", " ".join(vectors)))  # "Delta four." is 2 tokens: merged backwards
    assert merged.text == " ".join(vectors)
    strict = MaxMinSemanticChunker(_fixed_embed(vectors), _dummy_tokenize, min_tokens=0, initial_threshold=0.55)
    assert len(strict.chunk(Document("d", " ".join(vectors)))) == 4  # B no longer joins A, nor C joins B (cos < 0)

    # A very cohesive chunk raises the bar: {A, B} at cos 0.95 gives max(0.7 * 0.95 * sigmoid(2), 0.3) = 0.585, so C
    # at 0.5 starts a new chunk although 0.5 clears the hard threshold.
    vectors["Beta two."] = _unit_vector(0.95)
    vectors["Gamma three."] = _unit_vector(0.5, -1.0)
    chunks = chunker.chunk(Document("d", " ".join(vectors)))
    assert [c.text for c in chunks] == ["Alpha one. Beta two.", "Gamma three.", "Delta four."]


def test_cluster_dp_is_optimal() -> None:
    rng = np.random.default_rng(7)
    n = 9
    texts = [f"Sentence number {i} {'word ' * int(rng.integers(1, 6))}ends." for i in range(n)]
    centers = rng.normal(size=(3, 8))
    raw = np.array([centers[i * 3 // n] + 0.9 * rng.normal(size=8) for i in range(n)])
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    vectors = dict(zip(texts, raw.tolist(), strict=True))
    max_tokens = 24
    chunker = ClusterSemanticChunker(_fixed_embed(vectors), _dummy_tokenize, max_tokens=max_tokens, min_tokens=0)
    text = " ".join(texts)
    chunks = [c.text for c in chunker.chunk(Document("d", text))]

    sims = raw @ raw.T
    penalty = (sims.sum() - n) / (n * (n - 1))

    def score(segments: list[tuple[int, int]]) -> float:
        return sum(sims[a, b] - penalty for s, e in segments for a in range(s, e + 1) for b in range(a + 1, e + 1))

    def fits(s: int, e: int) -> bool:
        return len(_dummy_tokenize(" ".join(texts[s : e + 1]))) <= max_tokens

    best = -np.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0] + [k + 1 for k, cut in enumerate(cuts) if cut] + [n]
        segments = [(bounds[i], bounds[i + 1] - 1) for i in range(len(bounds) - 1)]
        if all(fits(s, e) for s, e in segments):
            best = max(best, score(segments))
    starts = [text.index(t) for t in texts]
    found = [0, *_boundaries(text, chunks, starts), n]
    assert score([(found[i], found[i + 1] - 1) for i in range(len(found) - 1)]) == pytest.approx(best)
    assert all(len(_dummy_tokenize(c)) <= max_tokens for c in chunks)


@pytest.mark.parametrize("chunker_cls", CHUNKERS)
def test_cap_is_checked_with_the_real_count(chunker_cls) -> None:
    # A tokenizer where a text costs more than its parts: sizes estimated from per-sentence counts fall short,
    # and the exact check must re-pack the chunks.
    def superadditive(text: str) -> list[int]:
        words = len(text.split())
        return list(range(words + words * words // 8))

    text = " ".join(f"Sentence {i} is short." for i in range(12))
    chunker = chunker_cls(_dummy_embed, superadditive, max_tokens=20, min_tokens=0)
    chunks = [c.text for c in chunker.chunk(Document("d", text))]
    assert all(len(superadditive(c)) <= 20 for c in chunks)
    _assert_covers(text, chunks)
