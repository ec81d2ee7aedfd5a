"""RAPTOR summary trees against the real stack: MiniLM embeddings, the Qwen tokenizer, a real vLLM server."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.llm import OpenAICompatibleGenerator
from app.text_generator import VLLMTextGenerator
from app.vllm_server import VLLMServer
from ingest.chunkers.fixed import FixedSizeChunker, load_token_counter
from ingest.chunkers.raptor import RaptorChunker
from ingest.document import Document
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.protocols import TextGenerationError
from retrieval.types import Chunk

pytestmark = pytest.mark.vllm

WATER = [
    "The Brennholt water treatment plant, asset code WTP-0417, draws raw water from the Lissel river at an intake "
    "rated for 84,000 cubic metres per day. Coagulation uses aluminium sulphate dosed at 32 mg/L, followed by "
    "flocculation in four serpentine basins with a combined hydraulic retention time of 38 minutes.",
    "After flocculation, water at WTP-0417 passes through six dual-media filters of anthracite over sand. Each "
    "filter is backwashed when head loss reaches 2.4 metres or after 72 hours of service, whichever comes first. "
    "Turbidity leaving the filters must stay below 0.15 NTU, and operator Ilse Varga signs the daily filter log.",
    "Disinfection at the Brennholt plant is done with sodium hypochlorite in a contact tank of 2,900 cubic metres. "
    "The target free chlorine residual at the plant outlet is 0.8 mg/L. If the residual falls below 0.5 mg/L for "
    "more than 15 minutes, the SCADA alarm CL-LOW-3 pages the duty engineer and the outlet valve V-22 closes.",
    "Sludge from the WTP-0417 clarifiers is thickened to 4 percent solids and dewatered on belt presses. The plant "
    "produced 1,260 tonnes of dewatered sludge in 2023, which was trucked to the Osterfeld composting site under "
    "permit EP-88-219. Chemical deliveries of aluminium sulphate arrive every nine days by tanker.",
]
BREAD = [
    "A rye sourdough starter is fed once a day with equal weights of whole rye flour and water at 26 degrees "
    "Celsius. A healthy starter doubles in volume within six hours and smells sour and fruity. Baker Tomasz Wielgus "
    "keeps his culture, which he calls Matka, in a stoneware crock that has not been washed since 1998.",
    "For a classic Borodinsky loaf, the scald is made by pouring 300 grams of boiling water over 100 grams of rye "
    "malt and 150 grams of rye flour, then holding it at 63 degrees for three hours. The scald turns sweet and dark "
    "as enzymes convert starch to sugar, and ground coriander seed is stirred in when it cools.",
    "The final rye dough is far wetter than a wheat dough and cannot be kneaded; it is mixed with a wet hand and "
    "scraped into greased tin pans. Proofing takes about 90 minutes, until small cracks appear on the surface. "
    "Wielgus sprinkles whole coriander seeds on top before the tins go into the oven.",
    "Rye loaves bake at 250 degrees for the first ten minutes and at 200 degrees for a further 60 minutes. The "
    "bread must rest wrapped in linen for at least 24 hours before slicing, because the crumb keeps setting as it "
    "cools; cutting it early leaves a gummy, sticky interior that no toaster can rescue.",
]
SPACE = [
    "The Halcyon-3 probe was launched on 14 March 2027 from the Kourou spaceport on a Vega-C rocket. Its mission "
    "is to map the ice deposits in the permanently shadowed craters near the lunar south pole. The spacecraft has "
    "a dry mass of 412 kilograms and carries a neutron spectrometer named NESS built by Dr. Amara Okafor's team.",
    "Halcyon-3 entered a polar lunar orbit at an altitude of 100 kilometres after a transfer of 96 days using a "
    "low-thrust xenon ion engine. The orbit precesses slowly, so the ground track covers every crater within 85 "
    "degrees south latitude once every 28 days. Telemetry is downlinked at 2 megabits per second in the X band.",
    "The NESS instrument counts epithermal neutrons escaping the lunar surface; hydrogen in water ice absorbs these "
    "neutrons, so a dip in the count marks likely ice. In its first year Halcyon-3 found a neutron deficit of 9 "
    "percent over the Shackleton crater, consistent with about 1.5 percent water ice by weight in the regolith.",
    "Halcyon-3 also carries a laser altimeter, LAHX, which fires 28 pulses per second and measures crater depths "
    "to within 10 centimetres. Mission control at Darmstadt plans to lower the orbit to 30 kilometres in 2029 for "
    "a final high-resolution campaign before the probe is deliberately crashed into the crater Faustini.",
]
TOPICS = {"water": WATER, "bread": BREAD, "space": SPACE}
# Interleaved, so that the topics cannot be read off the order of the chunks: only the embeddings tell them apart.
THREE_TOPICS = "\n\n".join(p for triple in zip(WATER, BREAD, SPACE, strict=True) for p in triple)


def topic_of(text: str) -> str:
    (topic,) = [name for name, paragraphs in TOPICS.items() if any(text.strip()[:60] in p for p in paragraphs)]
    return topic


class RecordingGenerator(VLLMTextGenerator):
    """The real vLLM generator, remembering how many prompts each ``complete`` call carried."""

    def __init__(self, generator: OpenAICompatibleGenerator) -> None:
        super().__init__(generator)
        self.batch_sizes: list[int] = []
        self.answers: dict[str, str] = {}

    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        self.batch_sizes.append(len(prompts))
        answers = super().complete(prompts, max_tokens=max_tokens)
        self.answers.update(zip(prompts, answers, strict=True))
        return answers


class ReplayGenerator(RecordingGenerator):
    """A fake, named as one: it answers from a first build's real vLLM answers, and fails on any prompt that build
    did not send. The seed governs the clustering, not the model, so a second build that asks exactly the first
    build's prompts is what "the same seed gives the same tree" means; replaying saves a minute of CPU decoding."""

    def __init__(self, recorded: RecordingGenerator) -> None:
        super().__init__(recorded.generator)
        self.recorded = recorded.answers

    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        self.batch_sizes.append(len(prompts))
        unknown = [p for p in prompts if p not in self.recorded]
        assert not unknown, f"the second build asked what the first did not: {unknown[0][:200]!r}"
        return [self.recorded[p] for p in prompts]


@dataclass
class Run:
    chunks: list[Chunk]
    generator: RecordingGenerator
    seconds: float


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)


@pytest.fixture(scope="module")
def leaf_chunker(generator_dir: Path) -> FixedSizeChunker:
    return FixedSizeChunker(load_token_counter(generator_dir), chunk_size=100, chunk_overlap=0)


@pytest.fixture(scope="module")
def llm(vllm_server: VLLMServer) -> OpenAICompatibleGenerator:
    return OpenAICompatibleGenerator(vllm_server.base_url, "qwen2.5-coder-0.5b")


@pytest.fixture(scope="module")
def runs(embedder, leaf_chunker, llm) -> list[Run]:
    """The three-topic document chunked twice with the same seed: the first build asks the real vLLM, the second
    replays its answers (``ReplayGenerator``) and must ask the same prompts."""
    document = Document("notes/three-topics.md", THREE_TOPICS, {"source": "test"})
    out: list[Run] = []
    for _ in range(2):
        generator = ReplayGenerator(out[0].generator) if out else RecordingGenerator(llm)
        chunker = RaptorChunker(leaf_chunker, embedder.embed, generator, seed=0)
        started = time.perf_counter()
        chunks = chunker.chunk(document)
        out.append(Run(chunks, generator, time.perf_counter() - started))
    first = out[0]
    summaries = [c for c in first.chunks if c.level > 0]
    print(
        f"\nraptor: {sum(c.level == 0 for c in first.chunks)} leaves, {len(summaries)} summaries, "
        f"{first.generator.calls} LLM calls in {first.generator.batch_sizes} per level, {first.seconds:.1f} s"
    )
    for chunk in summaries:
        print(f"  L{chunk.level} {chunk.id}: {chunk.text[:160]!r}")
    return out


def shape(chunks: list[Chunk]) -> list[tuple[int, int | None, tuple[int, ...], tuple[int, ...]]]:
    """The tree with ids replaced by positions: (level, best parent, all parents, children) per chunk."""
    position = {c.id: i for i, c in enumerate(chunks)}

    def positions(ids: str) -> tuple[int, ...]:
        return tuple(position[i] for i in ids.split(",")) if ids else ()

    return [
        (
            c.level,
            position[c.parent_id] if c.parent_id else None,
            positions(c.metadata.get("parents", "")),
            positions(c.metadata.get("children", "")),
        )
        for c in chunks
    ]


@pytest.mark.long(160)  # seconds under two xdist workers, 2026-12-04
def test_leaves_and_summaries_form_a_tree(runs: list[Run]) -> None:
    chunks = runs[0].chunks
    by_id = {c.id: c for c in chunks}
    assert len(by_id) == len(chunks), "chunk ids must be unique"
    leaves = [c for c in chunks if c.level == 0]
    summaries = [c for c in chunks if c.level > 0]
    assert 10 <= len(leaves) <= 14
    assert all(c.metadata["chunker"] == "raptor" and c.doc_id == "notes/three-topics.md" for c in chunks)
    assert all(c.metadata["source"] == "test" for c in chunks), "document metadata reaches every node"
    assert summaries and min(c.level for c in summaries) == 1
    for summary in summaries:
        assert summary.text.strip() and summary.metadata.get("summary") != "fallback"
        assert summary.metadata["level"] == summary.level
        children = summary.metadata["children"].split(",")
        assert children and all(child in by_id for child in children)
        assert all(by_id[child].level == summary.level - 1 for child in children)
    for chunk in chunks:
        if chunk.parent_id is None:
            continue
        parent = by_id[chunk.parent_id]
        assert parent.level == chunk.level + 1
        parents = chunk.metadata["parents"].split(",")
        assert chunk.parent_id in parents
        for parent_id in parents:
            assert by_id[parent_id].level == chunk.level + 1
            assert chunk.id in by_id[parent_id].metadata["children"].split(",")
    assert all(leaf.parent_id is not None for leaf in leaves), "every leaf is summarised"
    top = max(c.level for c in chunks)
    roots = [c for c in chunks if c.parent_id is None]
    assert roots and all(c.level == top for c in roots)


def test_clusters_follow_the_topics(runs: list[Run]) -> None:
    """The three topics are interleaved in the document; the first level groups them back by meaning."""
    leaves = [c for c in runs[0].chunks if c.level == 0]
    parents_by_topic: dict[str, set[str]] = {}
    for leaf in leaves:
        parents_by_topic.setdefault(topic_of(leaf.text), set()).add(leaf.parent_id or "")
    assert all(len(parents) == 1 for parents in parents_by_topic.values()), parents_by_topic
    assert len(set.union(*parents_by_topic.values())) == 3


def test_one_llm_call_per_summary_sent_as_one_batch_per_level(runs: list[Run]) -> None:
    run = runs[0]
    summaries = [c for c in run.chunks if c.level > 0]
    per_level = [sum(c.level == level for c in summaries) for level in range(1, max(c.level for c in summaries) + 1)]
    assert run.generator.calls == len(summaries)
    assert run.generator.batch_sizes == per_level
    assert run.generator.batches == len(per_level)


def test_same_seed_gives_the_same_tree(runs: list[Run]) -> None:
    first, second = runs
    assert shape(first.chunks) == shape(second.chunks)
    leaf_ids = [[c.id for c in run.chunks if c.level == 0] for run in runs]
    assert leaf_ids[0] == leaf_ids[1]
    # The second build asked exactly the first one's prompts (``ReplayGenerator`` fails otherwise), so its
    # summaries, and the ids made from them, repeat too.
    assert [c.id for c in first.chunks] == [c.id for c in second.chunks]
    assert second.generator.batch_sizes == first.generator.batch_sizes


def test_tiny_document_makes_no_llm_call(embedder, leaf_chunker, llm) -> None:
    generator = VLLMTextGenerator(llm)
    chunker = RaptorChunker(leaf_chunker, embedder.embed, generator)
    chunks = chunker.chunk(Document("tiny.md", WATER[0] + "\n\n" + BREAD[0]))
    assert 1 <= len(chunks) <= 2
    assert all(c.level == 0 and c.parent_id is None for c in chunks)
    assert generator.calls == 0 and generator.batches == 0


def test_a_failed_prompt_names_its_index(llm) -> None:
    generator = VLLMTextGenerator(llm)
    too_long = "lorem ipsum " * 5000  # over the test server's 4096-token context: vLLM answers 400
    with pytest.raises(TextGenerationError) as failure:
        generator.complete(["Say yes.", too_long, "Say no."], max_tokens=4)
    assert failure.value.index == 1
    assert "prompt 1 of a batch of 3" in str(failure.value)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("max_levels", 0),
        ("max_clusters", 0),
        ("summary_tokens", 0),
        ("reduction_dim", 0),
        ("soft_threshold", 0.0),
        ("soft_threshold", 1.5),
        ("max_cluster_chars", 0),
    ],
)
def test_bad_arguments_are_rejected_by_name(leaf_chunker, argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=argument):
        RaptorChunker(leaf_chunker, lambda texts: None, None, **{argument: value})  # type: ignore[arg-type]
