"""The HyDE experiment's hybrid variant is the one ``eval.retrieval_quality`` builds for the configured fusion."""

from __future__ import annotations

import pytest

from eval.experiments.hyde import HybridConfig
from eval.retrieval_quality import standard_variants


@pytest.mark.parametrize(("fusion", "expected"), [("rrf", "rrf(k=60)"), ("convex", "convex(α=0.30)")])
def test_the_configured_fusion_names_a_standard_variant(fusion: str, expected: str) -> None:
    hybrid = HybridConfig(fusion, rrf_k=60, fusion_alpha=0.3, bm25_top_k=20, dense_top_k=20)
    assert hybrid.hybrid_name == expected
    assert hybrid.hybrid_name in standard_variants(hybrid.rrf_k, [hybrid.fusion_alpha])
