"""The ``auto`` compression rule: over budget, or predicted prefill saving above compression cost on this host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.context.calibration import (
    Calibration,
    CalibrationError,
    decide_compression,
    load_calibration,
    prefill_rate,
    save_calibration,
    usable_calibration,
)
from app.context.compression import EvidenceCompressor
from app.query.stages.compress import CompressContext
from retrieval.types import Chunk, Hit, QueryState


def _calibration(prefill: float, compression: float) -> Calibration:
    return Calibration(prefill, compression, "qwen2.5-coder-0.5b", "smollm2-135m", "longllmlingua", "2026-01-01")


def test_evidence_over_its_allowance_is_compressed_whatever_the_speeds() -> None:
    decision = decide_compression(900, 800, 0.5, _calibration(prefill=10_000, compression=10))
    assert decision.compress and "exceeds its allowance" in decision.reason
    assert decision.predicted_saving_ms is None


def test_without_calibration_only_the_budget_rule_applies_and_says_so() -> None:
    decision = decide_compression(500, 800, 0.5, None, missing_reason="no calibration at /x/calibration.json")
    assert not decision.compress
    assert "no calibration at /x/calibration.json" in decision.reason


def test_fast_prefill_makes_compression_not_worth_it() -> None:
    # a GPU-like prefill: removing 300 of 600 tokens saves 150 ms; reading 600 tokens at 200 tokens/s costs 3 s
    decision = decide_compression(600, 800, 0.5, _calibration(prefill=2_000, compression=200))
    assert not decision.compress
    assert decision.predicted_saving_ms == 150.0 and decision.predicted_cost_ms == 3000.0
    assert "does not beat" in decision.reason


def test_slow_prefill_makes_compression_pay() -> None:
    # saving 400 × 0.6 / 50 = 4.8 s against 400 / 500 = 0.8 s of compression
    decision = decide_compression(400, 800, 0.4, _calibration(prefill=50, compression=500))
    assert decision.compress
    assert decision.predicted_saving_ms == 4800.0 and decision.predicted_cost_ms == 800.0


def test_break_even_is_prefill_below_kept_share_of_compression_speed() -> None:
    # compress iff compression × (1 - rate) > prefill; at equality it does not pay
    assert not decide_compression(100, 800, 0.5, _calibration(prefill=100, compression=200)).compress
    assert decide_compression(100, 800, 0.5, _calibration(prefill=99, compression=200)).compress


def test_a_bad_rate_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="rate must be in"):
        decide_compression(100, 800, 0.0, None)


def test_prefill_rate_is_the_median_of_differences() -> None:
    # pairs (short tokens, short s, long tokens, long s); the fixed cost of a request cancels out
    samples = [(100, 0.5, 1100, 2.5), (100, 0.4, 1100, 1.4), (100, 0.5, 1100, 1.5), (100, 1.0, 1100, 0.9)]
    assert prefill_rate(samples) == 1000.0  # rates 500, 1000, 1000; the inverted pair is ignored
    with pytest.raises(CalibrationError, match="no usable prefill measurement"):
        prefill_rate([(100, 1.0, 1100, 0.9)])


def test_calibration_round_trips_and_is_checked_against_the_models(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    assert usable_calibration(path, "qwen2.5-coder-0.5b", "smollm2-135m")[0] is None
    save_calibration(_calibration(800, 120), path)
    assert load_calibration(path) == _calibration(800, 120)
    calibration, note = usable_calibration(path, "qwen2.5-coder-0.5b", "smollm2-135m")
    assert calibration == _calibration(800, 120) and str(path) in note
    other, why = usable_calibration(path, "qwen2.5-1.5b", "smollm2-135m")
    assert other is None and "is for qwen2.5-coder-0.5b" in why


def test_a_malformed_calibration_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"prefill_tokens_per_s": 800}))
    with pytest.raises(CalibrationError, match="not a calibration file"):
        load_calibration(path)
    path.write_text(json.dumps({**_calibration(800, 120).__dict__, "compression_tokens_per_s": 0}))
    with pytest.raises(CalibrationError, match="must be positive"):
        load_calibration(path)


PROSE = (
    "The first Nobel Prize in Physics was awarded in 1901 to Wilhelm Conrad Röntgen, of Germany, who received a "
    "sum of money that was considered very large at the time, and which he donated to his university. "
    "The prize has since been awarded to many physicists from many countries, and it is regarded as the most "
    "prestigious award in the field, with a ceremony held every year in Stockholm in the month of December."
)


def _state() -> QueryState:
    state = QueryState(question="who got the first nobel prize in physics", collection="c")
    state.context = [Hit(Chunk(id="c0", doc_id="d0", text=PROSE), 1.0, "fused")]
    return state


def _words(hit: Hit) -> int:
    return len(hit.chunk.text.split())


def test_auto_stage_traces_a_skip_with_its_predictions() -> None:
    def must_not_load() -> EvidenceCompressor:
        raise AssertionError("the compressor was loaded although compression does not pay")

    stage = CompressContext(
        "auto", must_not_load, _words, lambda s: 10_000, rate=0.5, calibration=_calibration(5_000, 100)
    )
    details = stage(_state()).trace[-1].details
    assert details["compressed"] is False and "does not beat" in details["decision"]
    assert details["predicted_saving_ms"] < details["predicted_cost_ms"]


def test_auto_stage_compresses_fitting_evidence_when_prefill_is_slow(model_dir) -> None:
    compressor = EvidenceCompressor("longllmlingua", model_dir("smollm2-135m"), rate=0.5)
    stage = CompressContext(
        "auto", lambda: compressor, _words, lambda s: 10_000, rate=0.5, calibration=_calibration(1, 10_000)
    )
    state = stage(_state())
    details = state.trace[-1].details
    assert details["compressed"] is True and " beats " in details["decision"]
    assert details["predicted_saving_ms"] > details["predicted_cost_ms"] and details["ratio"] > 1
    assert state.candidates["compressed"][0].chunk.text != PROSE


def test_auto_compression_reads_the_calibration_of_its_data_dir(tmp_path: Path, settings_for) -> None:
    from app.query.build import context_stages
    from app.resources import Resources

    settings = settings_for(tmp_path, compression="auto")
    resources = Resources(settings)

    def compress_stage() -> CompressContext:
        return next(s for s in context_stages(resources, settings) if isinstance(s, CompressContext))

    assert compress_stage().calibration is None and "no calibration at" in compress_stage().calibration_note
    measured = Calibration(90.0, 10.0, resources.generator.model, settings.compression_model, "longllmlingua", "now")
    save_calibration(measured, tmp_path / "calibration.json")
    assert compress_stage().calibration == measured
