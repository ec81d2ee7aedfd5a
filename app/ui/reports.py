"""Evaluation page logic: find past reports, read them, and build the ``ragline eval retrieval`` command.

Reports live under ``settings.reports_dir``: a run folder ``<run-id>/`` holding ``report.json``, ``report.html``
and plots (``*.png``), or a single JSON file written by the benchmarks. The page shows whatever a run wrote.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
EVAL_PIPELINES = ("all", "hybrid", "bm25", "dense")


@dataclass(frozen=True)
class Report:
    """One evaluation or benchmark run: its JSON, its HTML page and its plots, whichever exist."""

    run_id: str
    path: Path
    modified: float
    json_path: Path | None = None
    html_path: Path | None = None
    images: list[Path] = field(default_factory=list)
    other: list[Path] = field(default_factory=list)

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.modified, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _from_folder(folder: Path) -> Report | None:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        return None
    jsons = [p for p in files if p.suffix == ".json"]
    htmls = [p for p in files if p.suffix in (".html", ".htm")]
    json_path = next((p for p in jsons if p.name == "report.json"), jsons[0] if jsons else None)
    html_path = next((p for p in htmls if p.name == "report.html"), htmls[0] if htmls else None)
    images = [p for p in files if p.suffix.lower() in (".png", ".svg", ".jpg", ".jpeg")]
    other = [p for p in files if p not in (json_path, html_path) and p not in images]
    return Report(folder.name, folder, max(p.stat().st_mtime for p in files), json_path, html_path, images, other)


def list_reports(reports_dir: Path) -> list[Report]:
    """Every run under ``reports_dir``, newest first (an absent folder has none)."""
    if not reports_dir.is_dir():
        return []
    reports: list[Report] = []
    for path in reports_dir.iterdir():
        if path.is_dir():
            report = _from_folder(path)
            if report is not None:
                reports.append(report)
        elif path.suffix == ".json":
            reports.append(Report(path.stem, path, path.stat().st_mtime, json_path=path))
        elif path.suffix in (".html", ".htm"):
            reports.append(Report(path.stem, path, path.stat().st_mtime, html_path=path))
    return sorted(reports, key=lambda r: (r.modified, r.run_id), reverse=True)


def read_json(path: Path) -> Any:
    """A report's JSON; a file that is not valid JSON raises ``ValueError`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name} is not valid JSON: {exc}") from None


def results_table(report: Any) -> list[dict[str, Any]]:
    """The ``results`` of a retrieval report (variant → metric → value) as rows; empty when there are none."""
    results = report.get("results") if isinstance(report, dict) else None
    if not isinstance(results, dict):
        return []
    rows = []
    for variant, metrics in results.items():
        if isinstance(metrics, dict):
            numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            rows.append({"variant": variant, **numbers})
    return rows


def eval_retrieval_command(
    beir: Path,
    *,
    collection: str | None,
    split: str,
    pipeline: str,
    limit: int | None,
    json_out: Path | None = None,
) -> list[str]:
    """The ``ragline eval retrieval`` command line for a BEIR folder, run with this Python."""
    if pipeline not in EVAL_PIPELINES:
        raise ValueError(f"pipeline must be one of {', '.join(EVAL_PIPELINES)}, got {pipeline!r}")
    command = [sys.executable, "-m", "app.cli", "eval", "retrieval", "--beir", str(beir), "--split", split]
    command += ["--pipeline", pipeline]
    if collection:
        command += ["--collection", collection]
    if limit:
        command += ["--limit", str(limit)]
    if json_out is not None:
        command += ["--json", str(json_out)]
    return command


def beir_folders(*roots: Path) -> list[Path]:
    """BEIR folders (a corpus and queries file) directly under ``roots``, to offer on the Evaluation page."""
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            has_corpus = any((folder / n).is_file() for n in ("corpus.jsonl", "corpus.jsonl.gz"))
            if has_corpus and (folder / "queries.jsonl").is_file():
                found.append(folder)
    return found


class OutsideDataDirError(ValueError):
    """A folder a tenant named that is not a BEIR folder under the data directory (the message names no server
    path, and is the same whether the folder is missing, outside, or just not a dataset)."""


def _beir_files(folder: Path) -> list[Path]:
    """The files an evaluation of ``folder`` reads: the corpus, the queries and every qrels split."""
    corpus = [folder / name for name in ("corpus.jsonl", "corpus.jsonl.gz") if (folder / name).is_file()]
    qrels = sorted((folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
    return [*corpus, folder / "queries.jsonl", *qrels]


def _dataset_inside(base: Path, given: str) -> Path | None:
    """The BEIR folder ``given`` names inside ``base`` (resolved), or None when it is not one or leads out."""
    if not given.strip():
        return None
    candidate = Path(given.strip())
    folder = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if not folder.is_relative_to(base) or not folder.is_dir():
        return None
    files = _beir_files(folder)
    if len(files) < 3 or not all(path.is_file() and path.resolve().is_relative_to(base) for path in files):
        return None
    return folder


def beir_folder_under(root: Path, given: str) -> Path:
    """``given`` (relative to ``root``, or absolute) as a BEIR folder inside ``root``, symlinks resolved.

    A tenant of a shared server may evaluate on datasets under the data directory, never read the server's other
    files (a symlink that leads out, of the folder or of one of its files, is refused), and may not learn which
    folders exist: a missing folder, one outside, and one that is not a dataset (another tenant's uploads) all get
    the same message, which repeats only what the tenant typed.
    """
    try:
        folder = _dataset_inside(root.resolve(), given)
    except (OSError, ValueError):  # an unreadable folder, a NUL in the name: refused like any other
        folder = None
    if folder is None:
        raise OutsideDataDirError(f"{given!r} is not a BEIR folder under the data directory")
    return folder
