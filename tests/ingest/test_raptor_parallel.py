"""RAPTOR trees of several documents built at once by the ingestion job, against a real vLLM server."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.llm import OpenAICompatibleGenerator
from app.text_generator import VLLMTextGenerator
from app.vllm_server import VLLMServer
from ingest.chunkers.fixed import FixedSizeChunker, load_token_counter
from ingest.chunkers.raptor import RaptorChunker
from ingest.document import Document
from ingest.job import ingest_documents
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import Index

FACTS = {
    "harbour": [
        "The Kestrel Bay harbour handles 2.1 million tonnes of cargo a year across nine berths.",
        "Berth 4 was deepened to 14 metres in 2022 so that bulk carriers of 80,000 tonnes can dock.",
        "Harbour master Elin Sato schedules pilot boats from the north mole at 06:00 and 18:00.",
        "Tugs KB-1 and KB-2 are required for every vessel longer than 180 metres entering the basin.",
        "Dredging spoil goes to the licensed disposal site DS-12, eleven kilometres offshore.",
        "The grain terminal on berth 7 loads 1,200 tonnes an hour through two travelling shiploaders.",
        "Storm gate SG-3 closes when the forecast surge exceeds 1.8 metres above chart datum.",
        "Harbour dues rose by 4 percent in April 2024, the first increase since 2019.",
    ],
    "orchard": [
        "The Velden orchard grows 3,400 apple trees of the varieties Elstar, Boskoop and Topaz.",
        "Trees are planted on M9 rootstock in rows 3.5 metres apart with 0.9 metres between trees.",
        "Grower Pieter Aalst prunes in February and thins fruitlets by hand in early June.",
        "Codling moth traps are read every Monday; above five moths a week the block is sprayed.",
        "Harvest of Elstar starts in the second week of September and takes about twelve days.",
        "The cold store keeps apples at 1 degree Celsius and 2 percent oxygen until March.",
        "Hail nets cover the Topaz block since a storm destroyed 40 percent of the crop in 2021.",
        "Bees from twenty hives rented from a local keeper pollinate the orchard each April.",
    ],
    "observatory": [
        "The Marlow observatory houses a 1.2 metre reflecting telescope built in 1968.",
        "Its dome rotates on 36 steel wheels and opens a slit 2.4 metres wide.",
        "Astronomer Dr. Ruth Okoye leads a survey of eclipsing binary stars in the Cygnus field.",
        "The CCD camera is cooled to minus 100 degrees Celsius with a closed-cycle cryocooler.",
        "Observing nights are lost when relative humidity rises above 85 percent.",
        "Public open evenings run on the first Friday of each month from October to March.",
        "A new spectrograph, MOS-2, was installed in 2023 with a resolving power of 20,000.",
        "The site lies 640 metres above sea level, away from the light of the nearest town.",
    ],
}


class ConcurrencyProbe(VLLMTextGenerator):
    """The real vLLM generator, recording the most ``complete`` calls that were in progress at the same time."""

    def __init__(self, generator: OpenAICompatibleGenerator) -> None:
        super().__init__(generator)
        self.active = 0
        self.peak = 0
        self._probe_lock = threading.Lock()

    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        with self._probe_lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return super().complete(prompts, max_tokens=max_tokens)
        finally:
            with self._probe_lock:
                self.active -= 1


def test_parallel_documents_must_be_positive(generator_dir: Path) -> None:
    leaves = FixedSizeChunker(load_token_counter(generator_dir), chunk_size=60, chunk_overlap=0)
    with pytest.raises(ValueError, match="parallel_documents"):
        RaptorChunker(leaves, lambda texts: None, None, parallel_documents=0)  # type: ignore[arg-type]


@pytest.mark.vllm
def test_the_job_builds_several_documents_trees_at_once(
    tmp_path: Path, embedder_dir: Path, generator_dir: Path, vllm_server: VLLMServer
) -> None:
    embedder = SentenceTransformerEmbedder(embedder_dir)
    leaves = FixedSizeChunker(load_token_counter(generator_dir), chunk_size=60, chunk_overlap=0)
    # A generous timeout: the point is concurrency, and a vLLM shared with other work can be slow to answer.
    llm = OpenAICompatibleGenerator(vllm_server.base_url, "qwen2.5-coder-0.5b", timeout_s=900)
    generator = ConcurrencyProbe(llm)
    chunker = RaptorChunker(leaves, embedder.embed, generator, summary_tokens=48, parallel_documents=3)
    documents = [Document(f"{topic}.md", " ".join(sentences)) for topic, sentences in FACTS.items()]
    index = Index(tmp_path / "data", embedder)

    summary = ingest_documents(index, chunker, documents, "raptor", batch_documents=3, progress=False)

    assert not summary.failed and len(summary.added) == 3
    assert generator.peak >= 2, "documents' summaries were requested one document at a time"
    chunks = index.manifest.chunks("raptor")
    summaries = [c for c in chunks if c.level > 0]
    assert {c.doc_id for c in summaries} == {d.doc_id for d in documents}, "every document got its own tree"
    assert generator.calls == len(summaries)
    for chunk in chunks:
        if chunk.parent_id is not None:
            parent = next(c for c in chunks if c.id == chunk.parent_id)
            assert parent.doc_id == chunk.doc_id, "a tree never crosses documents"
    counts = index.counts("raptor")
    assert counts.consistent and counts.chunks == len(chunks)
