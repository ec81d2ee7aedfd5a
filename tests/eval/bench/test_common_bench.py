"""What the benchmarks share: percentiles, speed-ups and the dated results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.bench.common import percentiles, speedup, write_report


def test_percentiles_and_speedup() -> None:
    assert percentiles([4.0, 1.0, 3.0, 2.0]) == {"p50": 2.5, "p95": 4.0, "n": 4}
    assert speedup(10.0, 4.0) == 2.5
    assert speedup(1.0, 0.0) == pytest.approx(1e9)


def test_write_report_creates_a_dated_file_under_the_reports_folder(tmp_path: Path) -> None:
    out = write_report(tmp_path / "reports", "ingest", {"corpus": "c", "ratios": {"32": 1.0}})
    assert out.parent == tmp_path / "reports" and out.name.startswith("bench-ingest-") and out.suffix == ".json"
    assert json.loads(out.read_text()) == {"corpus": "c", "ratios": {"32": 1.0}}
