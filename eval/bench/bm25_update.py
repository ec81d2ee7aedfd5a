"""``ragline bench bm25-update``: what adding one document costs BM25, before (a full bm25s rebuild, the former
``Index.commit``) and after (the segmented cache's incremental refresh), query latency of both on the same
collection, and the stale window a second process sees after a write.

Everything runs against a real store (a SQLite file by default, PostgreSQL with ``database_url``) written through
``Manifest``; no vectors are involved (BM25 reads only the manifest). The collection is synthetic: chunks of 3–8
random SciFact sentences (seeded), grouped into documents of ``chunks_per_doc`` chunks; ``synthetic_chunks`` is the
generator. Before and after are timed on the same collection state, alternately, in one process.

The stale window is measured across processes: a reader (``python -m eval.bench.bm25_update --reader …``, its own
data_dir, its own cache) searches in a loop for a probe term; the writer commits a document holding that term and
notes the time; the reader notes when its first search returned it. Both clocks are this machine's wall clock.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import median

from eval.bench.common import percentiles, speedup
from retrieval.bm25 import BM25Config, BM25Index
from retrieval.bm25_segments import SegmentedBM25, _merge, tokenizer
from retrieval.collection_cache import CollectionCache
from retrieval.manifest import Manifest
from retrieval.types import Chunk

COLLECTION = "bench"


@dataclass(frozen=True)
class BM25UpdateConfig:
    sizes: Sequence[int]
    chunks_per_doc: int = 10
    repeats: int = 5
    queries: int = 200
    probes: int = 20
    check_ms: Sequence[int] = (0, 250)
    database_url: str | None = None
    seed: int = 0


@dataclass
class SizeResult:
    chunks: int
    populate_s: float
    cold_start_s: float
    add_full_rebuild_ms: list[float] = field(default_factory=list)
    add_incremental_ms: list[float] = field(default_factory=list)
    query_full_ms: dict[str, float] = field(default_factory=dict)
    query_full_inline_ms: dict[str, float] = field(default_factory=dict)
    """bm25s scoring in the calling thread (no worker-thread hop)."""
    query_segmented_ms: dict[str, float] = field(default_factory=dict)
    """First pass of the queries over a new snapshot (term weights computed as terms first appear)."""
    query_segmented_warm_ms: dict[str, float] = field(default_factory=dict)
    """Second pass over the same snapshot (term weights kept from the first)."""
    version_check_ms: dict[str, float] = field(default_factory=dict)
    segments: list[int] = field(default_factory=list)
    merge_all_ms: float = 0.0
    stale_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def add_speedup(self) -> float:
        return speedup(median(self.add_full_rebuild_ms), median(self.add_incremental_ms))

    @property
    def query_ratio(self) -> float:
        """Segmented p50 (first pass) / full-build p50 (below 1: segmented is faster)."""
        return self.query_segmented_ms["p50"] / max(self.query_full_ms["p50"], 1e-9)

    @property
    def query_ratio_warm(self) -> float:
        return self.query_segmented_warm_ms["p50"] / max(self.query_full_ms["p50"], 1e-9)

    def as_report(self) -> dict[str, object]:
        return {
            **asdict(self),
            "add_full_rebuild_p50_ms": round(median(self.add_full_rebuild_ms), 3),
            "add_incremental_p50_ms": round(median(self.add_incremental_ms), 3),
            "add_speedup": round(self.add_speedup, 1),
            "query_p50_ratio_segmented_over_full": round(self.query_ratio, 3),
            "query_p50_ratio_segmented_warm_over_full": round(self.query_ratio_warm, 3),
        }


def load_sentences(corpus: Path) -> list[str]:
    """Sentences of a BEIR corpus (``text`` split at ". "), in file order."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    with opener(corpus, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle if line.strip()]
    return [s.strip() for text in texts for s in text.split(". ") if len(s.split()) > 3]


def load_queries(path: Path, limit: int) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()][:limit]


def synthetic_chunks(sentences: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` chunk texts, each 3–8 sentences drawn at random (seeded) from ``sentences``."""
    rng = random.Random(seed)
    return [". ".join(rng.choices(sentences, k=rng.randint(3, 8))) for _ in range(size)]


def write_document(manifest: Manifest, doc_id: str, texts: Sequence[str]) -> None:
    """The manifest's two transactions of a write (pending, then indexed); vectors are not part of BM25."""
    chunks = [Chunk(id=f"{doc_id}#{i}", doc_id=doc_id, text=t, metadata={}) for i, t in enumerate(texts)]
    manifest.begin_replace(COLLECTION, doc_id, doc_id, chunks)
    manifest.mark_indexed(COLLECTION, doc_id)


def full_rebuild(manifest: Manifest, config: BM25Config, folder: Path) -> BM25Index:
    """What ``Index.commit`` did before segments: read every indexed chunk, build bm25s, save it swapped in."""
    chunks = manifest.chunks(COLLECTION)
    index = BM25Index.build([c.id for c in chunks], [c.text for c in chunks], config)
    index.save(folder)
    return index


def _ms(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return (time.perf_counter() - started) * 1000, out


def bench_size(
    size: int,
    sentences: Sequence[str],
    queries: Sequence[str],
    bm25_config: BM25Config,
    config: BM25UpdateConfig,
    scratch: Path,
    on_phase: Callable[[str], None],
) -> SizeResult:
    database_url = config.database_url or f"sqlite:///{scratch / f'store-{size}' / 'ragline.sqlite'}"
    manifest = Manifest(scratch / f"writer-{size}" / "ragline.sqlite", database_url=database_url)
    for record in manifest.documents(COLLECTION):  # a PostgreSQL database reused from an earlier run
        manifest.begin_delete(COLLECTION, record.doc_id)
    on_phase(f"{size} chunks: writing the collection")
    texts = synthetic_chunks(sentences, size, config.seed)
    started = time.perf_counter()
    per = config.chunks_per_doc
    for n in range(0, size, per):
        write_document(manifest, f"d{n // per:07d}", texts[n : n + per])
    result = SizeResult(size, time.perf_counter() - started, 0.0)
    on_phase(f"{size} chunks: cold start, then {config.repeats} one-document adds (full rebuild vs incremental)")
    cache = CollectionCache(manifest, bm25_config)
    result.cold_start_s = _ms(lambda: cache.state(COLLECTION))[0] / 1000
    extra = synthetic_chunks(sentences, config.repeats * per, config.seed + 1)
    full: BM25Index | None = None
    for r in range(config.repeats):
        write_document(manifest, f"new{r:03d}", extra[r * per : (r + 1) * per])
        incremental_ms, _ = _ms(lambda: cache.state(COLLECTION, force=True))
        rebuild_ms, full = _ms(lambda: full_rebuild(manifest, bm25_config, scratch / f"bm25-{size}"))
        result.add_incremental_ms.append(round(incremental_ms, 3))
        result.add_full_rebuild_ms.append(round(rebuild_ms, 3))
    assert isinstance(full, BM25Index)
    state = cache.state(COLLECTION)
    result.segments = [s.size for s in state.bm25.segments]
    # the rare worst case of an add: the merge policy folds every segment into one (no tokenizing, sparse stacking)
    result.merge_all_ms = _ms(lambda: _merge(state.bm25.segments, len(state.bm25.vocab)))[0]
    on_phase(f"{size} chunks: {len(queries)} queries on both indexes")
    timings = time_queries(full, state.bm25, queries)
    result.query_full_ms = timings["bm25s_as_served_before"]
    result.query_full_inline_ms = timings["bm25s_inline"]
    result.query_segmented_ms = timings["segmented_first_pass"]
    result.query_segmented_warm_ms = timings["segmented_second_pass"]
    result.version_check_ms = percentiles([_ms(lambda: cache.state(COLLECTION))[0] for _ in range(len(queries))])
    for check_ms in config.check_ms:
        on_phase(f"{size} chunks: stale window with a second process checking every {check_ms} ms")
        result.stale_ms[str(check_ms)] = stale_window(manifest, database_url, bm25_config, check_ms, config, scratch)
    manifest.close()
    return result


def time_queries(full: BM25Index, segmented: SegmentedBM25, queries: Sequence[str]) -> dict[str, dict[str, float]]:
    """Top-20 latency of each query on: the full bm25s build as ``BM25Index.search`` served it before (bm25s's
    ``n_threads=1`` hands every query to a new worker thread), bm25s scoring in the calling thread (``n_threads=0``:
    its scoring alone), and the segmented index on a new snapshot (first pass: term weights computed as terms
    first appear) and again (second pass). The variants alternate per query, so load hits them alike."""
    fresh = replace(segmented)  # the same snapshot without its per-snapshot caches: as after a write
    retriever = full._retriever
    tokenize = tokenizer(full.config.tokenizer)
    assert retriever is not None

    def inline(query: str) -> object:
        terms = [t for t in tokenize(query) if t in retriever.vocab_dict]
        return retriever.retrieve([terms], k=20, show_progress=False, n_threads=0) if terms else None

    names = ("bm25s_as_served_before", "bm25s_inline", "segmented_first_pass")
    ms: dict[str, list[float]] = {name: [] for name in (*names, "segmented_second_pass")}
    for query in queries:
        for name, fn in zip(names, (lambda q: full.search(q, 20), inline, lambda q: fresh.search(q, 20)), strict=True):
            ms[name].append(_ms(lambda fn=fn, q=query: fn(q))[0])
    for query in queries:
        ms["segmented_second_pass"].append(_ms(lambda q=query: fresh.search(q, 20))[0])
        if [s for _, s in full.search(query, 20)] != [s for _, s in fresh.search(query, 20)]:
            raise AssertionError(f"segmented and full BM25 scores differ on {query!r}")
    return {name: percentiles(values) for name, values in ms.items()}


def stale_window(
    manifest: Manifest,
    database_url: str,
    bm25_config: BM25Config,
    check_ms: int,
    config: BM25UpdateConfig,
    scratch: Path,
) -> dict[str, float]:
    """Milliseconds from a write's commit to the first search of another process that returns it."""
    reader_dir = scratch / f"reader-{check_ms}-{time.monotonic_ns()}"
    command = [
        sys.executable, "-m", "eval.bench.bm25_update", "--reader", "--data-dir", str(reader_dir),
        "--database-url", database_url, "--check-ms", str(check_ms), "--probes", str(config.probes),
        "--bm25-config", json.dumps(bm25_config.as_dict()),
    ]  # fmt: skip
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None
    if reader.stdout.readline().strip() != "ready":
        raise RuntimeError("the reader process did not start")
    rng = random.Random(config.seed)
    committed = []
    for j in range(config.probes):
        time.sleep(rng.uniform(0.05, 0.3))
        text = f"zprobe{check_ms}x{j:03d} a document the reader waits for"
        write_document(manifest, f"probe{check_ms}-{j:03d}", [text])
        committed.append(time.time())
    seen = [float(line) for line in reader.stdout]
    if reader.wait() != 0 or len(seen) != config.probes:
        raise RuntimeError(f"the reader saw {len(seen)} of {config.probes} probes (exit {reader.returncode})")
    return percentiles([(s - c) * 1000 for s, c in zip(seen, committed, strict=True)]) | {
        "max": round(max((s - c) * 1000 for s, c in zip(seen, committed, strict=True)), 3)
    }


def _reader(args: argparse.Namespace) -> None:
    """The second replica: its own data_dir and cache; searches until each probe shows, prints when it did."""
    bm25_config = BM25Config.from_dict(json.loads(args.bm25_config))
    manifest = Manifest(Path(args.data_dir) / "ragline.sqlite", database_url=args.database_url)
    cache = CollectionCache(manifest, bm25_config, check_interval_s=args.check_ms / 1000)
    cache.state(COLLECTION)
    print("ready", flush=True)
    for j in range(args.probes):
        probe = f"zprobe{args.check_ms}x{j:03d}"
        while not cache.state(COLLECTION).bm25.search(probe, 1):
            time.sleep(0.001)
        print(time.time(), flush=True)


def bench_bm25_update(
    corpus: Path,
    queries_path: Path,
    bm25_config: BM25Config,
    config: BM25UpdateConfig,
    on_phase: Callable[[str], None] = lambda _: None,
) -> list[SizeResult]:
    sentences = load_sentences(corpus)
    queries = load_queries(queries_path, config.queries)
    with tempfile.TemporaryDirectory(prefix="ragline-bm25-update-") as scratch:
        return [
            bench_size(size, sentences, queries, bm25_config, config, Path(scratch), on_phase) for size in config.sizes
        ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the reader process of the stale-window measurement")
    parser.add_argument("--reader", action="store_true", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--check-ms", type=int, required=True)
    parser.add_argument("--probes", type=int, required=True)
    parser.add_argument("--bm25-config", required=True)
    _reader(parser.parse_args())


def bm25_update_lines(results: Sequence[SizeResult], config: BM25UpdateConfig) -> list[str]:
    """The table the CLI prints: medians, and ratios against the full rebuild measured in the same process."""
    lines = [
        f"one document = {config.chunks_per_doc} chunks; {config.repeats} adds per size; ms, median",
        "chunks | add: full rebuild | add: incremental | speed-up | worst merge | query p50 bm25s (in-thread) / "
        "segmented (1st pass, 2nd pass) | version check p50 | cold start s | segments",
    ]
    for r in results:
        lines.append(
            f"{r.chunks} | {median(r.add_full_rebuild_ms):.1f} | {median(r.add_incremental_ms):.1f} | "
            f"{r.add_speedup:.0f}x | {r.merge_all_ms:.1f} | {r.query_full_ms['p50']:.3f} "
            f"(in-thread {r.query_full_inline_ms['p50']:.3f}) / "
            f"{r.query_segmented_ms['p50']:.3f} ({r.query_ratio:.2f}x), {r.query_segmented_warm_ms['p50']:.3f} "
            f"({r.query_ratio_warm:.2f}x) | {r.version_check_ms['p50']:.3f} | {r.cold_start_s:.1f} | {r.segments}"
        )
    lines.append("stale window (commit → first search of a second process that returns it), ms:")
    for r in results:
        for check_ms, window in r.stale_ms.items():
            lines.append(
                f"{r.chunks} chunks, version check every {check_ms} ms: p50 {window['p50']:.1f}, "
                f"p95 {window['p95']:.1f}, max {window['max']:.1f} (n={window['n']})"
            )
    return lines
