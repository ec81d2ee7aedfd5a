"""End-to-end QA evaluation: load a question set, run the pipeline over it per config, score every answer.

A run lives in ``<reports_dir>/<run-id>/``: ``run.json`` says what was asked (dataset, collection, configs) and
``results.jsonl`` gets one line per (config, question) as soon as that question is done, so an interrupted run
resumes where it stopped (``--resume RUN_ID`` skips the pairs already answered and retries those that failed) and
a crash loses at most the questions in flight. Questions are sent concurrently from a thread pool: vLLM batches
concurrent requests, so a pool of a few workers finishes a set faster than a loop without changing any answer.
"""

from __future__ import annotations

import csv
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval.answer_metrics import answer_scores
from eval.metrics import ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank, token_f1
from retrieval.protocols import AnswersQuestions

__all__ = [
    "DatasetError",
    "LoadedDataset",
    "QAItem",
    "RowError",
    "RunStore",
    "load_dataset",
    "read_trace",
    "run_config",
    "score_record",
]

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "run.json"


class DatasetError(ValueError):
    """The question set cannot be used at all (missing file, unknown format, no valid row)."""


@dataclass(frozen=True)
class QAItem:
    """One question with whatever gold data the set has; every gold field is optional except the question."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    ground_truth: str | None = None
    gold_ids: list[str] = field(default_factory=list)
    gold_contexts: list[str] = field(default_factory=list)
    filters: dict[str, Any] | None = None

    @property
    def reference(self) -> str | None:
        """The reference answer the RAGAS judge compares against: the written ground truth, else the answers."""
        return self.ground_truth or ("; ".join(self.answers) if self.answers else None)


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class LoadedDataset:
    path: Path
    items: list[QAItem]
    errors: list[RowError]


# ---- loading --------------------------------------------------------------------------------------------------

_GOLD_ID_KEYS = ("doc_ids", "gold_ids", "gold_doc_ids", "gold_passage", "gold_passages")
_CONTEXT_KEYS = ("contexts", "gold_contexts", "reference_contexts")


def _string_list(value: Any, name: str) -> list[str]:
    """A JSON list of strings, a single string, or (CSV) a JSON-array or ``|``-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"'{name}' looks like a JSON list but does not parse") from None
        else:
            return [part.strip() for part in text.split("|") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value if str(v).strip()]
    raise ValueError(f"'{name}' must be a string or a list of strings")


def _first(record: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, Any]:
    for key in keys:
        if record.get(key) not in (None, "", []):
            return key, record[key]
    return keys[0], None


def parse_row(record: Mapping[str, Any], line: int) -> QAItem:
    """One dataset row → ``QAItem``; ``ValueError`` with the reason when the row is unusable."""
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("missing or empty 'question'")
    answers = _string_list(record.get("answers"), "answers")
    ground_truth = record.get("ground_truth")
    if ground_truth is not None and not isinstance(ground_truth, str):
        raise ValueError("'ground_truth' must be a string")
    ground_truth = ground_truth.strip() if ground_truth and ground_truth.strip() else None
    if not answers and ground_truth is None:
        raise ValueError("needs 'ground_truth' or a non-empty 'answers' list")
    id_key, ids = _first(record, _GOLD_ID_KEYS)
    context_key, contexts = _first(record, _CONTEXT_KEYS)
    filters = record.get("filters")
    if isinstance(filters, str) and filters.strip():
        try:
            filters = json.loads(filters)
        except json.JSONDecodeError:
            raise ValueError("'filters' is not valid JSON") from None
    if filters in ("", None):
        filters = None
    if filters is not None and not isinstance(filters, dict):
        raise ValueError("'filters' must be an object")
    raw_id = record.get("id")
    return QAItem(
        id=str(raw_id) if raw_id not in (None, "") else f"line-{line}",
        question=question.strip(),
        answers=answers,
        ground_truth=ground_truth,
        gold_ids=_string_list(ids, id_key),
        gold_contexts=_string_list(contexts, context_key),
        filters=filters,
    )


def _jsonl_rows(path: Path) -> Iterable[tuple[int, Mapping[str, Any] | str]]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line, f"invalid JSON: {exc.msg}"
                continue
            yield line, record if isinstance(record, dict) else "expected a JSON object"


def _csv_rows(path: Path) -> Iterable[tuple[int, Mapping[str, Any] | str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "question" not in reader.fieldnames:
            raise DatasetError(f"{path}: the CSV header must have a 'question' column")
        for record in reader:
            if None in record:
                yield reader.line_num, "more fields than the header has"
                continue
            yield reader.line_num, record


def load_dataset(path: str | Path, limit: int | None = None) -> LoadedDataset:
    """Read a JSONL or CSV question set. Bad rows are collected with their line number and skipped.

    Fields: ``question`` (required); ``ground_truth`` and/or ``answers`` (a list; at least one of the two);
    optional ``id``, gold document ids (``doc_ids``/``gold_ids``/``gold_passage``), gold ``contexts`` and
    ``filters``. A repeated id is a bad row: results are keyed by id, so it would overwrite another question.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise DatasetError(f"{path}: the question set must be .jsonl or .csv, got {suffix or 'no extension'}")
    rows = _jsonl_rows(path) if suffix == ".jsonl" else _csv_rows(path)
    items: list[QAItem] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for line, record in rows:
        if isinstance(record, str):
            errors.append(RowError(line, record))
            continue
        try:
            item = parse_row(record, line)
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        if item.id in seen:
            errors.append(RowError(line, f"duplicate id {item.id!r}"))
            continue
        seen.add(item.id)
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        detail = f"; first problem: {errors[0]}" if errors else ""
        raise DatasetError(f"{path}: no usable question{detail}")
    return LoadedDataset(path, items, errors)


# ---- the run directory ----------------------------------------------------------------------------------------


class RunStore:
    """``run.json`` and the append-only ``results.jsonl`` of one run; safe to append from worker threads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.results_path = folder / RESULTS_FILE
        self.manifest_path = folder / MANIFEST_FILE
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.folder.name

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.is_file():
            raise FileNotFoundError(f"{self.folder} is not a QA run: {MANIFEST_FILE} is missing")
        return json.loads(self.manifest_path.read_text())

    def records(self) -> list[dict[str, Any]]:
        """Every stored result; a torn last line (the process was killed mid-write) is ignored, it reruns."""
        if not self.results_path.is_file():
            return []
        records = []
        for line in self.results_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def repair(self) -> None:
        """Drop a torn last line (no newline: the process died mid-write) so appends start on a fresh line."""
        if not self.results_path.is_file():
            return
        data = self.results_path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.results_path.write_bytes(data[: data.rfind(b"\n") + 1])

    def results(self) -> list[dict[str, Any]]:
        """One record per (config, question): the latest, so a question retried on resume replaces its error."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for record in self.records():
            latest[(record["config"], record["id"])] = record
        return list(latest.values())

    def done(self) -> set[tuple[str, str]]:
        """Pairs with an answer. A pair whose result is an error (vLLM timed out, was down) runs again on resume."""
        return {(r["config"], r["id"]) for r in self.results() if not r.get("error")}

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self.results_path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()


# ---- reading a trace ----------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _compression_ratio(stage: Mapping[str, Any]) -> float | None:
    """Evidence tokens before / after compression (2.0: half the tokens kept); 1.0 when the stage ran but chose
    not to compress (``auto`` under budget)."""
    for before, after in (("tokens_before", "tokens_after"), ("original_tokens", "compressed_tokens")):
        b, a = _number(stage.get(before)), _number(stage.get(after))
        if b is not None and a:
            return b / a
    if stage.get("compressed") is False:
        return 1.0
    for key in ("compression_ratio", "ratio"):
        if _number(stage.get(key)) is not None:
            return _number(stage[key])
    return None


def read_trace(trace: Mapping[str, Any]) -> dict[str, Any]:
    """What the evaluation needs from an answer's trace, whatever stages the pipeline had.

    Stage names and detail keys differ between pipeline configurations, so this looks for shapes, not names:
    ``ms`` per stage; the ranking of the last stage that lists ``hits`` (rerank if present, else fusion); the
    context from the last stage listing ``chunk_ids``; every numeric ``*_tokens`` detail and any ``budget``
    mapping; a compression ratio from a compression stage. What no stage reports stays absent (a missing value),
    never 0.
    """
    stages = [s for s in trace.get("stages", []) if isinstance(s, Mapping)]
    stages_ms: dict[str, float] = {}
    ranking: list[dict[str, str]] = []
    context_ids: list[str] = []
    tokens: dict[str, float] = {}
    compression: float | None = None
    before_generation: float | None = None
    for stage in stages:
        name = str(stage.get("stage", "?"))
        ms = _number(stage.get("ms"))
        if name == "generate" and before_generation is None:
            before_generation = sum(stages_ms.values())
        if ms is not None:
            stages_ms[name] = stages_ms.get(name, 0.0) + ms
        hits = stage.get("hits")
        if isinstance(hits, list) and hits and all(isinstance(h, Mapping) and "doc_id" in h for h in hits):
            ranking = [{"chunk_id": str(h.get("chunk_id", "")), "doc_id": str(h["doc_id"])} for h in hits]
        if isinstance(stage.get("chunk_ids"), list):
            context_ids = [str(c) for c in stage["chunk_ids"]]
        for key, value in stage.items():
            if key.endswith("_tokens") and _number(value) is not None:
                tokens[f"{name}.{key}"] = _number(value)  # type: ignore[assignment]
            elif key in ("budget", "budget_tokens", "terms") and isinstance(value, Mapping):
                for term, count in value.items():
                    if _number(count) is not None:
                        tokens[f"budget.{term}"] = _number(count)  # type: ignore[assignment]
        if "compress" in name:
            compression = _compression_ratio(stage)
    return {
        "stages_ms": stages_ms,
        "total_ms": sum(stages_ms.values()),
        "before_generation_ms": before_generation,
        "ranking": ranking,
        "context_ids": context_ids,
        "tokens": tokens,
        "compression_ratio": compression,
    }


# ---- scoring one answer ---------------------------------------------------------------------------------------


def _gold_context_recall(gold: Sequence[str], context: Sequence[str]) -> float:
    """Share of gold contexts that some retrieved chunk covers (≥ half of the gold passage's tokens, by F1's
    token bag): a text-level stand-in for recall when the set gives passages instead of document ids."""
    covered = 0
    for passage in gold:
        if any(token_f1(chunk, [passage]) >= 0.5 or passage.strip() in chunk for chunk in context):
            covered += 1
    return covered / len(gold)


def score_record(item: QAItem, answer: str, trace: Mapping[str, Any], context_texts: Sequence[str], k: int) -> dict:
    """Answer metrics always; retrieval metrics when the item has gold ids; gold-context recall with contexts."""
    read = read_trace(trace)
    scores: dict[str, float] = answer_scores(answer, item.answers, trace)
    if item.gold_ids:
        relevant = dict.fromkeys(item.gold_ids, 1)
        docs = [hit["doc_id"] for hit in read["ranking"]]
        scores.update(
            {
                f"p@{k}": precision_at_k(docs, relevant, k),
                f"recall@{k}": recall_at_k(docs, relevant, k),
                "mrr": reciprocal_rank(docs, relevant),
                "ndcg@10": ndcg_at_k(docs, relevant, 10),
            }
        )
    if item.gold_contexts and context_texts:
        scores["gold_context_recall"] = _gold_context_recall(item.gold_contexts, context_texts)
    return scores


# ---- running -------------------------------------------------------------------------------------------------


Judge = Callable[[QAItem, str, list[str]], dict[str, dict[str, Any]]]
"""(item, answer, retrieved context texts) → {metric: {"value": float | None, "reason": str | None}}."""


def answer_one(
    pipeline: AnswersQuestions,
    item: QAItem,
    collection: str,
    config: str,
    options: Mapping[str, Any],
    k: int,
    judge: Judge | None,
) -> dict[str, Any]:
    """Run one question through one config and build its result line. A failing question is a result with an
    ``error`` (and no scores), so one bad question does not end the run."""
    record: dict[str, Any] = {"config": config, **asdict(item)}
    started = time.perf_counter()
    try:
        result = pipeline.run(item.question, collection, item.filters, options=dict(options))
    except Exception as exc:
        record.update(error=f"{type(exc).__name__}: {exc}", wall_ms=(time.perf_counter() - started) * 1000)
        return record
    wall_ms = (time.perf_counter() - started) * 1000
    read = read_trace(result.trace)
    context = result.evidence
    texts = [c.text for c in context]
    record.update(
        error=None,
        answer=result.text,
        wall_ms=wall_ms,
        scores=score_record(item, result.text, result.trace, texts, k),
        ranking=read["ranking"],
        context=[{"chunk_id": c.id, "doc_id": c.doc_id, "text": c.text} for c in context],
        citations=[{"id": c.get("id"), "doc_id": c.get("doc_id")} for c in result.citations],
        stages_ms=read["stages_ms"],
        before_generation_ms=read["before_generation_ms"],
        tokens=read["tokens"],
        compression_ratio=read["compression_ratio"],
    )
    if judge is not None:
        record["ragas"] = judge(item, result.text, texts)
    return record


def run_config(
    pipeline: AnswersQuestions,
    items: Sequence[QAItem],
    collection: str,
    config: str,
    options: Mapping[str, Any],
    store: RunStore,
    *,
    k: int = 5,
    workers: int = 4,
    judge: Judge | None = None,
    judge_limit: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Answer every item not yet in ``store`` for ``config``; returns how many were answered now.

    ``judge_limit`` keeps the (slow) RAGAS judge to the first N items of the set, the same N for every config,
    so configs stay comparable.
    """
    store.repair()
    done = store.done()
    judged = {item.id for item in items[:judge_limit]} if judge_limit is not None else {item.id for item in items}
    todo = [item for item in items if (config, item.id) not in done]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(
                answer_one,
                pipeline,
                item,
                collection,
                config,
                options,
                k,
                judge if item.id in judged else None,
            )
            for item in todo
        ]
        for future in as_completed(futures):
            record = future.result()
            store.append(record)
            if progress is not None:
                progress(record)
    return len(todo)
