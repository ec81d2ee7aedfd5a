"""Load BEIR-format datasets: ``corpus.jsonl(.gz)``, ``queries.jsonl``, ``qrels/{split}.tsv``.

BEIR is the common format for retrieval benchmarks (SciFact, NFCorpus, FiQA, ...), so reading it lets the
retrieval metrics be compared with published numbers. Errors name the file and line, because the files are
large and hand-edited subsets are common.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BeirDataset", "BeirFiles", "load_beir", "load_corpus", "load_qrels", "load_queries", "resolve_beir_files"]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line) for non-blank lines; gunzips ``*.gz`` and drops a UTF-8 BOM."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, JSON object) with ``_id`` normalized to str (qrels ids are strings, so ids must be)."""
    for number, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object")
        doc_id = record.get("_id")
        if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or doc_id == "":
            raise ValueError(f"{path}:{number}: missing or invalid '_id'")
        record["_id"] = str(doc_id)
        yield number, record


def _text_field(record: dict[str, Any], key: str, path: Path, number: int, default: str | None = None) -> str:
    value = record.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{path}:{number}: missing or non-string '{key}'")
    return value


def load_corpus(path: str | Path) -> dict[str, dict[str, str]]:
    """Read ``corpus.jsonl`` or ``corpus.jsonl.gz`` into ``{doc_id: {"title": ..., "text": ...}}``.

    ``title`` may be absent (many BEIR corpora have none) and defaults to ""; ``text`` is required. A repeated
    ``_id`` is an error: it would silently replace a document that qrels may point at.
    """
    path = Path(path)
    corpus: dict[str, dict[str, str]] = {}
    for number, record in _records(path):
        doc_id = record["_id"]
        if doc_id in corpus:
            raise ValueError(f"{path}:{number}: duplicate _id {doc_id!r}")
        corpus[doc_id] = {
            "title": _text_field(record, "title", path, number, default=""),
            "text": _text_field(record, "text", path, number),
        }
    return corpus


def load_queries(path: str | Path) -> dict[str, str]:
    """Read ``queries.jsonl`` (``{"_id", "text"}`` per line) into ``{query_id: text}``."""
    path = Path(path)
    queries: dict[str, str] = {}
    for number, record in _records(path):
        query_id = record["_id"]
        if query_id in queries:
            raise ValueError(f"{path}:{number}: duplicate _id {query_id!r}")
        queries[query_id] = _text_field(record, "text", path, number)
    return queries


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a qrels TSV (``query-id corpus-id score``) into ``{query_id: {doc_id: score}}``.

    The header line is optional: the first line is taken as a header when its score column is not an integer.
    Scores are kept as given (0 means judged non-relevant); the metrics decide what counts as relevant.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for index, (number, line) in enumerate(_lines(path)):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 3:
            fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 3 columns 'query-id corpus-id score', got {len(fields)}")
        query_id, doc_id, raw_score = (field.strip() for field in fields)
        try:
            score = int(raw_score)
        except ValueError:
            if index == 0:
                continue  # header line
            raise ValueError(f"{path}:{number}: score {raw_score!r} is not an integer") from None
        if not query_id or not doc_id:
            raise ValueError(f"{path}:{number}: empty query-id or corpus-id")
        judged = qrels.setdefault(query_id, {})
        if judged.get(doc_id, score) != score:
            raise ValueError(f"{path}:{number}: conflicting score for ({query_id!r}, {doc_id!r})")
        judged[doc_id] = score
    return qrels


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR dataset; ``queries`` holds exactly the queries judged in ``qrels``."""

    name: str
    split: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(folder: str | Path, split: str = "train") -> BeirDataset:
    """Load ``folder`` (a BEIR dataset) for ``split``, keeping only the queries that have qrels in that split.

    ``queries.jsonl`` lists the queries of every split; evaluating the others would average in queries with no
    judgments. A qrels query id absent from ``queries.jsonl`` means the files are out of sync, so it is an error.
    """
    folder = Path(folder)
    corpus_path = folder / "corpus.jsonl"
    if not corpus_path.exists():
        corpus_path = folder / "corpus.jsonl.gz"
    if not corpus_path.exists():
        raise FileNotFoundError(f"{folder}: neither corpus.jsonl nor corpus.jsonl.gz exists")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise FileNotFoundError(f"{qrels_path}: no qrels for split {split!r}")

    qrels = load_qrels(qrels_path)
    all_queries = load_queries(folder / "queries.jsonl")
    missing = sorted(qid for qid in qrels if qid not in all_queries)
    if missing:
        raise ValueError(f"{qrels_path}: {len(missing)} query ids not in queries.jsonl, e.g. {missing[:5]}")
    return BeirDataset(
        name=folder.name,
        split=split,
        corpus=load_corpus(corpus_path),
        queries={qid: all_queries[qid] for qid in qrels},
        qrels=qrels,
    )


@dataclass(frozen=True)
class BeirFiles:
    """The three files of one BEIR evaluation: documents, query texts and the judgments of one split."""

    corpus: Path
    queries: Path
    qrels: Path


def resolve_beir_files(
    folder: Path | None, corpus: Path | None, queries: Path | None, qrels: Path | None, split: str
) -> BeirFiles:
    """The files given one by one, or found in a BEIR ``folder`` for ``split`` (a file given wins over the
    folder's). Raises ``ValueError`` naming the missing option or file, so a command can report it as bad usage."""
    if folder is not None:
        corpus = corpus or next(
            (folder / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (folder / n).exists()), None
        )
        queries = queries or folder / "queries.jsonl"
        qrels = qrels or folder / "qrels" / f"{split}.tsv"
    if corpus is None or queries is None or qrels is None:
        missing = [
            name for name, value in (("--corpus", corpus), ("--queries", queries), ("--qrels", qrels)) if not value
        ]
        raise ValueError(f"give {', '.join(missing)} (or --beir FOLDER holding them)")
    for path in (corpus, queries, qrels):
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
    return BeirFiles(corpus, queries, qrels)
