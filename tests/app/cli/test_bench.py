"""``ragline bench``: the rerank bench end to end on the real sample index, with a real (tiny, one-step) cross-encoder;
the flag parsers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli.bench import parse_top_ns
from app.cli.root import app
from app.reranker.data import LabelledQuery, mine_pairs
from app.reranker.train import TrainConfig, train_cross_encoder
from app.resources import Resources
from app.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """The command reads settings from the environment CliRunner sets: no settings cached by another test."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def tiny_reranker(sample_resources: Resources, embedder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    queries = [LabelledQuery("q", "How long do EU customers have to request a refund?", frozenset())]
    chunk = sample_resources.index.manifest.chunks("sample")[0]
    queries = [LabelledQuery("q", queries[0].text, frozenset({chunk.doc_id}), (chunk.id,))]
    mined = mine_pairs(
        sample_resources.index, sample_resources.settings, "sample", queries, negatives=2, progress=False
    )
    out = tmp_path_factory.mktemp("tiny-reranker")
    config = TrainConfig(max_steps=1, batch_size=3, max_length=32, layers=1)
    train_cross_encoder(embedder_dir, mined.pairs, out, config, progress=False)
    return out


def test_bench_rerank_reports_quality_and_latency_for_every_engine(
    sample_resources: Resources, tiny_reranker: Path, models_env
) -> None:
    env = models_env(sample_resources.settings.data_dir)
    result = CliRunner().invoke(
        app, ["bench", "rerank", "--model", str(tiny_reranker), "--top-n", "3,5", "--limit", "4", "--max-length", "32"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report_path = Path(result.output.strip().splitlines()[-1].removeprefix("report: "))
    report = json.loads(report_path.read_text())
    name = tiny_reranker.name
    engines = ("torch", "torch-int8", "onnx", "onnx-int8")
    assert set(report["ndcg@10"]) == {"hybrid", *(f"{name} {engine}" for engine in engines)}
    assert all(0.0 <= value <= 1.0 for value in report["ndcg@10"].values())
    # the fp32 export scores as torch does: same ranking, same nDCG
    assert report["ndcg@10"][f"{name} onnx"] == pytest.approx(report["ndcg@10"][f"{name} torch"], abs=1e-4)
    assert set(report["latency_ms"][f"{name} onnx-int8"]) == {"3", "5"}
    assert report["speedup_vs"] == "torch"
    assert set(report["speedup"]) == {f"{name} {engine}" for engine in engines[1:]}
    assert report["speedup"][f"{name} onnx-int8"]["3"] > 0


def test_a_missing_reranker_folder_is_a_clear_error(sample_resources: Resources, tmp_path: Path, models_env) -> None:
    result = CliRunner().invoke(
        app, ["bench", "rerank", "--model", str(tmp_path / "nope")], env=models_env(sample_resources.settings.data_dir)
    )
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_top_n_must_be_positive_integers() -> None:
    assert parse_top_ns("50,20,20") == [20, 50]
    with pytest.raises(typer.BadParameter):
        parse_top_ns("twenty")
