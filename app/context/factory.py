"""Builds the context stages (select → position → compress → assemble → abstain) from settings.

The pipeline never branches on positioning or compression names: this factory turns settings into stage objects
over the process-wide tokenizer and compressor caches, so building them per request is cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.context.abstain import AbstainGate
from app.context.answerability import AnswerabilityGate
from app.context.budget import BudgetPlanner
from app.context.calibration import calibration_path, usable_calibration
from app.context.compression import CompressionUnavailableError, EvidenceCompressor
from app.context.positioning import make_positioner
from app.context.stages import CompressContext, PositionContext
from app.model_registry import ModelRole
from app.prompting import MIN_TRIM_TOKENS, SYSTEM_PROMPT, AssemblePrompt, SourceCost, user_message
from app.resources import Resources, resolve_model_dir
from app.settings import Settings
from app.token_counter import ChatTemplateTokenCounter
from retrieval.stages import SelectContext
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
