"""Question-set loading: JSONL and CSV, malformed rows reported by line number and skipped; the run store."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.qa import DatasetError, RunStore, load_dataset

REPO = Path(__file__).resolve().parents[2]


def test_sample_set_loads_with_gold_ids() -> None:
    loaded = load_dataset(REPO / "eval" / "datasets" / "sample_qa.jsonl")
    assert len(loaded.items) == 30 and not loaded.errors
    first = loaded.items[0]
    assert first.id == "q01" and first.answers and first.gold_ids == ["policies/refund-policy-eu-2024.md"]
    assert first.reference == first.ground_truth


def test_malformed_jsonl_rows_are_skipped_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"id": "a", "question": "Who?", "answers": ["Ann"], "gold_passage": "p1"}\n'
        "{not json\n"
        "\n"
        '{"id": "b", "question": "", "answers": ["x"]}\n'
        '{"id": "c", "question": "What?"}\n'
        '["a list"]\n'
        '{"id": "a", "question": "Again?", "answers": ["x"]}\n'
        '{"id": "d", "question": "When?", "ground_truth": "In 1999.", "answers": "1999|nineteen ninety-nine"}\n'
        '{"id": "e", "question": "Where?", "answers": [1, {"x": 2}]}\n',
        encoding="utf-8",
    )
    loaded = load_dataset(path)
    assert [item.id for item in loaded.items] == ["a", "d"]
    assert loaded.items[0].gold_ids == ["p1"] and loaded.items[0].reference == "Ann"
    assert loaded.items[1].answers == ["1999", "nineteen ninety-nine"]
    errors = {e.line: e.reason for e in loaded.errors}
    assert set(errors) == {2, 4, 5, 6, 7, 9}
    assert errors[2].startswith("invalid JSON")
    assert "question" in errors[4] and "ground_truth" in errors[5] and "JSON object" in errors[6]
    assert "duplicate id 'a'" in errors[7] and "list of strings" in errors[9]


def test_csv_rows_with_lists_and_a_ragged_row(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text(
        'question,answers,doc_ids\n"What is ERR-2290?","duplicate invoice number",runbooks/err-2290.txt\n'
        '"Two docs?","[""a"", ""b""]",x|y\n"Ragged",a,b,c\n',
        encoding="utf-8",
    )
    loaded = load_dataset(path)
    assert [i.question for i in loaded.items] == ["What is ERR-2290?", "Two docs?"]
    assert loaded.items[1].answers == ["a", "b"] and loaded.items[1].gold_ids == ["x", "y"]
    assert loaded.items[0].id == "line-2"
    assert [(e.line, e.reason) for e in loaded.errors] == [(4, "more fields than the header has")]


def test_unusable_sets_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.jsonl")
    (tmp_path / "qa.txt").write_text("question\n")
    with pytest.raises(DatasetError, match=r"\.jsonl or \.csv"):
        load_dataset(tmp_path / "qa.txt")
    (tmp_path / "bad.jsonl").write_text('{"question": "no answer"}\n')
    with pytest.raises(DatasetError, match="line 1: needs 'ground_truth'"):
        load_dataset(tmp_path / "bad.jsonl")
    (tmp_path / "bad.csv").write_text("query,answer\nx,y\n")
    with pytest.raises(DatasetError, match="'question' column"):
        load_dataset(tmp_path / "bad.csv")


def test_store_ignores_then_repairs_a_torn_last_line(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.append({"config": "c", "id": "1"})
    with store.results_path.open("a") as handle:
        handle.write('{"config": "c", "id": "2", "answ')  # the process died mid-write
    assert store.done() == {("c", "1")}
    store.repair()
    store.append({"config": "c", "id": "2"})
    assert store.done() == {("c", "1"), ("c", "2")}


def test_failed_questions_run_again_on_resume_and_the_retry_replaces_the_error(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.append({"config": "c", "id": "1", "error": "LLMUnavailableError: timed out"})
    store.append({"config": "c", "id": "2", "error": None, "answer": "a"})
    assert store.done() == {("c", "2")}
    store.append({"config": "c", "id": "1", "error": None, "answer": "b"})
    assert store.done() == {("c", "1"), ("c", "2")}
    assert sorted((r["id"], r["answer"]) for r in store.results()) == [("1", "b"), ("2", "a")]
