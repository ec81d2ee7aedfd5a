"""When compressing pays on this hardware: prefill and compression speeds, and the decision they drive.

Compression removes evidence tokens that the generator would otherwise prefill, but running the compression LM costs
time too. Which is larger depends on the machine: on a GPU vLLM prefills thousands of tokens a second and a CPU
compressor never pays for itself; on a CPU-only laptop the balance can tip. ``ragline eval compression
--calibrate`` measures both speeds against the live vLLM and the compression LM and writes them to
``<data_dir>/calibration.json``; ``compression="auto"`` then compresses evidence that fits its budget only when the
predicted prefill time saved exceeds the predicted compression time. Without a calibration (or with one measured
for other models) only the over-budget rule applies, and the trace says why.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

CALIBRATION_FILE = "calibration.json"


class CalibrationError(ValueError):
    """A calibration file exists but cannot be used; the message says how to measure it again."""


@dataclass(frozen=True)
class Calibration:
    """Speeds measured on this host, for one generator and one compression model."""

    prefill_tokens_per_s: float
    compression_tokens_per_s: float
    generator: str
    compression_model: str
    method: str
    measured_at: str

    def __post_init__(self) -> None:
        if self.prefill_tokens_per_s <= 0 or self.compression_tokens_per_s <= 0:
            raise CalibrationError(
                f"calibration speeds must be positive, got prefill {self.prefill_tokens_per_s} and compression "
                f"{self.compression_tokens_per_s} tokens/s: run `ragline eval compression --calibrate` again"
            )


@dataclass(frozen=True)
class CompressionDecision:
    """Whether to compress, why, and the predictions behind it (all go into the ``compress`` trace entry)."""

    compress: bool
    reason: str
    predicted_saving_ms: float | None = None
    predicted_cost_ms: float | None = None


def calibration_path(data_dir: Path) -> Path:
    return Path(data_dir) / CALIBRATION_FILE


def save_calibration(calibration: Calibration, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(calibration), indent=2), encoding="utf-8")
    return path


def load_calibration(path: Path) -> Calibration | None:
    """The calibration at ``path``, ``None`` when there is none; a malformed file is a ``CalibrationError``."""
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Calibration(**raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise CalibrationError(
            f"{path} is not a calibration file ({exc}): delete it or run `ragline eval compression --calibrate`"
        ) from None


def prefill_rate(samples: Sequence[tuple[int, float, int, float]]) -> float:
    """Prefill tokens per second from (short tokens, short s, long tokens, long s) pairs of requests that differ
    only in added evidence: the time difference is the prefill of the added tokens alone, without the fixed cost of a
    request (HTTP, scheduling, one decoded token). The median over pairs resists a load spike on a shared host."""
    rates = [(lt - st) / (ls - ss) for st, ss, lt, ls in samples if lt > st and ls > ss]
    if not rates:
        raise CalibrationError(
            "no usable prefill measurement: the longer prompt was never slower than the shorter one "
            "(a loaded or cached server?); run the calibration again"
        )
    return statistics.median(rates)


def decide_compression(
    evidence_tokens: int,
    allowance: int,
    rate: float,
    calibration: Calibration | None,
    *,
    missing_reason: str = "no calibration",
) -> CompressionDecision:
    """The ``auto`` rule: compress when evidence exceeds its budget share, or when the prefill time saved by
    removing ``(1 - rate)`` of the evidence tokens beats the time the compressor takes to read all of them.

    ``missing_reason`` explains an absent calibration in the trace (where the file was looked for).
    """
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    if evidence_tokens > allowance:
        return CompressionDecision(True, f"evidence ({evidence_tokens} tokens) exceeds its allowance ({allowance})")
    if calibration is None:
        return CompressionDecision(False, f"evidence fits its allowance; {missing_reason}, so only the budget rule")
    saving = evidence_tokens * (1 - rate) / calibration.prefill_tokens_per_s * 1000
    cost = evidence_tokens / calibration.compression_tokens_per_s * 1000
    verdict = "beats" if saving > cost else "does not beat"
    return CompressionDecision(
        saving > cost,
        f"evidence fits; predicted prefill saving {saving:.0f} ms {verdict} compression cost {cost:.0f} ms",
        round(saving, 1),
        round(cost, 1),
    )


def usable_calibration(path: Path, generator: str, compression_model: str) -> tuple[Calibration | None, str]:
    """The calibration to use for these models, or ``None`` and the reason (for the trace)."""
    calibration = load_calibration(path)
    if calibration is None:
        return None, f"no calibration at {path} (run `ragline eval compression --calibrate`)"
    if (calibration.generator, calibration.compression_model) != (generator, compression_model):
        return None, (
            f"the calibration at {path} is for {calibration.generator} with {calibration.compression_model}, not "
            f"{generator} with {compression_model} (run `ragline eval compression --calibrate` again)"
        )
    return calibration, f"calibration from {path}"
