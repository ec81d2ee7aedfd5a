"""The LlamaIndex fusion baseline: real LlamaIndex BM25 + Chroma + local MiniLM, fused by reciprocal rank, no LLM."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.baselines.llamaindex_fusion import LlamaIndexFusionBaseline

# LlamaIndex and the embedder load lazily, in the fixtures, so this is set before any model is opened.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
TOP_K = 20

TEXTS = {
    "astro-1": "The Hubble Space Telescope was launched in 1990 aboard the shuttle Discovery.",
    "astro-2": "Jupiter's Great Red Spot is a storm larger than Earth that has raged for centuries.",
    "astro-3": "A light-year is the distance light travels in one year, about 9.46 trillion kilometres.",
    "astro-4": "Neutron stars are so dense that a teaspoon of their matter would weigh billions of tonnes.",
    "astro-5": "The Voyager 1 probe crossed into interstellar space in August 2012.",
    "bio-1": "Mitochondria produce most of the chemical energy a cell needs, stored as ATP.",
    "bio-2": "Tardigrades survive freezing, boiling and the vacuum of space by entering a dormant state.",
    "bio-3": "Honeybees communicate the location of flowers to their hive mates with a waggle dance.",
    "bio-4": "The octopus has three hearts and blue, copper-based blood.",
    "bio-5": "Photosynthesis converts sunlight, water and carbon dioxide into glucose and oxygen.",
    "cook-1": "Sourdough bread rises thanks to wild yeast and lactic acid bacteria in the starter.",
    "cook-2": "Searing meat at high heat browns it through the Maillard reaction.",
    "cook-3": "Risotto is made by slowly adding hot stock to arborio rice while stirring.",
    "cook-4": "Tempering chocolate aligns its cocoa butter crystals so it snaps and shines.",
    "cook-5": "Kimchi is fermented napa cabbage seasoned with chili, garlic and ginger.",
    "hist-1": "The Rosetta Stone, found in 1799, allowed scholars to decipher Egyptian hieroglyphs.",
    "hist-2": "The printing press of Johannes Gutenberg spread movable type across Europe around 1450.",
    "hist-3": "The Great Wall of China was built and rebuilt over many dynasties to repel invaders.",
    "hist-4": "The Apollo 11 mission landed the first humans on the Moon in July 1969.",
    "hist-5": "The Silk Road linked China with the Mediterranean through a web of caravan routes.",
    "ops-1": "Error ERR-4417 means the ingestion worker lost its lease on the job queue.",
    "ops-2": "Set RAGLINE_MAX_WORKERS to cap how many ingestion processes run in parallel.",
    "ops-3": "The nightly backup job writes snapshots to the bucket named archive-cold-07.",
    "ops-4": "Rotate the TLS certificates on the gateway before they expire every ninety days.",
    "ops-5": "Incident INC-20931 was caused by a full disk on the primary database host.",
    "sport-1": "A marathon covers 42.195 kilometres, a distance fixed at the 1908 London Olympics.",
    "sport-2": "In tennis, a score of forty-forty is called deuce.",
    "sport-3": "Cricket test matches can last up to five days and still end in a draw.",
    "sport-4": "The Tour de France is a multi-stage bicycle race held mostly in July.",
    "sport-5": "A chess grandmaster title is awarded by FIDE for strong results in rated tournaments.",
    "geo-1": "Lake Baikal in Siberia is the deepest freshwater lake on the planet.",
    "geo-2": "The Atacama Desert in Chile is one of the driest places on Earth.",
    "geo-3": "Mount Everest rises 8,849 metres above sea level on the Nepal-China border.",
    "geo-4": "The Amazon river carries more water than any other river in the world.",
    "geo-5": "Iceland sits on the Mid-Atlantic Ridge, where two tectonic plates pull apart.",
    "music-1": "A piano has 88 keys spanning a little over seven octaves.",
    "music-2": "Beethoven composed his Ninth Symphony after he had become almost completely deaf.",
    "music-3": "The blues developed in the American Deep South from work songs and spirituals.",
    "music-4": "A string quartet consists of two violins, a viola and a cello.",
    "music-5": "Vinyl records store sound as a continuous groove cut into the disc.",
    "tech-1": "Python lists are dynamic arrays that grow by over-allocating memory.",
    "tech-2": "A Bloom filter answers set membership with no false negatives but some false positives.",
    "tech-3": "TCP guarantees ordered delivery by numbering every byte it sends.",
    "tech-4": "Git stores each commit as a snapshot that points to its parent commits.",
    "tech-5": "HNSW graphs make approximate nearest neighbour search fast in high dimensions.",
    "home-1": "Bleed the radiators in autumn so trapped air does not stop them heating.",
    "home-2": "Houseplants with yellowing leaves are often being watered too much.",
    "home-3": "A dripping tap usually needs a new washer rather than a new tap.",
    "home-4": "Descale the kettle with vinegar when white limescale builds up inside.",
    "home-5": "Keep the freezer at minus eighteen degrees Celsius to store food safely.",
}
IDS = list(TEXTS)


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("the baseline must not touch an LLM")


@pytest.fixture(scope="module")
def persist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llamaindex")


@pytest.fixture(scope="module")
def baseline(embedder_dir: Path, persist_dir: Path) -> Iterator[LlamaIndexFusionBaseline]:
    from llama_index.core import Settings
    from llama_index.core.retrievers import QueryFusionRetriever

    # Any route to an LLM fails the build or the queries: the global default LLM and query generation.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(Settings), "llm", property(_forbidden))
        patch.setattr(QueryFusionRetriever, "_get_queries", _forbidden)
        patch.setattr(QueryFusionRetriever, "_aget_queries", _forbidden)
        built = LlamaIndexFusionBaseline(embedder_dir, persist_dir, top_k=TOP_K)
        built.build(IDS, [TEXTS[i] for i in IDS])
        yield built


def test_lexical_query_finds_the_exact_identifier(baseline: LlamaIndexFusionBaseline) -> None:
    assert baseline.retrieve("ERR-4417", k=5)[0][0] == "ops-1"
    assert baseline.retrieve("what happened in INC-20931", k=5)[0][0] == "ops-5"


def test_paraphrase_query_finds_the_meaning(baseline: LlamaIndexFusionBaseline) -> None:
    # Shares only "first" with the target (no Moon, humans, Apollo, landed): the dense side carries it.
    assert baseline.retrieve("first people to walk on the lunar surface", k=5)[0][0] == "hist-4"


def test_results_are_at_most_k_distinct_ids_with_descending_scores(baseline: LlamaIndexFusionBaseline) -> None:
    for k in (1, 7, TOP_K):
        results = baseline.retrieve("how do bees tell each other where flowers are", k=k)
        assert 1 <= len(results) <= k
        ids = [doc_id for doc_id, _ in results]
        assert len(set(ids)) == len(ids)
        assert set(ids) <= set(IDS)
        scores = [score for _, score in results]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(score, float) and score > 0 for score in scores)
    with pytest.raises(ValueError, match="top_k"):
        baseline.retrieve("bees", k=TOP_K + 1)


def test_fusion_is_reciprocal_rank_over_one_query_without_llm(baseline: LlamaIndexFusionBaseline) -> None:
    fusion = baseline.fusion_retriever
    assert fusion.num_queries == 1
    assert fusion.mode == "reciprocal_rerank"
    # llm=None would resolve Settings.llm (OpenAI); the baseline passes a stand-in that refuses every call.
    with pytest.raises(RuntimeError, match="no LLM"):
        fusion._llm.complete("write three search queries")


def test_each_text_is_one_node_persisted_with_explicit_embeddings(persist_dir: Path, baseline: object) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        path=str(persist_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    (collection,) = client.list_collections()
    stored = collection.get(include=["documents", "embeddings"])
    assert sorted(stored["ids"]) == sorted(IDS)
    assert dict(zip(stored["ids"], stored["documents"], strict=True)) == TEXTS
    assert stored["embeddings"].shape == (len(IDS), 384)


def test_build_validates_input(embedder_dir: Path, tmp_path: Path) -> None:
    baseline = LlamaIndexFusionBaseline(embedder_dir, tmp_path)
    with pytest.raises(ValueError, match="unique"):
        baseline.build(["a", "a"], ["x", "y"])
    with pytest.raises(ValueError, match="texts"):
        baseline.build(["a"], ["x", "y"])
    with pytest.raises(RuntimeError, match="build"):
        baseline.retrieve("x", k=1)


def test_missing_package_names_what_to_install(
    embedder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_index.retrievers.bm25", None)
    with pytest.raises(ImportError, match="pip install llama-index-retrievers-bm25"):
        LlamaIndexFusionBaseline(embedder_dir, tmp_path).build(["a"], ["x"])


def test_importing_the_module_does_not_import_llama_index() -> None:
    code = "import sys, eval.baselines.llamaindex_fusion; print(any(m.startswith('llama_index') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
