"""Evidence compression as a stage; the compressor engine is ``app.context.compression``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from app.context.calibration import Calibration, decide_compression
from app.context.compression import EvidenceCompressor, timed_compress
from retrieval.types import Hit, QueryState


class CompressContext:
    """Compresses evidence text for the prompt; ``state.context`` keeps the originals for the citation check.

    ``mode`` is ``always`` (an explicit LLMLingua method) or ``auto``: compress when the selected evidence exceeds
    ``allowance(state)``, the evidence share of the budget, or when the calibration for this host predicts that the
    prefill time saved beats the compression time (``decide_compression``); the decision, its reason and both
    predictions go into the trace. The compressed texts go to ``candidates["compressed"]``, which the assembler uses
    in place of the chunk text. The compressor is built by ``load`` on first need, so a skipped ``auto`` costs
    nothing.
    """

    name = "compress"
    reads: tuple[str, ...] = ("context",)
    writes: tuple[str, ...] = ("compressed",)

    def __init__(
        self,
        mode: str,
        load: Callable[[], EvidenceCompressor],
        measure: Callable[[Hit], int],
        allowance: Callable[[QueryState], int] | None = None,
        *,
        rate: float = 0.5,
        calibration: Calibration | None = None,
        calibration_note: str = "no calibration",
    ) -> None:
        if mode not in ("always", "auto"):
            raise ValueError(f"mode must be always or auto, got {mode!r}")
        if mode == "auto" and allowance is None:
            raise ValueError("auto compression needs the evidence allowance")
        self.mode, self.load, self.measure, self.allowance = mode, load, measure, allowance
        self.rate, self.calibration, self.calibration_note = rate, calibration, calibration_note

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            tokens = sum(self.measure(h) for h in state.context)
            entry.details.update(mode=self.mode, evidence_tokens=tokens)
            if self.mode == "auto":
                assert self.allowance is not None
                room = self.allowance(state)
                decision = decide_compression(
                    tokens, room, self.rate, self.calibration, missing_reason=self.calibration_note
                )
                entry.details.update(
                    allowance=room,
                    decision=decision.reason,
                    predicted_saving_ms=decision.predicted_saving_ms,
                    predicted_cost_ms=decision.predicted_cost_ms,
                )
                if not decision.compress:
                    entry.details["compressed"] = False
                    entry.items_out = len(state.context)
                    return state
            compressor = self.load()
            compressed, per_source, before, after, spent_ms = [], [], 0, 0, 0.0
            for hit in state.context:
                result, ms = timed_compress(compressor, hit.chunk.text, state.question)
                compressed.append(Hit(replace(hit.chunk, text=result.text), hit.score, hit.stage))
                before, after, spent_ms = before + result.tokens_before, after + result.tokens_after, spent_ms + ms
                per_source.append(
                    {
                        "chunk_id": hit.chunk.id,
                        "before": result.tokens_before,
                        "after": result.tokens_after,
                        "verbatim": result.verbatim,
                    }
                )
            state.candidates["compressed"] = compressed
            entry.items_out = len(compressed)
            entry.details.update(
                compressed=True,
                method=compressor.method,
                tokens_before=before,
                tokens_after=after,
                ratio=round(before / after, 3) if after else None,
                compress_ms=round(spent_ms, 1),
                sources=per_source,
            )
        return state
