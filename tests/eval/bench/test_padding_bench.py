"""The padding count behind the ingestion batch size: exact arithmetic, no clock."""

from __future__ import annotations

from pathlib import Path

from eval.bench.padding import embedder_token_lengths, padded_tokens, padding_by_batch


def test_padded_tokens_sorts_then_pads_each_mini_batch() -> None:
    assert padded_tokens([3, 10, 4, 9], mini_batch=2) == 2 * 10 + 2 * 4
    assert padded_tokens([5], mini_batch=64) == 5


def test_small_calls_pad_more_than_one_sorted_pass() -> None:
    # Each document holds one long and one short text: two documents per call pair them badly.
    documents = [[100, 10], [100, 10], [100, 10], [100, 10]]
    ratios = padding_by_batch(documents, [1, 2, 4], mini_batch=2)
    assert ratios[4] == 1.0
    assert ratios[1] == (4 * 2 * 100) / (2 * 2 * 100 + 2 * 2 * 10)
    assert ratios[1] > ratios[2] >= ratios[4]


def test_lengths_are_the_embedders_tokens_capped_at_its_maximum(embedder_dir: Path) -> None:
    lengths = embedder_token_lengths(embedder_dir, [["short text", "word " * 2000], []])
    assert lengths[1] == []
    assert 2 < lengths[0][0] < 10 and lengths[0][1] == 256
