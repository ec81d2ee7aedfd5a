"""Builds the query stages from settings: hybrid search, rerank, context (select → position → compress → assemble →
abstain → answerability), generation and the citation check.

The pipeline never branches on stage, positioning or compression names: this factory turns settings into stage
objects over the shared, already-loaded resources and the process-wide tokenizer and compressor caches, so building
them per request is cheap. The result is a ``StagePlan``, whose wiring is checked as it is made.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.context.calibration import calibration_path, usable_calibration
from app.context.compression import CompressionUnavailableError, EvidenceCompressor
from app.context.positioning import make_positioner
from app.model_registry import ModelRole
from app.query.budget import BudgetPlanner
from app.query.prompt import MIN_TRIM_TOKENS, SYSTEM_PROMPT, SourceCost, user_message
from app.query.stages.abstain import AbstainGate
from app.query.stages.answerability import AnswerabilityGate
from app.query.stages.assemble import AssemblePrompt
from app.query.stages.citations import CheckCitations
from app.query.stages.compress import CompressContext
from app.query.stages.deduplicate import Deduplicate
from app.query.stages.fuse import Fuse
from app.query.stages.generate import Generate
from app.query.stages.hybrid_search import HybridSearch
from app.query.stages.hyde import HypotheticalDocument
from app.query.stages.long_rerank import LongContextRerank
from app.query.stages.position import PositionContext
from app.query.stages.rerank import Rerank
from app.query.stages.screen import ScreenInjections
from app.query.stages.select import SelectContext
from app.query.stages.window import ExpandWindows
from app.query.wiring import StagePlan
from app.resources import Resources, resolve_model_dir
from app.settings import Settings
from app.token_counter import ChatTemplateTokenCounter
from retrieval.fusion import make_fusion
from retrieval.types import QueryState, Stage

AUTO_METHOD = "longllmlingua"
"""What ``compression="auto"`` runs when it compresses: question-aware compression keeps what the answer needs."""


def compression_model_dir(settings: Settings, method: str) -> Path:
    """The compression model folder; LLMLingua-2 additionally needs a token-classification model."""
    folder = resolve_model_dir(settings, settings.compression_model, ModelRole.GENERATOR)
    if method == "llmlingua2":
        config = folder / "config.json"
        architectures = json.loads(config.read_text()).get("architectures", []) if config.is_file() else []
        if not any("ForTokenClassification" in name for name in architectures):
            raise CompressionUnavailableError(
                f"compression 'llmlingua2' needs a token-classification model (such as "
                f"llmlingua-2-xlm-roberta-large-meetingbank), but {folder} holds {architectures or 'no model'}; "
                "no such model ships offline: set RAGLINE_COMPRESSION_MODEL to a folder holding one, or use "
                "compression 'llmlingua' or 'longllmlingua'"
            )
    return folder


def build_stages(resources: Resources, settings: Settings) -> StagePlan:
    """Every stage of one query for ``settings``; a configured reranker loads (and is checked) here, at build time."""
    index = resources.index
    rerank = rerank_stage(resources, settings)
    retrieval: list[Stage] = [
        *([HypotheticalDocument(resources.generator)] if settings.hyde else []),
        HybridSearch(index, settings.bm25_top_k, settings.dense_top_k),
        Fuse(make_fusion(settings.fusion, rrf_k=settings.rrf_k, alpha=settings.fusion_alpha)),
        Deduplicate(index, settings.dedup_threshold),
        *([] if rerank is None else [rerank]),
    ]
    ranked = "deduplicated" if rerank is None else "reranked"
    retrieval.append(ExpandWindows(ranked))  # a no-op unless the collection was chunked by sentence-window
    ranked = "windowed"
    if settings.injection_screen:
        retrieval.append(ScreenInjections(ranked))
        ranked = "screened"
    retrieval += context_stages(resources, settings, source=ranked)
    counter = ChatTemplateTokenCounter(resources.generator_dir)
    generate = Generate(resources.generator, counter, settings.max_answer_tokens, settings.temperature)
    return StagePlan(tuple(retrieval), generate, CheckCitations(settings.ungrounded_answers))


def rerank_stage(resources: Resources, settings: Settings) -> Stage | None:
    """The rerank stage of ``settings.rerank_mode`` over the deduplicated candidates, or None without a reranker."""
    if settings.reranker is None:
        return None
    if settings.rerank_mode == "long-context":
        joint = resources.long_context_reranker_for(settings)
        assert joint is not None
        return LongContextRerank(joint, settings.rerank_top_n, weight=settings.rerank_weight)
    reranker = resources.reranker_for(settings)
    assert reranker is not None
    return Rerank(reranker, settings.rerank_top_n, weight=settings.rerank_weight)


def context_stages(resources: Resources, settings: Settings, source: str = "deduplicated") -> list[Stage]:
    """Selection under the token budget, positioning, compression (unless off), assembly and the abstention gate."""
    counter = ChatTemplateTokenCounter(resources.generator_dir)
    planner = BudgetPlanner(counter, settings.context_budget_tokens, settings.max_answer_tokens)
    cost = SourceCost(counter)

    def allowance(state: QueryState) -> int:
        budget, _ = planner.plan(SYSTEM_PROMPT, state.history, user_message(state.question, []))
        return budget.evidence_allowance

    compressing = settings.compression != "off"
    method = AUTO_METHOD if settings.compression == "auto" else settings.compression

    def selection_allowance(state: QueryState) -> int:
        """With compression on, select as much evidence as will fit once compressed."""
        room = allowance(state)
        return int(room / settings.compression_rate) if compressing else room

    stages: list[Stage] = [
        SelectContext(
            settings.context_top_k,
            source=source,
            allowance=selection_allowance,
            measure=cost,
            trim=cost.trim,
            min_trim_tokens=MIN_TRIM_TOKENS,
        ),
        PositionContext(settings.positioning, make_positioner(settings.positioning)),
    ]
    if compressing:
        folder = compression_model_dir(settings, method)
        calibration, note = None, "not auto"
        if settings.compression == "auto":
            calibration, note = usable_calibration(
                calibration_path(settings.data_dir), resources.generator.model, settings.compression_model
            )
        stages.append(
            CompressContext(
                "auto" if settings.compression == "auto" else "always",
                lambda: EvidenceCompressor(method, folder, settings.compression_rate),
                cost,
                allowance,
                rate=settings.compression_rate,
                calibration=calibration,
                calibration_note=note,
            )
        )
    stages += [AssemblePrompt(counter, planner), AbstainGate(settings.abstain_threshold, settings.abstain_thresholds)]
    if settings.answerability_check:
        stages.append(AnswerabilityGate(resources.generator, settings.answerability_threshold))
    return stages
