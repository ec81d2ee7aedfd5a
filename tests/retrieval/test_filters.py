"""The filter language: Python semantics, validation, CLI parsing, and push-down checked against a real Chroma."""

from __future__ import annotations

from typing import Any

import pytest

from retrieval.filters import matches, needs_python_check, parse_cli, to_chroma, validate

# ---- operators ------------------------------------------------------------------------------------------
DOC = {"region": "EU", "version": 2, "score": 0.75, "draft": True, "effective_date": "2024-10-01"}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"region": "EU"}, True),
        ({"region": "US"}, False),
        ({"region": {"$eq": "EU"}}, True),
        ({"region": {"$ne": "US"}}, True),
        ({"region": {"$ne": "EU"}}, False),
        ({"region": {"$in": ["EU", "UK"]}}, True),
        ({"region": {"$in": ["US"]}}, False),
        ({"region": {"$nin": ["US", "UK"]}}, True),
        ({"region": {"$nin": ["EU"]}}, False),
        ({"version": {"$gt": 1}}, True),
        ({"version": {"$gt": 2}}, False),
        ({"version": {"$gte": 2}}, True),
        ({"version": {"$lt": 2.5}}, True),
        ({"version": {"$lte": 1}}, False),
        ({"version": {"$gte": 1, "$lt": 3}}, True),  # several operators on one field mean AND
        ({"version": {"$gte": 1, "$lt": 2}}, False),
        ({"version": 2.0}, True),  # int and float are both numbers
        ({"score": {"$gte": 0.5}}, True),
        ({"region": "EU", "version": 3}, False),  # several keys mean AND
        ({"$and": [{"region": "EU"}, {"version": 2}]}, True),
        ({"$or": [{"region": "US"}, {"version": 2}]}, True),
        ({"$or": [{"region": "US"}, {"version": 3}]}, False),
        ({"$or": [{"$and": [{"region": "EU"}, {"draft": True}]}, {"region": "US"}]}, True),
    ],
)
def test_operators(where: dict[str, Any], expected: bool) -> None:
    assert matches(DOC, where) is expected


def test_types_do_not_mix() -> None:
    # bool is not a number (Chroma agrees), and numbers never compare with strings
    assert not matches({"draft": 1}, {"draft": True})
    assert not matches({"draft": True}, {"draft": 1})
    assert matches({"draft": True}, {"draft": {"$ne": 1}})
    assert not matches({"version": "3"}, {"version": {"$gt": 1}})
    assert not matches({"version": "3"}, {"version": 3})
    assert not matches({"version": True}, {"version": {"$gte": 0}})
    assert not matches({"version": 3}, {"version": {"$gt": "1"}})


def test_dates_compare_as_dates() -> None:
    assert matches({"d": "2024-10-01"}, {"d": {"$gt": "2024-09-30"}})
    assert not matches({"d": "2024-09-30"}, {"d": {"$gt": "2024-10-01"}})
    # a date is midnight at its start; as text "2024-10-01" < "2024-10-01T00:00:00"
    assert matches({"d": "2024-10-01"}, {"d": {"$gte": "2024-10-01T00:00:00"}})
    assert matches({"d": "2024-09-30T18:30:00"}, {"d": {"$gt": "2024-09-30"}})
    assert not matches({"d": "2024-09-30T18:30:00"}, {"d": {"$lte": "2024-09-30"}})
    # offsets are honoured: 01:00+02:00 is 23:00 UTC the day before, later than text order suggests it isn't
    assert matches({"d": "2024-10-01T01:00:00+02:00"}, {"d": {"$lt": "2024-09-30T23:30:00"}})
    assert matches({"d": "2024-09-30T23:00:00Z"}, {"d": {"$lte": "2024-09-30T23:00:00"}})
    # non-dates never match a date comparison, and do not raise (as text "unknown" > "2024-...")
    for value in ("unknown", "2024-9-30", "2024-02-30", 20241001, True):
        assert not matches({"d": value}, {"d": {"$gt": "2024-01-01"}})
        assert not matches({"d": value}, {"d": {"$lt": "2030-01-01"}})
    # equality stays string equality
    assert not matches({"d": "2024-10-01T00:00:00"}, {"d": "2024-10-01"})


def test_string_ranges_compare_strings() -> None:
    assert matches({"doc_type": "policy"}, {"doc_type": {"$gt": "guide"}})
    assert not matches({"doc_type": "faq"}, {"doc_type": {"$gte": "guide"}})


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"region": "EU"}, False),
        ({"region": {"$ne": "EU"}}, True),
        ({"region": {"$in": ["EU"]}}, False),
        ({"region": {"$nin": ["EU"]}}, True),
        ({"region": {"$gt": "A"}}, False),
        ({"region": {"$lte": 5}}, False),
        ({"region": {"$gte": "2024-01-01"}}, False),
    ],
)
def test_missing_key_matches_only_negations(where: dict[str, Any], expected: bool) -> None:
    assert matches({}, where) is expected
    assert matches({"region": None}, where) is expected


def test_empty_filter_matches_everything() -> None:
    assert matches({"a": 1}, None) and matches({}, {})


# ---- validation -----------------------------------------------------------------------------------------
def test_validate_normalizes() -> None:
    assert validate(None) is None and validate({}) is None
    assert validate({"region": "EU"}) == {"region": {"$eq": "EU"}}
    assert validate({"region": "EU", "version": {"$gte": 1, "$lt": 3}}) == {
        "$and": [{"region": {"$eq": "EU"}}, {"version": {"$gte": 1}}, {"version": {"$lt": 3}}]
    }
    assert validate({"$or": [{"region": "EU"}]}) == {"region": {"$eq": "EU"}}
    assert validate({"region": {"$in": ("EU", "UK")}}) == {"region": {"$in": ["EU", "UK"]}}
    where = {"$or": [{"a": 1, "b": {"$ne": "x"}}, {"c": {"$nin": [1, 2]}}]}
    assert validate(validate(where)) == validate(where)


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ({"region": {"$regex": "E.*"}}, "region.$regex: unknown operator '$regex'"),
        ({"region": {"sub": "EU"}}, "region.sub: unknown operator 'sub'"),
        ({"$not": {"region": "EU"}}, "$not: unknown logical operator"),
        ({"region": {"$in": "EU"}}, "region.$in: $in needs a non-empty list"),
        ({"region": {"$nin": []}}, "region.$nin: $nin needs a non-empty list"),
        ({"region": {"$in": ["EU", 1]}}, "region.$in: $in values must all be"),
        ({"region": {"$in": [["EU"]]}}, "region.$in[0]: value must be a string, number or bool"),
        ({"$and": []}, "$and: $and needs a non-empty list"),
        ({"$or": {"region": "EU"}}, "$or: $or needs a non-empty list"),
        ({"$and": ["region"]}, "$and[0]: each $and item must be a non-empty dict"),
        ({"$or": [{"a": 1}, {"b": {"$gt": None}}]}, "$or[1].b.$gt: $gt needs a number or a string"),
        ({"region": ["EU"]}, "region: value must be a string, number or bool"),
        ({"region": None}, "region: value must be"),
        ({"region": {}}, "region: empty operator dict"),
        ({"version": {"$gt": True}}, "version.$gt: $gt needs a number or a string"),
        ({"version": {"$lt": float("nan")}}, "version.$lt: value must be a finite number"),
        ({"d": {"$gte": "2024-13-01"}}, "'2024-13-01' looks like an ISO date but is not a valid one"),
        ({"": 1}, "keys must be non-empty strings"),
        (["region"], "must be a dict"),
    ],
)
def test_validate_errors_name_the_problem_and_list_operators(where: Any, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        validate(where)
    message = str(caught.value)
    assert fragment in message
    assert "supported:" in message and "$nin" in message and "$or" in message
    with pytest.raises(ValueError):
        matches({}, where)
    with pytest.raises(ValueError):
        to_chroma(where)


# ---- Chroma push-down -----------------------------------------------------------------------------------
def test_to_chroma_shapes() -> None:
    assert to_chroma(None) is None and to_chroma({}) is None
    assert to_chroma({"region": "EU"}) == {"region": {"$eq": "EU"}}
    assert to_chroma({"region": "EU", "version": 2}) == {"$and": [{"region": {"$eq": "EU"}}, {"version": {"$eq": 2}}]}
    # an $and keeps what Chroma can do; a date range alone pushes nothing
    assert to_chroma({"region": "EU", "d": {"$gte": "2024-01-01"}}) == {"region": {"$eq": "EU"}}
    assert to_chroma({"d": {"$gte": "2024-01-01"}}) is None
    # an $or with a branch Chroma cannot do is dropped whole; inside it, an $and is relaxed instead
    assert to_chroma({"$or": [{"region": "EU"}, {"d": {"$lt": "2024-01-01"}}], "version": 1}) == {"version": {"$eq": 1}}
    assert to_chroma({"$or": [{"region": "EU", "d": {"$lt": "2024-01-01"}}, {"version": 1}]}) == {
        "$or": [{"region": {"$eq": "EU"}}, {"version": {"$eq": 1}}]
    }
    # Chroma truncates 2.5 to 2 against int metadata: add the exact integer bound
    assert to_chroma({"v": {"$lt": 2.5}}) == {"$or": [{"v": {"$lt": 2.5}}, {"v": {"$lte": 2}}]}
    assert to_chroma({"v": {"$gt": -2.5}}) == {"$or": [{"v": {"$gt": -2.5}}, {"v": {"$gte": -2}}]}
    assert to_chroma({"v": {"$ne": 2.5}}) is None
    assert to_chroma({"v": {"$in": [1, 2.0]}}) == {"v": {"$in": [1.0, 2.0]}}  # Chroma wants one type per list


def test_needs_python_check() -> None:
    assert not needs_python_check(None)
    assert not needs_python_check({"region": {"$nin": ["US"]}, "version": {"$gte": 2, "$lt": 5.0}})
    assert needs_python_check({"d": {"$gte": "2024-01-01"}})
    assert needs_python_check({"doc_type": {"$lt": "m"}})
    assert needs_python_check({"$or": [{"region": "EU"}, {"$and": [{"a": 1}, {"d": {"$lt": "2024-01-01"}}]}]})
    assert needs_python_check({"score": {"$gte": 0.5}})
    assert needs_python_check({"score": {"$in": [1, 0.5]}})


ITEMS: dict[str, dict[str, Any]] = {
    "a": {"region": "EU", "effective_date": "2024-01-15", "version": 1, "doc_type": "policy"},
    "b": {"region": "EU", "effective_date": "2024-10-01", "version": 2, "doc_type": "faq"},
    "c": {"region": "US", "effective_date": "2024-09-30", "version": 3, "doc_type": "policy"},
    "d": {"region": "UK", "effective_date": "2024-09-30T18:30:00", "version": 2, "doc_type": "policy"},
    "e": {"region": "US", "effective_date": "2023-12-31", "version": -2, "doc_type": "faq"},
    "f": {"region": "EU", "effective_date": "unknown", "version": 5},
    "g": {"effective_date": "2025-02-01T00:00:00+02:00", "version": 4, "doc_type": "guide"},
    "h": {"region": "EU", "doc_type": "policy"},
}

TABLE: list[tuple[dict[str, Any], str]] = [
    ({"region": "EU"}, "abfh"),
    ({"region": {"$ne": "US"}}, "abdfgh"),
    ({"region": {"$in": ["EU", "UK"]}}, "abdfh"),
    ({"region": {"$nin": ["EU", "UK"]}}, "ceg"),
    ({"region": "EU", "doc_type": "policy"}, "ah"),
    ({"version": {"$gte": 2, "$lt": 4}}, "bcd"),
    ({"version": {"$lt": 2.5}}, "abde"),
    ({"version": {"$gt": -2.5}}, "abcdefg"),
    ({"version": {"$gte": 2.5}}, "cfg"),
    ({"version": {"$ne": 2.5}}, "abcdefgh"),
    ({"version": {"$in": [2, 3.5]}}, "bd"),
    ({"doc_type": {"$ne": "policy"}, "version": {"$lte": 3}}, "be"),
    ({"effective_date": {"$gt": "2024-09-30"}}, "bdg"),
    ({"effective_date": {"$lte": "2024-09-30"}}, "ace"),
    ({"effective_date": {"$gte": "2024-09-30T12:00:00"}}, "bdg"),
    ({"effective_date": {"$lt": "2025-01-31T23:00:00Z"}}, "abcdeg"),
    ({"$and": [{"region": "EU"}, {"effective_date": {"$gte": "2024-01-01"}}]}, "ab"),
    ({"$or": [{"region": "UK"}, {"effective_date": {"$lt": "2024-01-01"}}]}, "de"),
    ({"$or": [{"doc_type": "faq"}, {"version": {"$gte": 5}}]}, "bef"),
    ({"$or": [{"$and": [{"region": "EU"}, {"effective_date": {"$gt": "2024-06-01"}}]}, {"doc_type": "guide"}]}, "bg"),
    ({"$or": [{"version": {"$lt": 0}}, {"effective_date": "unknown"}]}, "ef"),
    ({"doc_type": {"$gt": "g"}}, "acdgh"),
]


@pytest.fixture(scope="module")
def chroma_collection(tmp_path_factory: pytest.TempPathFactory) -> Any:
    chromadb = pytest.importorskip("chromadb")
    client = chromadb.PersistentClient(
        path=str(tmp_path_factory.mktemp("chroma")), settings=chromadb.config.Settings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection(
        "filters-test", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    # explicit embeddings: the default embedding function would try to download a model
    collection.add(
        ids=list(ITEMS),
        embeddings=[[1.0, float(i), 0.5] for i in range(len(ITEMS))],
        metadatas=list(ITEMS.values()),
    )
    return collection


@pytest.mark.parametrize(("where", "expected"), TABLE)
def test_python_semantics_table(where: dict[str, Any], expected: str) -> None:
    assert {key for key, meta in ITEMS.items() if matches(meta, where)} == set(expected)


@pytest.mark.parametrize(("where", "expected"), TABLE)
def test_chroma_push_down_agrees_with_python(chroma_collection: Any, where: dict[str, Any], expected: str) -> None:
    pushed = to_chroma(where)
    returned = chroma_collection.get(where=pushed, include=["metadatas"])
    found = dict(zip(returned["ids"], returned["metadatas"], strict=True))
    assert set(found) >= set(expected)  # Chroma's answer is a superset ...
    if needs_python_check(where):
        found = {key: meta for key, meta in found.items() if matches(meta, where)}
    assert set(found) == set(expected)  # ... and exact once the flagged filters are re-checked


def test_parse_cli_output_pushes_down(chroma_collection: Any) -> None:
    where = parse_cli(["region~EU,UK", "effective_date>=2024-06-01", "version<3"])
    returned = chroma_collection.get(where=to_chroma(where), include=["metadatas"])
    assert needs_python_check(where)
    assert {key for key, meta in zip(returned["ids"], returned["metadatas"], strict=True) if matches(meta, where)} == {
        "b",
        "d",
    }


# ---- CLI ------------------------------------------------------------------------------------------------
def test_parse_cli_forms() -> None:
    assert parse_cli([]) is None
    assert parse_cli(["region=EU", " doc_type = policy "]) == {"region": "EU", "doc_type": "policy"}
    assert parse_cli(["region!=US"]) == {"region": {"$ne": "US"}}
    assert parse_cli(["region~EU, UK,"]) == {"region": {"$in": ["EU", "UK"]}}
    assert parse_cli(["effective_date>=2024-01-01"]) == {"effective_date": {"$gte": "2024-01-01"}}
    assert parse_cli(["version<3", "score>0.5", "rank<=-1e2"]) == {
        "version": {"$lt": 3},
        "score": {"$gt": 0.5},
        "rank": {"$lte": -100.0},
    }
    assert parse_cli(["draft=true", "final!=false"]) == {"draft": True, "final": {"$ne": False}}
    # "=" keeps numbers as strings; only true/false change
    assert parse_cli(["version=3", "title=a=b"]) == {"version": "3", "title": "a=b"}
    # a repeated key is AND-ed rather than overwritten
    assert parse_cli(["version>=1", "version<3"]) == {"$and": [{"version": {"$gte": 1}}, {"version": {"$lt": 3}}]}


@pytest.mark.parametrize("pair", ["region", "=EU", "region=", "region~", "region~ , ", "re gion=EU", "a!b", ""])
def test_parse_cli_rejects_malformed(pair: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cli(["region=EU", pair])
    assert repr(pair) in str(caught.value)
    assert "KEY=VALUE" in str(caught.value) and "KEY~V1,V2" in str(caught.value)


def test_parse_cli_invalid_date_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"effective_date\.\$gte.*not a valid one"):
        parse_cli(["effective_date>=2024-02-30"])
