"""The fit/choose/report split: disjoint parts that cover every query, the same parts for the same inputs."""

from __future__ import annotations

import pytest

from app.reranker.data import split_queries
from eval.splits import kfold, split_from_record, split_queries_three_way

QIDS = [f"q{i:03d}" for i in range(50)]


def test_parts_are_disjoint_cover_every_query_and_have_the_asked_sizes() -> None:
    split = split_queries_three_way(QIDS, choose=10, report=12, seed=3)
    fit, choose, report = set(split.fit), set(split.choose), set(split.report)
    assert not fit & choose and not fit & report and not choose & report
    assert fit | choose | report == set(QIDS)
    assert split.sizes == {"fit": 28, "choose": 10, "report": 12}


def test_the_same_ids_sizes_and_seed_give_the_same_split_whatever_the_input_order() -> None:
    first = split_queries_three_way(QIDS, choose=10, report=12, seed=3)
    assert split_queries_three_way(reversed(QIDS), choose=10, report=12, seed=3) == first
    assert split_queries_three_way(QIDS, choose=10, report=12, seed=4) != first


def test_choose_is_the_old_held_out_set_so_report_never_met_an_old_choice() -> None:
    """The old single held-out set is what earlier settings were picked on; the report part must avoid it."""
    _, old_held_out = split_queries(QIDS, 15, seed=13)
    split = split_queries_three_way(QIDS, choose=10, report=12, seed=13)
    assert set(split.choose) <= set(old_held_out)
    assert not set(split.report) & set(old_held_out)


def test_the_record_rebuilds_the_split_and_notices_changed_data() -> None:
    split = split_queries_three_way(QIDS, choose=10, report=12, seed=3)
    record = split.as_record()
    assert record["seed"] == 3 and record["sizes"] == {"fit": 28, "choose": 10, "report": 12}
    assert split_from_record(QIDS, record) == split
    with pytest.raises(ValueError, match="do not rebuild the recorded split"):
        split_from_record([*QIDS, "q999"], record)


def test_bad_sizes_and_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="must leave queries to fit on"):
        split_queries_three_way(QIDS, choose=25, report=25, seed=1)
    with pytest.raises(ValueError, match="at least one query"):
        split_queries_three_way(QIDS, choose=0, report=5, seed=1)
    with pytest.raises(ValueError, match="unique"):
        split_queries_three_way([*QIDS, "q001"], choose=5, report=5, seed=1)
    with pytest.raises(ValueError, match="part must be one of"):
        split_queries_three_way(QIDS, choose=5, report=5, seed=1).part("test")


def test_kfold_puts_every_query_in_exactly_one_fold() -> None:
    folds = kfold(QIDS, 4, seed=2)
    assert len(folds) == 4
    held = [q for _, fold in folds for q in fold]
    assert sorted(held) == QIDS
    for rest, fold in folds:
        assert not set(rest) & set(fold) and set(rest) | set(fold) == set(QIDS)
    assert kfold(reversed(QIDS), 4, seed=2) == folds
    with pytest.raises(ValueError, match="k must be between"):
        kfold(QIDS, 1, seed=2)
