"""The chunker factory builds each strategy from settings; switching strategy re-chunks a collection."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.chunking import make_chunker
from app.ingestion import ingest_from_path
from app.llm import LLMUnavailableError
from app.resources import Resources
from app.vllm_server import VLLMServer, free_port
from ingest.samples import sample_corpus_dir


@pytest.fixture
def resources(tmp_path: Path, settings_for, embedder_dir: Path, generator_dir: Path) -> Resources:
    dead_llm = f"http://127.0.0.1:{free_port()}/v1"
    return Resources(settings_for(tmp_path / "data", chunk_size=128, chunk_overlap=16, llm_base_url=dead_llm))


@pytest.mark.parametrize("name", ["fixed", "semantic", "semantic-cluster"])
def test_factory_builds_each_chunker_with_a_signature(resources: Resources, name: str) -> None:
    chunker = make_chunker(resources, name)
    assert chunker.name == name
    assert name in chunker.signature


def test_raptor_fails_fast_without_a_reachable_llm(resources: Resources) -> None:
    with pytest.raises(LLMUnavailableError, match="ragline llm serve"):
        make_chunker(resources, "raptor")


@pytest.mark.vllm
def test_raptor_is_built_against_the_live_llm(resources: Resources, vllm_server: VLLMServer) -> None:
    resources.settings = resources.settings.model_copy(update={"llm_base_url": vllm_server.base_url})
    chunker = make_chunker(resources, "raptor")
    assert chunker.name == "raptor" and "raptor" in chunker.signature


def test_unknown_chunker_names_the_choices(resources: Resources) -> None:
    with pytest.raises(ValueError, match="fixed, semantic, semantic-cluster, raptor"):
        make_chunker(resources, "sentences")


def test_switching_chunker_rechunks_every_document(resources: Resources, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_corpus_dir() / "runbooks", corpus)
    first = ingest_from_path(resources, make_chunker(resources, "fixed"), corpus, "c", progress=False)
    again = ingest_from_path(resources, make_chunker(resources, "fixed"), corpus, "c", progress=False)
    semantic = ingest_from_path(resources, make_chunker(resources, "semantic"), corpus, "c", progress=False)
    assert len(first.added) == 6 and len(again.skipped) == 6
    assert len(semantic.updated) == 6
    chunks = resources.index.manifest.chunks("c")
    assert {c.metadata.get("chunker") for c in chunks} == {"semantic"}
    assert resources.index.counts("c").consistent
