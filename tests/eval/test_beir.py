"""BEIR loaders on small hand-written files, and `load_beir` on the real SciFact data when it is present."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from eval.beir import BeirDataset, load_beir, load_corpus, load_qrels, load_queries

SCIFACT = Path("/work/shared/data/scifact")

DOCS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever."},
    {"_id": "d2", "text": "No title here."},
    {"_id": 3, "title": "Int id", "text": "Numeric ids become strings.", "metadata": {}},
]
QUERIES = [
    {"_id": "q1", "text": "Does aspirin reduce fever?", "metadata": {}},
    {"_id": "q2", "text": "Unjudged in train."},
    {"_id": "q3", "text": "Judged in test only."},
]


def write_jsonl(path: Path, records: list[dict], *, gz: bool = False) -> Path:
    text = "".join(json.dumps(record) + "\n" for record in records)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def make_dataset(folder: Path, *, gz: bool = False) -> Path:
    (folder / "qrels").mkdir(parents=True)
    write_jsonl(folder / ("corpus.jsonl.gz" if gz else "corpus.jsonl"), DOCS, gz=gz)
    write_jsonl(folder / "queries.jsonl", QUERIES)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n")
    (folder / "qrels" / "test.tsv").write_text("q3\t3\t1\n")
    return folder


EXPECTED_CORPUS = {
    "d1": {"title": "Aspirin", "text": "Aspirin reduces fever."},
    "d2": {"title": "", "text": "No title here."},
    "3": {"title": "Int id", "text": "Numeric ids become strings."},
}


@pytest.mark.parametrize("gz", [False, True])
def test_load_corpus_plain_and_gz(tmp_path: Path, gz: bool) -> None:
    path = write_jsonl(tmp_path / ("corpus.jsonl.gz" if gz else "corpus.jsonl"), DOCS, gz=gz)
    assert load_corpus(path) == EXPECTED_CORPUS


def test_load_queries_skips_blank_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    path.write_text(path.read_text() + "\n\n")
    assert load_queries(path) == {q["_id"]: q["text"] for q in QUERIES}


def test_load_qrels_with_and_without_header(tmp_path: Path) -> None:
    body = "q1\td1\t2\nq1\td2\t0\nq2\td3\t1\n"
    expected = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    with_header = tmp_path / "with.tsv"
    with_header.write_text("query-id\tcorpus-id\tscore\n" + body)
    without_header = tmp_path / "without.tsv"
    without_header.write_text(body)
    assert load_qrels(with_header) == expected
    assert load_qrels(without_header) == expected


@pytest.mark.parametrize(
    ("loader", "name", "content", "line", "message"),
    [
        (load_corpus, "corpus.jsonl", '{"_id": "a", "text": "x"}\n{"_id": "b", "text": \n', 2, "invalid JSON"),
        (load_corpus, "corpus.jsonl", '{"_id": "a", "text": "x"}\n\n{"_id": "b"}\n', 3, "'text'"),
        (load_corpus, "corpus.jsonl", '{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n', 2, "duplicate"),
        (load_queries, "queries.jsonl", '{"text": "no id"}\n', 1, "'_id'"),
        (load_queries, "queries.jsonl", '["not", "an", "object"]\n', 1, "JSON object"),
        (load_qrels, "train.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n", 3, "3 columns"),
        (load_qrels, "train.tsv", "q1\td1\t1\nq1\td2\thigh\n", 2, "not an integer"),
        (load_qrels, "train.tsv", "q1\td1\t1\nq1\td1\t2\n", 2, "conflicting"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, loader, name, content, line, message) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        loader(path)
    assert f"{path}:{line}:" in str(info.value)


def test_malformed_line_in_gz_corpus(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"_id": "a", "text": "x"}\n{broken\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: invalid JSON")):
        load_corpus(path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_beir_keeps_only_judged_queries(tmp_path: Path, gz: bool) -> None:
    folder = make_dataset(tmp_path / "tiny", gz=gz)
    train = load_beir(folder)
    assert isinstance(train, BeirDataset)
    assert (train.name, train.split) == ("tiny", "train")
    assert train.corpus == EXPECTED_CORPUS
    assert train.queries == {"q1": "Does aspirin reduce fever?"}
    assert train.qrels == {"q1": {"d1": 2, "d2": 0}}
    test = load_beir(folder, split="test")
    assert test.queries == {"q3": "Judged in test only."}
    assert test.qrels == {"q3": {"3": 1}}


def test_load_beir_errors(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError, match="dev"):
        load_beir(folder, split="dev")
    (folder / "qrels" / "train.tsv").write_text("q1\td1\t1\nq9\td1\t1\n")
    with pytest.raises(ValueError, match=r"not in queries.jsonl.*q9"):
        load_beir(folder)
    (folder / "corpus.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="corpus"):
        load_beir(folder)


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact data not present at {SCIFACT} (shared data, outside repo)")
def test_load_beir_scifact() -> None:
    data = load_beir(SCIFACT, split="train")
    # Counted from the files: 5,183 lines in corpus.jsonl.gz; 919 judgments over 809 distinct query ids in
    # qrels/train.tsv (queries.jsonl has 1,109 queries across all splits).
    assert len(data.corpus) == 5183
    assert len(data.queries) == 809
    assert set(data.queries) == set(data.qrels)
    assert sum(len(judged) for judged in data.qrels.values()) == 919
    assert all(doc in data.corpus for judged in data.qrels.values() for doc in judged)
