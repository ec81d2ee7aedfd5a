"""Pure UI helpers: pipeline switches from settings fields, filters, reports and upload storage."""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from app.settings import Settings
from app.ui import filters, reports, switches
from app.ui.documents import UploadError, check_collection_name, store_uploads


class OnlyFusion(BaseModel):
    """Settings of a build that has fusion switches only (before reranking, context and memory settings)."""

    fusion: Literal["rrf", "convex"] = "convex"
    fusion_alpha: float = Field(0.5, ge=0, le=1)


def test_switches_follow_the_fields_settings_has() -> None:
    assert [s.name for s in switches.available_switches(OnlyFusion())] == ["fusion", "fusion_alpha"]  # type: ignore[arg-type]
    settings = Settings()
    offered = {s.name: s for s in switches.available_switches(settings)}
    fields = Settings.model_fields
    for name in ("positioning", "compression"):
        if name in fields:  # choices come from the Literal type, whatever modes the build has
            assert offered[name].choices == typing.get_args(fields[name].annotation)
            assert offered[name].default == getattr(settings, name)
    if "memory" in fields:
        assert offered["memory"].kind == "toggle"
    assert offered["fusion"].choices == ("rrf", "convex")


@pytest.mark.skipif("reranker" not in Settings.model_fields, reason="this build has no reranking settings")
def test_rerank_switch_only_when_a_reranker_is_configured() -> None:
    plain = Settings().model_copy(update={"reranker": None})
    assert "reranker" not in {s.name for s in switches.available_switches(plain)}
    configured = plain.model_copy(update={"reranker": "my-cross-encoder"})
    rerank = next(s for s in switches.available_switches(configured) if s.name == "reranker")
    assert rerank.kind == "reranker" and rerank.default == "my-cross-encoder"
    assert switches.options_from({"reranker": False}, configured) == {"reranker": None}
    assert switches.options_from({"reranker": True}, configured) == {}


def test_options_hold_only_what_differs_from_settings() -> None:
    settings = Settings()
    other = "rrf" if settings.fusion == "convex" else "convex"
    values = {"fusion": other, "fusion_alpha": settings.fusion_alpha}
    assert switches.options_from(values, settings) == {"fusion": other}
    assert switches.options_from({"fusion": settings.fusion}, settings) == {}


def test_filters_from_facets_and_json() -> None:
    metadata = [{"region": "EU", "status": "current", "title": "x"}, {"region": "US", "version": 3}]
    assert filters.facets(metadata) == {"region": ["EU", "US"], "status": ["current"], "version": [3]}
    assert filters.build_filter({}) is None
    assert filters.build_filter({"region": ["EU"]}) == {"region": "EU"}
    assert filters.build_filter({"region": ["EU", "US"], "status": []}) == {"region": {"$in": ["EU", "US"]}}
    raw = '{"effective_date": {"$gte": "2024-01-01"}}'
    assert filters.build_filter({"region": ["EU"]}, raw) == {
        "$and": [{"region": "EU"}, {"effective_date": {"$gte": "2024-01-01"}}]
    }
    with pytest.raises(ValueError, match="not valid JSON"):
        filters.build_filter({}, "{region: EU}")
    with pytest.raises(ValueError, match="JSON object"):
        filters.build_filter({}, "[1]")


def test_reports_are_listed_newest_first_with_whatever_files_exist(tmp_path: Path) -> None:
    run = tmp_path / "20260101-eval"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"results": {"bm25": {"ndcg@10": 0.6, "queries": 5}}}))
    (run / "report.html").write_text("<h1>report</h1>")
    (run / "recall.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    flat = tmp_path / "bench-retrieval-1.json"
    flat.write_text("{}")
    (tmp_path / "empty-run").mkdir()
    os.utime(flat, (1, 1))
    found = reports.list_reports(tmp_path)
    assert [r.run_id for r in found] == ["20260101-eval", "bench-retrieval-1"]
    assert found[0].json_path == run / "report.json" and found[0].html_path == run / "report.html"
    assert found[0].images == [run / "recall.png"]
    assert reports.results_table(reports.read_json(run / "report.json")) == [
        {"variant": "bm25", "ndcg@10": 0.6, "queries": 5}
    ]
    assert reports.results_table({}) == [] and reports.list_reports(tmp_path / "missing") == []
    (run / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"broken\.json is not valid JSON"):
        reports.read_json(run / "broken.json")


def test_eval_command_is_the_cli_command() -> None:
    command = reports.eval_retrieval_command(
        Path("/data/scifact"), collection="sci", split="train", pipeline="bm25", limit=5
    )
    assert command[1:] == [
        "-m", "app.cli", "eval", "retrieval", "--beir", "/data/scifact", "--split", "train",
        "--pipeline", "bm25", "--collection", "sci", "--limit", "5",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="pipeline must be one of"):
        reports.eval_retrieval_command(Path("x"), collection=None, split="test", pipeline="bogus", limit=None)


def test_uploads_are_stored_under_plain_names_and_checked(tmp_path: Path) -> None:
    paths = store_uploads(tmp_path, [("../../evil/notes.md", b"# hi"), ("a.txt", b"text")], max_mb=1)
    assert paths == [tmp_path / "notes.md", tmp_path / "a.txt"] and (tmp_path / "notes.md").read_bytes() == b"# hi"
    with pytest.raises(UploadError, match="unsupported file type"):
        store_uploads(tmp_path, [("tool.exe", b"MZ")], max_mb=1)
    with pytest.raises(UploadError, match=r"over the 0\.001 MB upload limit"):
        store_uploads(tmp_path, [("big.txt", b"x" * 2000)], max_mb=0.001)
    with pytest.raises(UploadError, match="not a plain file name"):
        store_uploads(tmp_path, [(".hidden.md", b"x")], max_mb=1)
    with pytest.raises(UploadError, match="collection name"):
        check_collection_name("../etc")
