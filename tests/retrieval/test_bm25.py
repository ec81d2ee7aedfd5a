"""BM25 served by bm25s, checked against rank-bm25 (the reference implementation) and the Lucene formula."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from ingest.loaders import discover, load_document
from ingest.samples import sample_corpus_dir
from retrieval.bm25 import BM25Config, BM25Index
from retrieval.tokenize import Tokenizer, TokenizerConfig

QUERIES = [
    "refund window for EU customers",
    "ERR-4012 gateway token expired",
    "webhook signature header X-NW-Signature",
    "data retention period for invoices",
    "single sign-on SAML setup",
    "rate limit POST /v2/invoices",
]


@pytest.fixture(scope="module")
def passages() -> list[str]:
    root = sample_corpus_dir()
    texts = [load_document(path, root).text for path in discover(root)]
    return [p.strip() for text in texts for p in text.split("\n\n") if len(p.split()) >= 5]


def test_same_top10_and_scores_as_rank_bm25(passages: list[str]) -> None:
    config = BM25Config(method="robertson", k1=1.5, b=0.75)
    tokenize = Tokenizer(config.tokenizer)
    ids = [str(i) for i in range(len(passages))]
    ours = BM25Index.build(ids, passages, config, dtype="float64")
    reference = BM25Okapi([tokenize(p) for p in passages], k1=1.5, b=0.75)
    n_docs = len(passages)
    for query in QUERIES:
        terms = tokenize(query)
        document_frequency = {t: sum(t in set(tokenize(p)) for p in passages) for t in terms}
        assert all(df < n_docs / 2 for df in document_frequency.values()), "negative IDF: variants differ by design"
        expected = reference.get_scores(terms)
        top_scores = [s for s in sorted(expected, reverse=True)[:10] if s > 0]
        got = ours.search(query, k=10)
        # rank-bm25 multiplies every term score by (k1 + 1); bm25s's Robertson variant omits that constant.
        got_scores = [score * (1.5 + 1) for _, score in got]
        assert got_scores == pytest.approx(top_scores, abs=1e-6)  # same ranking, ties aside
        for chunk_id, score in zip([c for c, _ in got], got_scores, strict=True):
            assert score == pytest.approx(expected[int(chunk_id)], abs=1e-6)  # same document at each rank


def test_lucene_variant_matches_its_formula() -> None:
    texts = ["alpha beta beta", "beta gamma", "gamma gamma delta epsilon", "alpha"]
    config = BM25Config(method="lucene", k1=1.2, b=0.75, tokenizer=TokenizerConfig(stopwords=None))
    index = BM25Index.build(["a", "b", "c", "d"], texts, config, dtype="float64")
    docs = [t.split() for t in texts]
    avgdl = sum(map(len, docs)) / len(docs)

    def lucene(term: str, doc: list[str]) -> float:
        df = sum(term in d for d in docs)
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        tf = doc.count(term)
        return idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * len(doc) / avgdl))

    for query in ["beta", "gamma delta", "alpha beta"]:
        expected = {i: sum(lucene(t, d) for t in query.split()) for i, d in zip("abcd", docs, strict=True)}
        for chunk_id, score in index.search(query, k=4):
            assert score == pytest.approx(expected[chunk_id], abs=1e-9)


def test_identifiers_stay_findable() -> None:
    texts = [
        "Runbook for ERR-4012: the gateway token expired; rotate it.",
        "Error 4012 bytes were written by the err logger.",
        "See RFC 2616 for HTTP/1.1 caching rules.",
        "HTTP caching is described in many RFC documents, e.g. RFC 7231.",
    ]
    index = BM25Index.build(["err4012", "noise", "rfc2616", "rfc7231"], texts)
    assert index.search("ERR-4012", k=2)[0][0] == "err4012"
    assert index.search("RFC 2616", k=2)[0][0] == "rfc2616"


def test_mask_restricts_rows_before_scoring() -> None:
    index = BM25Index.build(["a", "b", "c"], ["refund policy EU", "refund policy US", "sso setup"])
    hits = index.search("refund policy", k=3, mask=np.array([0, 1, 0], dtype=np.float32))
    assert [chunk_id for chunk_id, _ in hits] == ["b"]


def test_save_load_roundtrip_and_unknown_terms(tmp_path: Path) -> None:
    index = BM25Index.build(["a", "b"], ["refund policy EU", "sso setup guide"])
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded is not None and loaded.fingerprint == index.fingerprint and loaded.config == index.config
    assert loaded.search("sso guide", k=2)[0][0] == "b"
    assert loaded.search("zzzz unknown", k=2) == []
    assert loaded.search("the and of", k=2) == []


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        BM25Config(method="okapi-ish")
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        BM25Config(b=2.0)
