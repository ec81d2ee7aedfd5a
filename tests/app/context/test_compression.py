"""LLMLingua compression with the provisioned SmolLM2 folder: prose shrinks, structure and identifiers do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.context.compression import CompressionUnavailableError, EvidenceCompressor
from app.query.build import compression_model_dir
from app.query.stages.compress import CompressContext
from retrieval.types import Chunk, Hit, QueryState

PROSE = (
    "The first Nobel Prize in Physics was awarded in 1901 to Wilhelm Conrad Röntgen, of Germany, who received a "
    "sum of money that was considered very large at the time, and which he donated to his university. "
    "The prize has since been awarded to many physicists from many countries, and it is regarded as the most "
    "prestigious award in the field, with a ceremony held every year in Stockholm in the month of December. "
    "Error ERR-4012 is shown when the card is declined."
)
STRUCTURED = [
    '{"plan": "pro", "seats": 5, "region": "EU", "refund_days": 30, "note": "charges after 2024-03-01"}',
    "SELECT id, amount FROM charges WHERE region = 'EU' AND created_at >= '2024-03-01' ORDER BY amount DESC",
    "| plan | price | seats |\n|---|---|---|\n| Pro | 12 | 5 |\n| Starter | 5 | 1 |",
]


@pytest.fixture(scope="module")
def compressor(model_dir: Callable[[str], Path]) -> EvidenceCompressor:
    return EvidenceCompressor("longllmlingua", model_dir("smollm2-135m"), rate=0.5)


def test_prose_is_compressed_and_identifier_sentences_stay_verbatim(compressor: EvidenceCompressor) -> None:
    result = compressor.compress(PROSE, "who got the first nobel prize in physics")
    assert result.verbatim is None
    assert result.tokens_after < result.tokens_before * 0.9, result
    assert "Error ERR-4012 is shown when the card is declined." in result.text


@pytest.mark.parametrize("text", STRUCTURED)
def test_structured_text_passes_through_untouched(compressor: EvidenceCompressor, text: str) -> None:
    result = compressor.compress(text, "what is the refund window")
    assert result.text == text and result.verbatim is not None and result.tokens_after == result.tokens_before


def test_plain_llmlingua_also_compresses(compressor: EvidenceCompressor) -> None:
    plain = EvidenceCompressor("llmlingua", compressor.model_dir, rate=0.5)
    assert plain.compressor is compressor.compressor  # loaded once per folder
    result = plain.compress(PROSE, "")
    assert result.tokens_after < result.tokens_before


def test_llmlingua2_without_its_model_is_a_clear_error(tmp_path: Path, settings_for, models_dir: Path) -> None:
    settings = settings_for(tmp_path, compression="llmlingua2")
    assert settings.models_dir == models_dir
    with pytest.raises(CompressionUnavailableError, match="needs a token-classification model"):
        compression_model_dir(settings, "llmlingua2")


def _state(texts: list[str]) -> QueryState:
    state = QueryState(question="who got the first nobel prize in physics", collection="c")
    state.context = [Hit(Chunk(id=f"c{i}", doc_id=f"d{i}", text=t), 1.0, "fused") for i, t in enumerate(texts)]
    return state


def test_auto_compresses_only_when_evidence_exceeds_its_share(compressor: EvidenceCompressor) -> None:
    def must_not_load() -> EvidenceCompressor:
        raise AssertionError("the compressor was loaded although the evidence fits")

    fits = CompressContext("auto", must_not_load, lambda h: len(h.chunk.text.split()), lambda s: 10_000)(
        _state([PROSE])
    )
    assert "compressed" not in fits.candidates and fits.trace[-1].details["compressed"] is False

    state = CompressContext("auto", lambda: compressor, lambda h: len(h.chunk.text.split()), lambda s: 20)(
        _state([PROSE, STRUCTURED[0]])
    )
    details = state.trace[-1].details
    assert details["compressed"] is True and details["ratio"] > 1 and details["compress_ms"] > 0
    assert [h.chunk.text for h in state.context] == [PROSE, STRUCTURED[0]]  # originals kept for citations
    assert state.candidates["compressed"][1].chunk.text == STRUCTURED[0]
    assert details["sources"][1]["verbatim"] == "json"
