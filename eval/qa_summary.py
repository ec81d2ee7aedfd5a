"""The end of a QA run: its report files written from the stored results, and the console table of the configs.

The table shows the headline metrics some config has, then every P@k and Recall@k, then the median wall time, so a
run without gold ids or without the judge prints no empty columns. Each config's first errors come with its row:
a config that failed on every question should not look like one that scored zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.qa import RunStore
from eval.report import HEADLINE, flat_metrics, write_report

__all__ = ["ConfigRow", "RunReport", "finish_run", "summary_table"]

ERRORS_SHOWN = 3


@dataclass(frozen=True)
class ConfigRow:
    """One config's line of the table and up to ``ERRORS_SHOWN`` of its failed questions as ``id: error``."""

    line: str
    errors: list[str]


@dataclass(frozen=True)
class RunReport:
    """What a finished run shows: the table (header and rows) and where its HTML report is."""

    header: str
    rows: list[ConfigRow]
    html: Path


def _cell(value: float | None, width: int, fmt: str) -> str:
    return f"{'–' if value is None else format(value, fmt):>{width}}"


def summary_table(summary: Mapping[str, Mapping[str, Any]]) -> tuple[str, list[ConfigRow]]:
    """The header and one row per config of a report's ``summary`` (as ``eval.report.write_report`` builds it)."""
    keys = [k for k in HEADLINE if any(flat_metrics(s).get(k) is not None for s in summary.values())]
    keys += sorted({k for s in summary.values() for k in s["metrics"] if k.startswith(("p@", "recall@"))})
    header = f"{'config':16}" + "".join(f"{key[:12]:>13}" for key in keys) + f"{'p50 ms':>9}"
    rows = []
    for config, values in summary.items():
        flat = flat_metrics(values)
        cells = "".join(_cell(flat.get(key), 13, ".3f") for key in keys)
        wall = values["latency_ms"].get("total (wall)", {}).get("p50")
        errors = [f"{error['id']}: {error['error']}" for error in values["errors"][:ERRORS_SHOWN]]
        rows.append(ConfigRow(f"{config:16}{cells}{_cell(wall, 9, '.0f')}", errors))
    return header, rows


def finish_run(store: RunStore) -> RunReport:
    """Write ``report.json``, the plots and ``report.html`` from what ``store`` holds; return the console table."""
    report = write_report(store.folder, store.manifest(), store.results())
    header, rows = summary_table(report["summary"])
    return RunReport(header, rows, store.folder / "report.html")
