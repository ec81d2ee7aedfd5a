"""Long conversations with and without tiered memory: are early constraints and facts honoured, at what cost?

Each script (``eval/datasets/conversations/*.json``) is 30 user turns over the sample corpus: a constraint at turn
2 and a fact at turn 5 that the check turns (25-30) depend on. Two modes answer every script:

* ``memory``: ``MemoryService`` turns (rewrite, recall, summary, active window under a budget);
* ``keep_everything``: every earlier exchange verbatim as history, with a prompt budget raised so nothing is cut.

Per check turn two things are scored: *honoured* (the answer contains an expected term, word-bounded and
case-insensitive) and *retained* (the constraint's or fact's marker reaches the generator at all, in the history or
the rewritten search query): retention separates what memory keeps from what a small generator makes of it. Per
turn the generator's own prompt token count (vLLM usage) is recorded. Scripts run concurrently so vLLM batches.
This module takes its pipeline and service as objects and never imports ``app``.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memory.service import MemoryService
from retrieval.protocols import AnswersQuestions, Message

MODES = ("memory", "keep_everything")
CONVERSATION_SCRIPTS = Path(__file__).resolve().parents[1] / "datasets" / "conversations"
"""The bundled scripts: five 30-turn conversations over the sample corpus."""


@dataclass(frozen=True)
class ScriptTurn:
    user: str
    check: str | None = None
    expect_any: tuple[str, ...] = ()


@dataclass(frozen=True)
class Script:
    name: str
    collection: str
    turns: tuple[ScriptTurn, ...]
    markers: Mapping[str, tuple[str, ...]]


@dataclass
class TurnResult:
    turn: int
    prompt_tokens: int | None
    memory_tokens: int | None
    seconds: float
    answer: str = ""
    check: str | None = None
    honoured: bool | None = None
    retained: bool | None = None
    error: str | None = None


@dataclass
class ScriptRun:
    mode: str
    script: str
    turns: list[TurnResult] = field(default_factory=list)
    done: bool = False


@dataclass(frozen=True)
class MemoryBenchResult:
    """Every (mode, script) run, their summary per mode (``summarize``), and the results file that holds both."""

    report_path: Path
    summary: dict[str, dict[str, Any]]
    runs: list[ScriptRun]


def load_scripts(folder: Path, *, limit: int | None = None, turns: int | None = None) -> list[Script]:
    """The scripts in ``folder`` (``*.json``, by name): only the first ``limit`` of them and, for smoke runs,
    each cut to its first ``turns`` turns."""
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no conversation scripts (*.json) in {folder}")
    scripts = []
    for path in paths[:limit]:
        data = json.loads(path.read_text())
        steps = tuple(ScriptTurn(t["user"], t.get("check"), tuple(t.get("expect_any", ()))) for t in data["turns"])
        markers = {k: tuple(v) for k, v in data.get("markers", {}).items()}
        scripts.append(Script(data["name"], data.get("collection", "sample"), steps[:turns], markers))
    return scripts


def mentions(text: str, terms: Sequence[str]) -> bool:
    """Whether ``text`` contains any of ``terms`` as a whole word or phrase, ignoring case."""
    return any(re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) for term in terms)


class RecordingPipeline:
    """Passes every call to the real pipeline and keeps the memory it was given (to score retention)."""

    def __init__(self, pipeline: AnswersQuestions) -> None:
        self.pipeline = pipeline
        self.history: list[Message] = []
        self.search_query: str | None = None

    def run(self, question: str, collection: str, filters: Any = None, **kwargs: Any) -> Any:
        self.history, self.search_query = list(kwargs.get("history") or []), kwargs.get("search_query")
        return self.pipeline.run(question, collection, filters, **kwargs)

    def stream(self, question: str, collection: str, filters: Any = None, **kwargs: Any) -> Any:
        self.history, self.search_query = list(kwargs.get("history") or []), kwargs.get("search_query")
        return self.pipeline.stream(question, collection, filters, **kwargs)


def _stage(answer: Any, name: str) -> dict[str, Any]:
    return next((s for s in answer.trace.get("stages", []) if s.get("stage") == name), {})


def _score(result: TurnResult, turn: ScriptTurn, script: Script, seen: str) -> None:
    if turn.check is None:
        return
    result.check = turn.check
    result.honoured = mentions(result.answer, turn.expect_any)
    result.retained = mentions(seen, script.markers.get(turn.check, ()))


def run_memory(
    service: MemoryService, script: Script, options: Mapping[str, Any], run: ScriptRun, on_turn: Callable[[], None]
) -> ScriptRun:
    recorder = RecordingPipeline(service.pipeline)
    own = MemoryService(
        service.store,
        service.persistent,
        recorder,
        service.generator,
        service.counter,
        service.config,
        summarizer=service.summarizer,
    )
    session = own.create_session(
        f"bench-{script.name}-{uuid.uuid4().hex[:8]}", user=f"bench-{script.name}", collection=script.collection
    )
    try:
        for number, turn in enumerate(script.turns, start=1):
            started = time.perf_counter()
            try:
                answer = own.ask(session.id, turn.user, options=options)
                result = TurnResult(
                    number,
                    _stage(answer, "generate").get("prompt_tokens"),
                    _stage(answer, "memory").get("memory_tokens"),
                    time.perf_counter() - started,
                    answer.text,
                )
            except Exception as exc:  # one failed turn is a result to report, not the end of the benchmark
                result = TurnResult(
                    number, None, None, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"
                )
            seen = " ".join(m["content"] for m in recorder.history) + " " + (recorder.search_query or "")
            _score(result, turn, script, seen)
            run.turns.append(result)
            on_turn()
    finally:
        own.forget_user(f"bench-{script.name}")
    run.done = True
    return run


def run_keep_everything(
    pipeline: AnswersQuestions, script: Script, options: Mapping[str, Any], run: ScriptRun, on_turn: Callable[[], None]
) -> ScriptRun:
    history: list[Message] = []
    for number, turn in enumerate(script.turns, start=1):
        started = time.perf_counter()
        try:
            answer = pipeline.run(turn.user, script.collection, None, history=list(history), options=options)
            result = TurnResult(
                number,
                _stage(answer, "generate").get("prompt_tokens"),
                None,
                time.perf_counter() - started,
                answer.text,
            )
        except Exception as exc:
            result = TurnResult(number, None, None, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
        _score(result, turn, script, " ".join(m["content"] for m in history))
        history += [{"role": "user", "content": turn.user}, {"role": "assistant", "content": result.answer}]
        run.turns.append(result)
        on_turn()
    run.done = True
    return run


def summarize(runs: Sequence[ScriptRun]) -> dict[str, Any]:
    """Per mode: pass and retention rates over check turns, and prompt tokens per turn (median over scripts)."""
    report: dict[str, Any] = {}
    for mode in MODES:
        mine = [r for r in runs if r.mode == mode]
        checks = [t for r in mine for t in r.turns if t.check]
        by_turn: dict[int, list[int]] = {}
        for r in mine:
            for t in r.turns:
                if t.prompt_tokens is not None:
                    by_turn.setdefault(t.turn, []).append(t.prompt_tokens)
        medians = {n: statistics.median(v) for n, v in sorted(by_turn.items())}
        early = [v for n, v in medians.items() if n <= 10]
        late = [v for n, v in medians.items() if n > 20]
        report[mode] = {
            "scripts_done": sum(r.done for r in mine),
            "turns_done": sum(len(r.turns) for r in mine),
            "errors": sum(t.error is not None for r in mine for t in r.turns),
            "check_turns": len(checks),
            "pass_rate": round(sum(bool(t.honoured) for t in checks) / len(checks), 3) if checks else None,
            "pass_rate_constraint": _rate([t.honoured for t in checks if t.check == "constraint"]),
            "pass_rate_fact": _rate([t.honoured for t in checks if t.check == "fact"]),
            "retention_rate": _rate([t.retained for t in checks]),
            "prompt_tokens_median_by_turn": medians,
            "prompt_tokens_turns_1_10": statistics.mean(early) if early else None,
            "prompt_tokens_turns_21_30": statistics.mean(late) if late else None,
            "prompt_tokens_max": max((max(v) for v in by_turn.values()), default=None),
            "seconds_per_turn_median": _median([t.seconds for r in mine for t in r.turns]),
        }
    return report


def _rate(values: Sequence[bool | None]) -> float | None:
    return round(sum(bool(v) for v in values) / len(values), 3) if values else None


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def run_benchmark(
    service: MemoryService,
    pipeline: AnswersQuestions,
    scripts: Sequence[Script],
    *,
    memory_options: Mapping[str, Any],
    baseline_options: Mapping[str, Any],
    out: Path,
    modes: Sequence[str] = MODES,
    concurrency: int = 10,
) -> MemoryBenchResult:
    """Run every (mode, script) pair concurrently; ``out`` is rewritten after each turn, so a stopped run reports
    what finished."""
    runs: list[ScriptRun] = []
    lock = threading.Lock()
    started = time.time()
    meta = {
        "scripts": [s.name for s in scripts],
        "memory_options": dict(memory_options),
        "baseline_options": dict(baseline_options),
        "memory_config": asdict(service.config),
        "started": started,
    }

    def write() -> None:
        with lock:
            report = {**meta, "elapsed_s": round(time.time() - started, 1), "summary": summarize(runs)}
            report["runs"] = [asdict(r) for r in runs]
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False))
            tmp.replace(out)

    def job(mode: str, script: Script) -> ScriptRun:
        run = ScriptRun(mode, script.name)
        with lock:
            runs.append(run)
        if mode == "memory":
            return run_memory(service, script, memory_options, run, write)
        return run_keep_everything(pipeline, script, baseline_options, run, write)

    pairs = [(mode, script) for script in scripts for mode in modes]
    if not set(modes) <= set(MODES):
        raise ValueError(f"unknown mode(s) {sorted(set(modes) - set(MODES))}; choose from {MODES}")
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(pairs))), thread_name_prefix="bench") as pool:
        futures = [pool.submit(job, mode, script) for mode, script in pairs]
        for future in futures:
            future.result()
    write()
    return MemoryBenchResult(out, summarize(runs), runs)
